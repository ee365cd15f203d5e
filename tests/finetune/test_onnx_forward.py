"""finetune.onnx_forward: a loaded classifier serves through ONNX Runtime with torch's answers, and falls back to torch."""

import logging
import sys

import numpy as np
import pytest

from finetune import IntentModel
from kefu.core import onnx_runtime
from kefu.core.errors import OptionsError

TEXTS = ["hello there, good morning", "where is my parcel, it has not come", "i forgot my password, please reset it",
         "thank you very much", "我的订单在哪里", "what is the capital of mongolia", "where is my order " * 40, ""]


def test_onnx_and_torch_serve_the_same_answers(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("KEFU_INT8", "off")
    served = IntentModel.load(tiny_model_dir)
    assert served.onnx is not None and served.onnx.max_difference <= onnx_runtime.TOLERANCE  # the default on a CPU
    assert served.onnx.precision == "fp32"
    assert served.onnx.fused  # attention, layer norms and GELUs in ONNX Runtime's transformer kernels
    monkeypatch.setenv("KEFU_INFERENCE_BACKEND", "torch")
    reference = IntentModel.load(tiny_model_dir)
    assert reference.onnx is None
    for a, b in zip(served.predict(TEXTS), reference.predict(TEXTS)):
        assert a.intent == b.intent
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)
        assert a.in_domain == pytest.approx(b.in_domain, abs=1e-4)
        assert np.allclose([c for _, c in a.ranking], [c for _, c in b.ranking], atol=1e-4)
    assert not any(p.name.endswith(".onnx") for p in tiny_model_dir.iterdir())  # nothing added to the saved model


def test_int8_by_default_gives_nearly_the_same_answers(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("KEFU_INT8", raising=False)
    served = IntentModel.load(tiny_model_dir)
    assert served.onnx is not None and served.onnx.precision == "int8" and served.onnx.fused
    monkeypatch.setenv("KEFU_INFERENCE_BACKEND", "torch")
    reference = IntentModel.load(tiny_model_dir)
    pairs = list(zip(served.predict(TEXTS), reference.predict(TEXTS)))
    assert sum(a.intent == b.intent for a, b in pairs) >= len(TEXTS) - 1
    assert max(abs(a.confidence - b.confidence) for a, b in pairs) < 0.2


def test_an_int8_copy_that_points_elsewhere_is_not_served(tiny_model_dir, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("KEFU_INT8", "all")
    # An empty graph cache: a run before this one kept the fp32 graph it chose, which would serve without the check.
    monkeypatch.setenv("KEFU_ONNX_CACHE", str(tmp_path / "onnx"))
    monkeypatch.setattr(onnx_runtime, "INT8_MIN_COSINE", 1.01)  # no quantized output can agree that well
    with caplog.at_level(logging.WARNING, logger="kefu.core.onnx_runtime"):
        model = IntentModel.load(tiny_model_dir)
    assert model.onnx is not None and model.onnx.precision == "fp32" and "it serves in fp32" in caplog.text
    assert model.predict(["thank you very much"])[0].intent == "thanks"


def test_outputs_that_differ_from_torch_are_never_served(tiny_model_dir, monkeypatch, caplog):
    monkeypatch.setattr(onnx_runtime, "TOLERANCE", -1.0)  # any difference at all is too much
    with caplog.at_level(logging.WARNING, logger="kefu.core.onnx_runtime"):
        model = IntentModel.load(tiny_model_dir)
    assert model.onnx is None and "serves with torch" in caplog.text
    assert model.predict(["thank you very much"])[0].intent == "thanks"


def test_without_the_onnx_package_it_serves_with_torch(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    model = IntentModel.load(tiny_model_dir)
    assert model.onnx is None and model.predict(["thank you very much"])[0].intent == "thanks"


def test_an_unknown_backend_is_refused(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("KEFU_INFERENCE_BACKEND", "tensorrt")
    with pytest.raises(OptionsError, match="KEFU_INFERENCE_BACKEND must be 'onnx' or 'torch'"):
        IntentModel.load(tiny_model_dir)


def test_an_unknown_int8_choice_is_refused(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("KEFU_INT8", "classifier-only")
    with pytest.raises(OptionsError, match="KEFU_INT8 must be one of off, knowledge-base, all"):
        IntentModel.load(tiny_model_dir)


def test_a_copy_of_the_model_elsewhere_loads_from_the_onnx_cache(tiny_model_dir, tmp_path, monkeypatch):
    """Rasa unpacks an archive into a new temporary folder at every load: the exported graph must still be found."""
    import shutil

    import torch

    monkeypatch.setenv("KEFU_ONNX_CACHE", str(tmp_path / "onnx-cache"))
    exports = []
    real = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: exports.append(1) or real(*a, **k))
    first = IntentModel.load(shutil.copytree(tiny_model_dir, tmp_path / "unpacked-1"))
    second = IntentModel.load(shutil.copytree(tiny_model_dir, tmp_path / "unpacked-2"))
    assert len(exports) == 1 and second.onnx is not None and second.onnx.fused
    for a, b in zip(first.predict(TEXTS), second.predict(TEXTS)):
        assert a.intent == b.intent and a.confidence == pytest.approx(b.confidence, abs=1e-6)
