"""A message about what the bot's scripted intents handle keeps its intent, however well some stored question matches."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from retrieval import KBConfig, KnowledgeBase
from retrieval.decision import DecisionModel, fit_intent_gap_cut
from retrieval.errors import ModelLoadError
from retrieval.intent_neighbours import FILE, sample_at_most

CONFIG = KBConfig(adapt=False, calibration_folds=2)

# A second business's intents next to a web shop's FAQ (the shape of BANKING77 trained with the shop's Q&A).
CARD_INTENTS = [
    ("How long does it take for a new card to arrive?", "card_arrival"),
    ("when will my card be delivered", "card_arrival"),
    ("my new card still hasn't arrived", "card_arrival"),
    ("what's the delivery time for a replacement card", "card_arrival"),
    ("how do I top up my account", "top_up"),
    ("can I add money with a bank transfer", "top_up"),
    ("my top-up didn't go through", "top_up"),
]
CARD_MESSAGE = "How long does it take for my new card to be delivered?"
SHOP_MESSAGE = "how many days until my parcel gets here"


@pytest.fixture(scope="module")
def built(embedder, small_csv, paraphrases_csv):
    from retrieval import load_qa

    pairs = load_qa([small_csv, paraphrases_csv])
    with_intents = KnowledgeBase.build(pairs, CONFIG, progress=False, intent_examples=CARD_INTENTS)
    without = KnowledgeBase.build(pairs, dataclasses.replace(CONFIG, intent_gap_keep=0.0), progress=False,
                                  intent_examples=CARD_INTENTS)
    return with_intents, without


def test_a_message_nearer_the_intents_keeps_its_intent(built):
    kb, without = built
    assert kb.decision.intent_gap_cut is not None and kb.decision.stats["intent_gap"]["right_answers_measured"] >= 20
    # Without the cut the shop's delivery answer takes the card question (or asks about it).
    assert without.respond([CARD_MESSAGE], ["card_arrival"], [0.5])[0].route in ("answer", "clarify")
    result = kb.respond([CARD_MESSAGE], ["card_arrival"], [0.5])[0]
    assert (result.route, result.match) == ("intent", "none")
    assert result.answer is not None  # the best candidate is still reported


def test_the_shop_question_is_still_answered_and_no_intent_means_no_cut(built):
    kb, without = built
    for intent, confidence in (("card_arrival", 0.3), ("faq", 0.0)):
        assert kb.respond([SHOP_MESSAGE], [intent], [confidence])[0].route == "answer"
    # The classifier leaving the message to the knowledge base (the retrieval intent): the gap is not used.
    assert kb.respond([CARD_MESSAGE], ["faq"], [0.0])[0].route == without.respond([CARD_MESSAGE], ["faq"], [0.0])[0].route
    # Not understood (FallbackClassifier): no answer and no asking about the shop's delivery times.
    assert without.respond([CARD_MESSAGE], ["nlu_fallback"], [0.3])[0].route in ("answer", "clarify")
    assert kb.respond([CARD_MESSAGE], ["nlu_fallback"], [0.3])[0].route == "none"


def test_an_early_query_pass_gives_the_same_decision(built):
    kb, _ = built
    texts = [CARD_MESSAGE, SHOP_MESSAGE]
    assert kb.respond(texts, ["card_arrival"] * 2, [0.5] * 2, encoded=kb.encode_queries(texts)) == \
        kb.respond(texts, ["card_arrival"] * 2, [0.5] * 2)


def test_the_cut_and_the_examples_survive_saving(built, tmp_path):
    kb, without = built
    kb.save(tmp_path / "kb")
    loaded = KnowledgeBase.load(tmp_path / "kb")
    assert loaded.decision.intent_gap_cut == kb.decision.intent_gap_cut and len(loaded.intents) == len(kb.intents)
    assert loaded.respond([CARD_MESSAGE], ["card_arrival"], [0.5])[0].route == "intent"
    without.save(tmp_path / "plain")
    assert not (tmp_path / "plain" / FILE).exists() and KnowledgeBase.load(tmp_path / "plain").intents is None


def test_missing_or_corrupt_examples_are_refused(built, tmp_path):
    kb, _ = built
    kb.save(tmp_path / "kb")
    (tmp_path / "kb" / FILE).write_bytes(b"not numpy")
    with pytest.raises(ModelLoadError, match=FILE):
        KnowledgeBase.load(tmp_path / "kb")
    (tmp_path / "kb" / FILE).unlink()
    with pytest.raises(ModelLoadError, match=FILE):
        KnowledgeBase.load(tmp_path / "kb")


def test_the_cut_keeps_the_share_of_right_answers_asked_for():
    rng = np.random.default_rng(0)
    best = rng.uniform(0.6, 0.9, 400)
    similarity = best + rng.normal(-0.1, 0.1, 400)
    correct = np.array([1, 0] * 200)
    similarity[::7] = np.nan  # scored by the second view: not measured
    cut = fit_intent_gap_cut(best, similarity, correct, keep=0.95)
    gap = similarity - best
    kept = gap[(correct == 1) & np.isfinite(gap)] <= cut
    assert 0.94 <= kept.mean() <= 0.96
    assert fit_intent_gap_cut(best, similarity, correct, keep=0.0) is None
    assert fit_intent_gap_cut(best[:30], similarity[:30], correct[:30], keep=0.95) is None  # too few right answers


def test_routes_with_the_gap():
    model = DecisionModel(coef=(20.0, 10.0), intercept=-14.0, high=0.9, low=0.5, intent_gap_cut=0.1)
    assert model.decide("return_item", 0.4, 0.85, 0.2, intent_gap=0.05).route == "answer"   # p 0.98 > 0.4
    assert model.decide("return_item", 0.4, 0.85, 0.2, intent_gap=0.2).route == "intent"
    assert model.decide("out_of_scope", 0.4, 0.85, 0.2, intent_gap=0.2).route == "none"
    assert model.decide("nlu_fallback", 0.3, 0.85, 0.2, intent_gap=0.2).route == "none"
    assert model.decide("return_item", 0.4, 0.85, 0.2, intent_gap=None).route == "answer"
    assert DecisionModel.from_dict(model.to_dict()).intent_gap_cut == 0.1


def test_the_heads_learn_at_most_so_many_intent_examples_spread_over_every_intent():
    examples = [(f"card {i}", "card_arrival") for i in range(100)] + [(f"top up {i}", "top_up") for i in range(5)] \
        + [(f"pin {i}", "change_pin") for i in range(50)]
    assert sample_at_most(examples, 200) == examples  # under the cap: all, as given
    capped = sample_at_most(examples, 60)
    counts = Counter(intent for _, intent in capped)
    assert len(capped) <= 60 and counts == {"card_arrival": 27, "change_pin": 27, "top_up": 5}
    assert set(capped) <= set(examples) and capped == sample_at_most(examples, 60)  # a seeded sample of real examples
    assert Counter(intent for _, intent in sample_at_most(examples, 2)) == {"card_arrival": 1, "change_pin": 1, "top_up": 1}
