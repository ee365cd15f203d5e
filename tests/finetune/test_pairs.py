"""Pairs of one intent and the contrastive loss that trains next to cross-entropy (finetune/pairs.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finetune import FinetuneError, TrainConfig, train
from finetune.pairs import pair_batches, pair_loss
from finetune.trainer import _shuffled_length_batches
from tests.conftest import FAST_TRAINING
from tests.finetune.test_model import PARAPHRASES


def test_every_example_is_paired_with_one_of_its_own_intent():
    y = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 3])  # odd counts, and an intent with one example
    lengths = [5, 6, 7, 3, 4, 5, 9, 9, 9, 2, 2]
    batches = pair_batches(y, lengths, 4, np.random.default_rng(0), _shuffled_length_batches)
    assert {i for batch in batches for i in batch} == set(range(len(y)))
    for batch in batches:
        assert len(batch) <= 4 and len(batch) % 2 == 0
        assert all(y[batch[k]] == y[batch[k + 1]] for k in range(0, len(batch), 2))
    # Each epoch pairs differently.
    assert batches != pair_batches(y, lengths, 4, np.random.default_rng(1), _shuffled_length_batches)


def test_other_pairs_of_the_same_intent_are_not_negatives():
    import torch

    same = torch.nn.functional.normalize(torch.ones(4, 3), dim=-1)  # every vector alike
    # Two pairs of one intent: nothing to tell apart, nothing to learn.
    assert pair_loss(same, torch.tensor([0, 0, 0, 0]), 20.0).item() == pytest.approx(0.0, abs=1e-6)
    # Two intents whose vectors are alike: each anchor is as near the other intent as its partner.
    assert pair_loss(same, torch.tensor([0, 0, 1, 1]), 20.0).item() == pytest.approx(math.log(2), abs=1e-4)
    apart = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0]])
    assert pair_loss(apart, torch.tensor([0, 0, 1, 1]), 20.0).item() < 1e-6


def test_the_pairs_train_by_default_and_turned_off_the_classifier_still_learns(tiny_model, tiny_examples):
    assert tiny_model.manifest["train_config"]["contrastive"] == TrainConfig().contrastive > 0
    model = train(tiny_examples, TrainConfig(**{**FAST_TRAINING, "contrastive": 0.0}), progress=False)
    assert model.manifest["train_config"]["contrastive"] == 0.0
    assert [p.intent for p in model.predict(list(PARAPHRASES))] == list(PARAPHRASES.values())


@pytest.mark.parametrize("options", [{"contrastive": -1}, {"contrastive_scale": 0}])
def test_bad_options_are_rejected(options):
    with pytest.raises(FinetuneError, match="contrastive"):
        TrainConfig.from_dict(options)
