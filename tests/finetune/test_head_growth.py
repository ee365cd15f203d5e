"""Continuing from a model whose intents were not quite these (the nightly retrain naming a new intent)."""

import copy

import numpy as np
import torch

from finetune import TrainConfig, train
from finetune.data import Example
from finetune.head_growth import regrow_head
from tests.conftest import FAST_TRAINING

REFUND = ["i want my money back", "please refund my order", "can i get a refund", "refund the payment please",
          "how do i get reimbursed", "give me a refund for the broken kettle", "i would like a refund",
          "send the money back to my card", "refund request for order 5521", "when will my refund arrive"]
REFUND_PARAPHRASES = ["could you refund me", "i need a refund for my purchase"]
KEPT_PARAPHRASES = {"hello there, good morning": "greet", "where is my parcel, it has not come": "order_status",
                    "thank you very much": "thanks"}


def _logits(model, tokenizer, texts):
    with torch.inference_mode():
        return model.eval()(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()


def test_kept_intents_keep_their_rows_and_a_new_one_is_imprinted_from_its_examples(tiny_model, tiny_examples):
    model = copy.deepcopy(tiny_model.model)
    new_labels = ["greet", "order_status", "refund", "thanks"]  # reset_password removed, refund added
    probes = list(KEPT_PARAPHRASES) + REFUND_PARAPHRASES + ["i forgot my password"]
    before = _logits(model, tiny_model.tokenizer, probes)
    changes = regrow_head(model, tiny_model.tokenizer, tiny_model.labels, new_labels,
                          [e for e in tiny_examples if e.intent != "reset_password"] + [Example(t, "refund") for t in REFUND],
                          32, "cpu")
    after = _logits(model, tiny_model.tokenizer, probes)

    assert changes == {"labels_added": ["refund"], "labels_removed": ["reset_password"]}
    assert model.config.num_labels == 4 and model.config.id2label[2] == "refund"
    old = {label: i for i, label in enumerate(tiny_model.labels)}
    for column, label in enumerate(new_labels):
        if label != "refund":
            assert np.array_equal(after[:, column], before[:, old[label]])
    # Before any training the imprinted row already scores new refund questions above the other intents' on average
    # (not each: this small model's features put "where is my parcel" near refunds).
    refund_scores = after[:, 2]
    assert refund_scores[3:5].mean() > refund_scores[:3].mean() + 1.0


def test_training_continues_from_a_model_with_other_intents(tiny_model, tiny_examples):
    examples = [e for e in tiny_examples if e.intent != "reset_password"] + [Example(t, "refund") for t in REFUND]
    grown = train(examples, TrainConfig(**dict(FAST_TRAINING, epochs=4)), progress=False, init_from=tiny_model)

    assert grown.labels == ["greet", "order_status", "refund", "thanks"]
    assert grown.manifest["training_mode"] == "continued"
    assert grown.manifest["continued_with"] == {"labels_added": ["refund"], "labels_removed": ["reset_password"]}
    predictions = grown.predict(list(KEPT_PARAPHRASES) + REFUND_PARAPHRASES)
    assert [p.intent for p in predictions] == list(KEPT_PARAPHRASES.values()) + ["refund", "refund"]


def test_continued_training_keeps_the_champions_validation_split(tiny_model, tiny_examples):
    examples = list(tiny_examples) + [Example(t, "refund") for t in REFUND]
    grown = train(examples, TrainConfig(**dict(FAST_TRAINING, epochs=1)), progress=False, init_from=tiny_model)
    old, new = tiny_model.manifest["validation_split"], grown.manifest["validation_split"]
    assert set(old["held_out"]) <= set(new["held_out"]) and set(old["trained"]) <= set(new["trained"])
    assert not set(new["held_out"]) & set(new["trained"])


def test_a_model_without_a_recorded_split_is_not_continued(tiny_model, tiny_examples, caplog):
    """Continuing it would validate on examples it trained on: its validation figures would flatter it."""
    old = copy.copy(tiny_model)
    old.manifest = {k: v for k, v in tiny_model.manifest.items() if k != "validation_split"}
    model = train(tiny_examples, TrainConfig(**dict(FAST_TRAINING, epochs=1)), progress=False, init_from=old)
    assert model.manifest["training_mode"] == "from_base"
    assert "no record of its validation split" in caplog.text
