"""The knowledge base's per-message encoder in ONNX Runtime: the same vectors and answers as torch, torch one setting away."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import QAIndex

QUESTIONS = ["where is my parcel right now", "can I pay with paypal", "退货要多久", "hi", "how long does delivery take " * 30]


def test_a_loaded_index_answers_the_same_through_onnx_runtime(small_index, tmp_path, monkeypatch):
    small_index.save(tmp_path / "kb")
    monkeypatch.setenv("KEFU_INT8", "off")
    served = QAIndex.load(tmp_path / "kb", device="cpu")
    assert served.embedder.onnx is not None and served.embedder.onnx.precision == "fp32" and served.embedder.onnx.fused
    monkeypatch.setenv("KEFU_INFERENCE_BACKEND", "torch")
    reference = QAIndex.load(tmp_path / "kb", device="cpu")
    assert reference.embedder.onnx is None
    (a, coverage_a), (b, coverage_b) = served.embedder.encode_queries(QUESTIONS), reference.embedder.encode_queries(QUESTIONS)
    assert np.allclose(a, b, atol=1e-5) and np.array_equal(coverage_a, coverage_b)
    for x, y in zip(served.search(QUESTIONS, k=3), reference.search(QUESTIONS, k=3)):
        assert [h.answer for h in x.answers] == [h.answer for h in y.answers]
        assert [h.score for h in x.answers] == pytest.approx([h.score for h in y.answers], abs=1e-5)


def test_building_an_index_does_not_export_anything(small_index):
    assert small_index.embedder.onnx is None  # only a loaded index serves queries; builds keep torch's batched encode


def test_int8_by_default_finds_the_same_answers(small_index, tmp_path, monkeypatch):
    small_index.save(tmp_path / "kb")
    served = QAIndex.load(tmp_path / "kb", device="cpu")
    assert served.embedder.onnx is not None and served.embedder.onnx.precision == "int8"  # the default on a CPU
    assert served.embedder.onnx.fused
    monkeypatch.setenv("KEFU_INFERENCE_BACKEND", "torch")
    reference = QAIndex.load(tmp_path / "kb", device="cpu")
    a, b = served.embedder.encode_queries(QUESTIONS)[0], reference.embedder.encode_queries(QUESTIONS)[0]
    assert (a * b).sum(axis=1).min() > 0.95  # int8 weights move the vectors a little
    for x, y in zip(served.search(QUESTIONS[:4], k=3), reference.search(QUESTIONS[:4], k=3)):
        assert x.answers[0].answer == y.answers[0].answer
