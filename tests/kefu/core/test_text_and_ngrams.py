"""Text helpers and the shared n-gram bank (saved with skops, never a pickle)."""

from __future__ import annotations

import numpy as np
import pytest

from kefu.core import sklearn_io
from kefu.core.errors import ModelLoadError
from kefu.core.ngrams import NgramBank
from kefu.core.text import coverage_of_ids, normalize_text


def test_normalize_and_coverage():
    assert normalize_text("Where is my ORDER?!") == normalize_text("where  is my order")
    assert coverage_of_ids([101, 100, 7, 102], unk_id=100, special_ids=[101, 102]) == 0.5
    assert coverage_of_ids([], unk_id=100) == 1.0


def test_ngram_bank_round_trip(tmp_path):
    bank = NgramBank.fit(["我的订单到哪了", "怎么退货", "忘记密码了"])
    bank.save(tmp_path, "qa")
    loaded = NgramBank.load(tmp_path, "qa")
    sims = loaded.similarities(loaded.transform(["订单到哪了"]))
    assert sims.shape == (1, 3) and int(np.argmax(sims)) == 0
    assert not list(tmp_path.glob("*.joblib")) and not list(tmp_path.glob("*.pkl"))


def test_a_file_holding_foreign_code_is_refused(tmp_path):
    path = tmp_path / "evil.skops"
    sklearn_io.save(path, {"f": ModelLoadError("x")})  # a type outside sklearn/numpy/scipy/builtins
    with pytest.raises(ModelLoadError, match="unexpected types"):
        sklearn_io.load(path)
