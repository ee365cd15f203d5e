"""kefu.core.memo: repeated inputs are answered from memory, bounded, and the size comes from the environment."""

import pytest

from kefu.core import runtime
from kefu.core.errors import OptionsError
from kefu.core.memo import Memo


class Counting:
    def __init__(self):
        self.calls = []

    def __call__(self, keys):
        self.calls.append(list(keys))
        return [k.upper() for k in keys]


def test_a_repeated_key_is_answered_without_computing_and_a_batch_computes_each_new_key_once():
    compute, memo = Counting(), Memo(8)
    assert memo.map(["hi", "bye", "hi"], compute) == ["HI", "BYE", "HI"]
    assert memo.map(["bye", "thanks"], compute) == ["BYE", "THANKS"]
    assert compute.calls == [["hi", "bye"], ["thanks"]]
    assert (memo.hits, memo.misses) == (2, 3)
    assert memo.get("hi", lambda: "never computed") == "HI"


def test_the_least_recently_used_key_goes_first_when_full():
    compute, memo = Counting(), Memo(2)
    memo.map(["a", "b"], compute)
    memo.map(["a"], compute)  # a is now the most recent
    memo.map(["c"], compute)  # evicts b
    assert len(memo) == 2
    memo.map(["a", "b"], compute)
    assert compute.calls == [["a", "b"], ["c"], ["b"]]


def test_size_zero_computes_every_time_and_a_wrong_count_is_an_error():
    compute, memo = Counting(), Memo(0)
    memo.map(["hi"], compute)
    memo.map(["hi"], compute)
    assert compute.calls == [["hi"], ["hi"]] and len(memo) == 0
    with pytest.raises(ValueError, match="2 keys"):
        Memo(4).map(["a", "b"], lambda keys: ["only one"])
    with pytest.raises(ValueError):
        Memo(-1)


def test_the_cache_size_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("KEFU_INFERENCE_CACHE", raising=False)
    assert runtime.inference_cache_size() == 4096
    monkeypatch.setenv("KEFU_INFERENCE_CACHE", "0")
    assert runtime.inference_cache_size() == 0
    for bad in ("lots", "-5"):
        monkeypatch.setenv("KEFU_INFERENCE_CACHE", bad)
        with pytest.raises(OptionsError, match="KEFU_INFERENCE_CACHE"):
            runtime.inference_cache_size()
