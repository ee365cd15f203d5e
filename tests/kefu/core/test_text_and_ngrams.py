"""Text helpers and the shared n-gram bank (saved with skops, never a pickle)."""

from __future__ import annotations

import numpy as np
import pytest

from kefu.core import sklearn_io
from kefu.core.errors import ModelLoadError
from kefu.core.ngrams import NgramBank, WordNgrams
from kefu.core.text import coverage_of_ids, log_tail, normalize_text, without_redraws


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


TRAINING = ["Where is my order?", "I want a refund for the blue shoes", "我的订单到哪了", "怎麼退貨", "order 104233 hasn't arrived",
            "cancel my subscription please", "忘记密码了", "hi", "thanks a lot!"]
MESSAGES = ["WHERE is my ORDER", "where  is\tmy\n\norder", "refund refund refund", "我的訂單 104233 到哪了", "",
            "   ", "zzz qqq", "喂\u3000你好\u00a0hi", "a", "🙂 order!!", "Order: #104233, ASAP (please)"]


def test_word_ngrams_give_sklearns_features():
    """The cached per-word path (what serving uses) gives the numbers sklearn's own transform gives."""
    bank = NgramBank.fit(TRAINING)
    assert bank._fast is not None
    expected = bank.vectorizer.transform(MESSAGES)
    for max_words in (50_000, 3):  # 3: the word memory fills and starts again between messages
        got = WordNgrams(bank.vectorizer, max_words=max_words).transform(MESSAGES * 2)
        assert got.shape == (2 * len(MESSAGES), expected.shape[1])
        for row in range(2 * len(MESSAGES)):
            want, have = expected[row % len(MESSAGES)], got[row]
            assert list(have.indices) == sorted(want.indices)
            np.testing.assert_allclose(have.toarray(), want.toarray(), rtol=0, atol=1e-12)
    assert np.allclose(bank.similarities(bank.transform(MESSAGES)), bank.similarities(expected))


def test_other_vectorizer_set_ups_stay_with_sklearn():
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(analyzer="word").fit(TRAINING)
    plain_tf = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=False).fit(TRAINING)
    assert not WordNgrams.supports(words) and not WordNgrams.supports(plain_tf)
    assert not WordNgrams.supports(TfidfVectorizer(analyzer="char_wb", sublinear_tf=True))  # not fitted
    bank = NgramBank(plain_tf, plain_tf.transform(TRAINING))
    assert bank._fast is None
    assert np.allclose(bank.transform(["where is my order"]).toarray(), plain_tf.transform(["where is my order"]).toarray())


def test_a_file_holding_foreign_code_is_refused(tmp_path):
    path = tmp_path / "evil.skops"
    sklearn_io.save(path, {"f": ModelLoadError("x")})  # a type outside sklearn/numpy/scipy/builtins
    with pytest.raises(ModelLoadError, match="unexpected types"):
        sklearn_io.load(path)


def test_a_failed_childs_log_tail_shows_its_error_not_a_progress_bars_frames(tmp_path):
    """What a retrain or cluster error quotes from a child's log: Rasa's TED bar redraws at every epoch."""
    frames = "".join(f"\rEpochs:  {i}%|{'#' * (i // 10)}| {i}/100 [00:{i:02d}<00:40, 2.1it/s, t_loss=3.8, acc=0.51]"
                     for i in range(100))
    log = tmp_path / "train.log"
    log.write_text("2026-12-06 INFO Starting to train component 'TEDPolicy'.\r\n" + frames + "\n"
                   "Traceback (most recent call last):\n  ValueError: the disk is full\n")
    tail = log_tail(log, chars=400)
    assert "Starting to train component 'TEDPolicy'.\r\n" in tail and "ValueError: the disk is full" in tail
    assert tail.count("Epochs:") == 1 and "99/100" in tail
    assert without_redraws("a\rb\r\n") == "b\r\n"
