"""A trained archive's intent classifier, loaded to serve (retrain.train_candidate.load_intent_model; bench/ uses it)."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from retrain.config import RetrainError
from retrain.train_candidate import load_intent_model
from tests.finetune.test_model import PARAPHRASES
from tests.retrain.test_knowledge_base_only import CLASSIFIER, KB, archive


def test_the_archives_classifier_loads_and_answers_as_trained(tiny_model, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_INT8", "off")  # the archive's copy itself; int8 serving: tests/finetune/test_onnx_forward.py
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tiny_model_dir, arcname=f"{CLASSIFIER}/intent_model")
    loaded = load_intent_model(path)
    texts = list(PARAPHRASES)
    assert [p.intent for p in loaded.predict(texts)] == list(PARAPHRASES.values())
    assert np.allclose([p.confidence for p in loaded.predict(texts)], [p.confidence for p in tiny_model.predict(texts)], atol=1e-3)


def test_an_archive_without_a_classifier_gives_none(tmp_path):
    assert load_intent_model(archive(tmp_path / "kb.tar.gz", {f"{KB}/pairs.jsonl": b"rows"})) is None


def test_a_broken_archive_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.tar.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(RetrainError, match="cannot read model archive"):
        load_intent_model(path)
