"""The logistic regression over the transformer's own sentence vectors (finetune/sentence_head.py)."""

from __future__ import annotations

import numpy as np
import pytest

from finetune import FinetuneError, IntentModel, ModelLoadError, TrainConfig, train
from finetune.sentence_head import FILE
from tests.conftest import FAST_TRAINING
from tests.finetune.test_model import PARAPHRASES


def test_the_head_is_trained_by_default_and_takes_its_share_of_the_transformer_view(tiny_model, tiny_model_dir):
    info = tiny_model.manifest["sentence_head"]
    assert info["enabled"] is True and info["share"] == TrainConfig().sentence_head > 0
    assert "val_accuracy_without_sentence_head" in tiny_model.metrics
    loaded = IntentModel.load(tiny_model_dir)
    assert (tiny_model_dir / FILE).exists() and loaded.sentence_head_share == info["share"]
    texts = list(PARAPHRASES)
    with_head = loaded.predict(texts)
    loaded.sentence_head_share = 0.0
    without = loaded.predict(texts)
    assert [p.intent for p in with_head] == [p.intent for p in without] == list(PARAPHRASES.values())
    # The head is in the prediction path: it moves the confidences.
    assert not np.allclose([p.confidence for p in with_head], [p.confidence for p in without], atol=1e-3)


def test_share_zero_trains_no_head(tiny_examples, tmp_path):
    model = train(tiny_examples, TrainConfig(**{**FAST_TRAINING, "epochs": 2, "sentence_head": 0.0}), progress=False)
    assert model.manifest["sentence_head"] == {"enabled": False} and model.sentence_head is None
    directory = model.save(tmp_path / "m")
    assert not (directory / FILE).exists()
    assert IntentModel.load(directory).sentence_head is None


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_head_file_is_a_clear_load_error(tiny_model, tmp_path, damage):
    directory = tiny_model.save(tmp_path / "m")
    if damage == "missing":
        (directory / FILE).unlink()
    else:
        (directory / FILE).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelLoadError, match=f"{FILE}.*(missing|corrupt)"):
        IntentModel.load(directory)


@pytest.mark.parametrize("options", [{"sentence_head": 1.0}, {"sentence_head": -0.1}, {"sentence_head_c": 0}])
def test_bad_options_are_rejected(options):
    with pytest.raises(FinetuneError, match="sentence_head"):
        TrainConfig.from_dict(options)
