import json
import logging
import time

import numpy as np
import pytest

from finetune import IntentModel, ModelLoadError, TrainConfig, train
from finetune.data import Example
from tests.conftest import FAST_TRAINING

PARAPHRASES = {
    "hello there, good morning": "greet",
    "where is my parcel, it has not come": "order_status",
    "i forgot my password, please reset it": "reset_password",
    "thank you very much": "thanks",
}


def test_learns_the_intents(tiny_model):
    predictions = tiny_model.predict(list(PARAPHRASES))
    assert [p.intent for p in predictions] == list(PARAPHRASES.values())


def test_ranking_is_sorted_and_sums_to_one(tiny_model):
    p = tiny_model.predict(["where is my order"])[0]
    confidences = [c for _, c in p.ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0, abs=1e-3) or sum(confidences) < 1.0
    assert p.ranking[0] == (p.intent, p.confidence)


def test_foreign_messages_get_low_confidence(tiny_model):
    in_domain = tiny_model.predict(["where is my order"])[0]
    foreign = tiny_model.predict(["what is the capital of mongolia and its population in 1950"])[0]
    assert foreign.in_domain < in_domain.in_domain
    assert foreign.confidence < 0.5 < in_domain.confidence


def test_empty_huge_and_undecodable_messages(tiny_model):
    empty, blank, huge, odd = tiny_model.predict(["", "   ", "where is my order " * 3000, "caf\udce9 password reset"])
    assert empty.intent is None and empty.confidence == 0.0
    assert blank.intent is None
    assert huge.intent == "order_status"
    assert odd.intent == "reset_password"


def test_save_and_load_round_trip(tiny_model, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("KEFU_INT8", "off")  # the round trip itself; int8 serving: tests/finetune/test_onnx_forward.py
    manifest = json.loads((tiny_model_dir / "kefu_intent.json").read_text())
    assert manifest["labels"] == tiny_model.labels
    assert {"temperature", "in_domain"} <= set(manifest["calibration"])
    assert manifest["metrics"]["train_examples"] > 0
    loaded = IntentModel.load(tiny_model_dir)
    texts = list(PARAPHRASES)
    before = [p.confidence for p in tiny_model.predict(texts)]
    after = [p.confidence for p in loaded.predict(texts)]
    assert np.allclose(before, after, atol=1e-3)


def test_training_is_reproducible(tiny_examples, tiny_model):
    again = train(tiny_examples, TrainConfig(**FAST_TRAINING), progress=False)
    texts = list(PARAPHRASES)
    assert np.allclose([p.confidence for p in again.predict(texts)], [p.confidence for p in tiny_model.predict(texts)], atol=1e-4)


def test_intent_with_one_example_still_trains(tiny_examples):
    data = list(tiny_examples) + [Example("i want to speak to a manager", "human_handoff")]
    model = train(data, TrainConfig(**{**FAST_TRAINING, "epochs": 2}), progress=False)
    assert "human_handoff" in model.labels


def test_missing_model_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        IntentModel.load(tmp_path / "nothing")


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="not a kefu intent model"):
        IntentModel.load(tmp_path)


def test_corrupt_weights(tiny_model, tmp_path):
    directory = tiny_model.save(tmp_path / "m")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    with pytest.raises(ModelLoadError, match="corrupt"):
        IntentModel.load(directory)


def test_corrupt_manifest(tiny_model, tmp_path):
    directory = tiny_model.save(tmp_path / "m")
    (directory / "kefu_intent.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="corrupt"):
        IntentModel.load(directory)


def test_save_replaces_an_existing_model_completely(tiny_model, tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "kefu_intent.json").write_text("{}")
    (target / "stale.bin").write_text("old")
    tiny_model.save(target)
    assert not (target / "stale.bin").exists()
    assert IntentModel.load(target).labels == tiny_model.labels


def test_save_never_overwrites_a_directory_that_is_not_a_model(tiny_model, tmp_path):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "holiday.jpg").write_text("precious")
    with pytest.raises(FileExistsError):
        tiny_model.save(target)
    assert (target / "holiday.jpg").read_text() == "precious"


def test_unknown_option_is_rejected():
    from finetune import FinetuneError

    with pytest.raises(FinetuneError, match="Unknown training option"):
        TrainConfig.from_dict({"learning_rat": 1e-4})


def test_the_time_budget_covers_the_passes_foreseen_after_the_schedule(tiny_examples, caplog, monkeypatch):
    from finetune import trainer

    # The pilot foresees 10 minutes of forward passes after the schedule: a 5-minute budget leaves the
    # transformer only the first check's 20 steps, and the training still ends with a working model.
    monkeypatch.setattr(trainer, "_forward_seconds", lambda *args: 600.0)
    with caplog.at_level(logging.INFO, logger="finetune.trainer"):
        model = train(tiny_examples, TrainConfig(**{**FAST_TRAINING, "epochs": 200, "time_budget_minutes": 5}), progress=False)
    assert model.metrics["steps"] == 20
    assert model.predict(["where is my parcel"])[0].intent is not None
    assert any(r.getMessage().endswith("720 s foreseen after it") for r in caplog.records)


def test_frozen_word_embeddings_stay_as_pretrained_while_the_layers_learn(tiny_examples, tiny_model):
    import torch
    from transformers import AutoModel

    from kefu.core.base_model import resolve_base_model

    base = AutoModel.from_pretrained(resolve_base_model("default"))
    frozen = train(tiny_examples, TrainConfig(**{**FAST_TRAINING, "epochs": 2, "freeze_word_embeddings": True}), progress=False).model
    assert torch.equal(frozen.get_input_embeddings().weight, base.get_input_embeddings().weight)
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(frozen.base_model.state_dict()[layer], base.state_dict()[layer])
    # The default trains them.
    assert not torch.equal(tiny_model.model.get_input_embeddings().weight, base.get_input_embeddings().weight)


def test_time_budget_shortens_the_schedule(tiny_examples):
    started = time.perf_counter()
    model = train(tiny_examples, TrainConfig(**{**FAST_TRAINING, "epochs": 200, "time_budget_minutes": 0.05}), progress=False)
    assert time.perf_counter() - started < 60
    assert model.metrics["steps"] < 200 * 5
