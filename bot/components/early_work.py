"""Work a later component of the same model starts while the intent classifier runs.

Rasa runs a model's components one after the other. The knowledge base's query
encoder pass does not need the classifier's result (only the decision after it
does), so the answer retriever offers that pass here when it loads, and the
classifier starts it on the side thread (kefu.core.side_work) before its own
transformer pass; the retriever takes the result from the message. Offers are
kept per model storage, which every component of one loaded model shares, so a
model being replaced never starts work for the other one, and weakly, so an
unloaded model's retriever is not kept alive by its offer.
"""

from __future__ import annotations

import weakref
from concurrent.futures import Future
from typing import Any, Callable, List, Optional, Sequence

from rasa.shared.nlu.training_data.message import Message

from kefu.core import side_work

# Message attribute (prefix + the offer's key) holding the started work's future.
_PREFIX = "kefu_early_"

_offers: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def offer(model_storage: Any, key: str, owner: Any, method: Callable[[Any, List[Message]], Any]) -> None:
    """`method(owner, messages)` is to be started early for the messages this model parses.

    It reads the messages, never changes them. `owner` is held weakly: the offer lapses when the component goes.
    """
    _offers.setdefault(model_storage, {})[key] = (weakref.ref(owner), method)


def start(model_storage: Any, messages: Sequence[Message]) -> None:
    """Starts the work offered for this model's messages on the side thread (if overlapping is on)."""
    offers = _offers.get(model_storage)
    if not offers or not messages:
        return
    messages = list(messages)
    for key, (owner_ref, method) in list(offers.items()):
        owner = owner_ref()
        if owner is None:
            offers.pop(key, None)
            continue
        future = side_work.submit(method, owner, messages)
        if future is None:
            return
        started = _Started(future)
        for message in messages:
            message.set(_PREFIX + key, started)


class _Started:
    """What a message carries: the work's future. A copy of the message (deepcopy, pickle) shares it or
    drops it; it never copies a future."""

    __slots__ = ("future",)

    def __init__(self, future: Future) -> None:
        self.future = future

    def __deepcopy__(self, memo: dict) -> "_Started":
        return self

    def __reduce__(self):
        return (_lapsed, ())


def _lapsed() -> None:
    return None


def take(messages: Sequence[Message], key: str) -> Optional[Any]:
    """The result of the work started for exactly these messages together, or None (then compute it now).

    An error raised by the early work is raised here, as it would have been by computing it now.
    """
    found: List[Optional[_Started]] = [m.data.pop(_PREFIX + key, None) for m in messages]
    if not found or found[0] is None or any(f is not found[0] for f in found):
        return None
    return found[0].future.result()
