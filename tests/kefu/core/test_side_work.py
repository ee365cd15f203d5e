"""kefu.core.side_work: a message's independent passes overlap on a second core only when that core is free to use."""

import os
import threading

import pytest

from kefu.core import side_work
from kefu.core.errors import OptionsError


def test_auto_overlaps_with_one_thread_per_pass_on_two_cpus_and_not_with_more_threads_or_one_cpu(monkeypatch):
    monkeypatch.delenv("KEFU_OVERLAP", raising=False)
    monkeypatch.delenv("KEFU_INFERENCE_THREADS", raising=False)
    monkeypatch.setattr(side_work, "_usable_cpus", lambda: 2)
    assert side_work.enabled()
    monkeypatch.setenv("KEFU_INFERENCE_THREADS", "2")
    assert not side_work.enabled()
    monkeypatch.delenv("KEFU_INFERENCE_THREADS")
    monkeypatch.setattr(side_work, "_usable_cpus", lambda: 1)
    assert not side_work.enabled()
    monkeypatch.setenv("KEFU_OVERLAP", "on")
    assert side_work.enabled()


def test_work_runs_on_the_side_thread_and_its_error_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("KEFU_OVERLAP", "on")
    future = side_work.submit(lambda a, b: (threading.current_thread().name, a + b), 2, 3)
    name, total = future.result(timeout=10)
    assert name.startswith("kefu-side") and total == 5
    failing = side_work.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=10)


def test_off_leaves_the_work_to_the_caller_and_a_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("KEFU_OVERLAP", "off")
    assert side_work.submit(lambda: 1) is None
    monkeypatch.setenv("KEFU_OVERLAP", "sometimes")
    with pytest.raises(OptionsError, match="KEFU_OVERLAP must be one of auto, on, off"):
        side_work.submit(lambda: 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_gets_a_side_thread_of_its_own(monkeypatch):
    """Sanic forks its workers; the parent's thread does not exist in the child, whose work must still run."""
    monkeypatch.setenv("KEFU_OVERLAP", "on")
    side_work.submit(lambda: None).result(timeout=10)  # the parent's thread exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        ok = False
        try:
            ok = side_work.submit(lambda: 41 + 1).result(timeout=10) == 42
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
