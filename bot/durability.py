"""No acknowledged message only in memory: tracker-store errors fail the request instead of being hidden.

Rasa 3.6 wraps every tracker store in `FailSafeTrackerStore`: when the database
does not answer, `save` writes the conversation to an in-memory store and the
channel still answers 200 (measured: with PostgreSQL restarted mid-load, a
dozen acknowledged messages never reached it, and other replicas could not
see them), and `retrieve` returns None, so the conversation silently restarts.
`install()` makes both raise: the request fails with a 500 for the outage window
(the client or platform retries), and nothing acknowledged is only in memory.
"""

from __future__ import annotations

import functools
import logging

from rasa.core.tracker_store import FailSafeTrackerStore

logger = logging.getLogger(__name__)
_installed = False


class TrackerStoreUnavailable(RuntimeError):
    """The tracker store did not answer; the message was not stored and is answered with an error."""


def _strict(name: str):
    async def call(self, *args, **kwargs):
        try:
            return await getattr(self._tracker_store, name)(*args, **kwargs)
        except Exception as e:
            logger.error("tracker store %s failed (%s: %s); the request fails instead of being kept only in memory",
                         name, type(e).__name__, e)
            raise TrackerStoreUnavailable(f"tracker store unavailable: {type(e).__name__}") from e

    return functools.wraps(getattr(FailSafeTrackerStore, name))(call)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for name in ("save", "retrieve", "retrieve_full_tracker"):
        setattr(FailSafeTrackerStore, name, _strict(name))
