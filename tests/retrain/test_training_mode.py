"""Which nights continue from the champion's classifier and which start from the base model."""

import copy

from retrain.config import RetrainConfig
from retrain.train_candidate import training_mode


def _config(tmp_path, **training):
    return RetrainConfig.from_dict({"project": str(tmp_path), "training": training})


def test_a_night_that_adds_an_intent_continues_from_the_champion(tmp_path, tiny_model_dir, tiny_model):
    mode, why = training_mode(_config(tmp_path), tiny_model_dir, tiny_model.labels + ["faq"])
    assert mode == "continued"
    assert "added ['faq']" in why and "regrown" in why
    assert training_mode(_config(tmp_path), tiny_model_dir, tiny_model.labels) == ("continued", "label set unchanged")


def test_switches_send_nights_to_the_base_model(tmp_path, tiny_model_dir, tiny_model):
    grown = tiny_model.labels + ["faq"]
    mode, why = training_mode(_config(tmp_path, continue_when_labels_change=False), tiny_model_dir, grown)
    assert mode == "from_base" and "added ['faq']" in why
    assert training_mode(_config(tmp_path, continue_when_labels_unchanged=False), tiny_model_dir, tiny_model.labels)[0] == "from_base"
    assert training_mode(_config(tmp_path), None, grown)[0] == "from_base"


def test_a_champion_without_a_recorded_split_trains_from_base(tmp_path, tiny_model):
    old = copy.copy(tiny_model)
    old.manifest = {k: v for k, v in tiny_model.manifest.items() if k != "validation_split"}
    mode, why = training_mode(_config(tmp_path), old.save(tmp_path / "old"), tiny_model.labels)
    assert mode == "from_base" and "no record of its validation split" in why
