"""The knowledge-base decision: calibrated probability, precision-driven thresholds, routing."""

import numpy as np
import pytest

from kefu.core.payloads import no_scripted_intent
from retrieval.decision import DecisionModel, margins


def _calibration_set(seed=0):
    """Right answers score high with clear margins; wrong ones and foreign messages lower."""
    rng = np.random.default_rng(seed)
    right = np.column_stack([rng.normal(0.8, 0.06, 300), rng.normal(0.15, 0.05, 300)])
    wrong = np.column_stack([rng.normal(0.55, 0.08, 300), rng.normal(0.03, 0.02, 300)])
    score = np.concatenate([right[:, 0], wrong[:, 0]])
    margin = np.concatenate([right[:, 1], wrong[:, 1]])
    correct = np.array([1] * 300 + [0] * 300)
    return score, margin, correct


def test_thresholds_reach_the_requested_precision():
    score, margin, correct = _calibration_set()
    model = DecisionModel.fit(score, margin, correct, answer_precision=0.95, clarify_precision=0.6)
    answered = model.probability(score, margin) >= model.high
    assert correct[answered].mean() >= 0.95
    assert answered[correct == 1].mean() > 0.8  # and still answers most answerable questions
    assert model.low <= model.high


def test_unreachable_precision_means_never_answer():
    rng = np.random.default_rng(1)
    score, margin = rng.uniform(0, 1, 200), rng.uniform(0, 0.2, 200)
    correct = np.array([1, 0] * 100)  # scores carry no information
    model = DecisionModel.fit(score, margin, correct, answer_precision=0.99, clarify_precision=0.6)
    assert model.high == 1.0
    assert model.decide("out_of_scope", 0.9, 0.99, 0.5).route != "answer"


def test_routes():
    model = DecisionModel(coef=(20.0, 10.0), intercept=-14.0, high=0.9, low=0.5)
    assert model.decide("out_of_scope", 0.8, 0.95, 0.2).match == "high"  # KB beats out-of-scope
    assert model.decide("order_status", 0.97, 0.8, 0.0).route == "intent"  # confident scripted intent wins
    # By default the more likely of the two calibrated probabilities wins (p_answer here is 0.9997).
    assert model.decide("request_invoice", 0.3, 0.95, 0.3).route == "answer"
    assert model.decide("request_invoice", 0.9999, 0.95, 0.3).route == "intent"
    # override_intent_below 0.5: a scripted intent more likely right than wrong always keeps the message.
    assert model.decide("request_invoice", 0.7, 0.95, 0.3, override_below=0.5).route == "intent"
    # The retrieval intent name is configurable: a message already routed there is not a scripted intent.
    assert model.decide("kb_question", 0.8, 0.95, 0.3, no_scripted=no_scripted_intent("kb_question")).route == "answer"
    assert model.decide("nlu_fallback", 0.45, 0.72, 0.0).match == "low"  # weak match: ask
    # An unsure scripted intent (under `low`) facing a match that reaches `low` (p 0.60 here): ask, do not act.
    unsure = model.decide("shipping_times", 0.49, 0.72, 0.0)
    assert (unsure.route, unsure.match) == ("clarify", "low")
    assert model.decide("shipping_times", 0.52, 0.72, 0.0).route == "intent"  # the intent is at least as sure
    assert model.decide("shipping_times", 0.3, 0.6, 0.0).route == "intent"  # the match is weaker still (p 0.12)
    assert model.decide(None, 0.0, 0.1, 0.0).route == "none"


def test_a_sure_out_of_scope_keeps_the_message_from_a_weaker_match():
    """"what's the price of gold today": out of scope at 0.95, a middling match (p 0.52) must not ask to rephrase."""
    model = DecisionModel(coef=(20.0, 10.0), intercept=-14.0, high=0.9, low=0.5)
    middling = model.decide("out_of_scope", 0.95, 0.72, 0.0)  # p 0.60
    assert (middling.route, middling.match) == ("none", "none")
    assert model.decide("out_of_scope", 0.95, 0.95, 0.3).route == "answer"  # the answer is likelier right (p 0.9997)
    assert model.decide("out_of_scope", 0.9999, 0.95, 0.3).route == "none"  # and not when it is less likely
    assert model.decide("out_of_scope", 0.4, 0.72, 0.0).match == "low"  # an unsure "out of scope": ask
    # Out of scope at 0.55 against a match at p 0.60: the match is likelier right, ask (a scripted intent as sure keeps it).
    doubted = model.decide("out_of_scope", 0.55, 0.72, 0.0)
    assert (doubted.route, doubted.match) == ("clarify", "low")
    assert model.decide("shipping_times", 0.55, 0.72, 0.0).route == "intent"
    assert model.decide("out_of_scope", 0.65, 0.72, 0.0).route == "none"  # out of scope the likelier: no asking
    # Without out_of_scope among the negative intents, any match above `low` asks as before.
    assert model.decide("out_of_scope", 0.95, 0.72, 0.0, negative=frozenset()).match == "low"


def test_round_trip_and_margins():
    model = DecisionModel(coef=(5.0, 2.0), intercept=-3.0, high=0.8, low=0.4, stats={"fitted": 1})
    assert DecisionModel.from_dict(model.to_dict()) == DecisionModel(coef=[5.0, 2.0], intercept=-3.0, high=0.8, low=0.4, stats={"fitted": 1})
    assert np.allclose(margins([[0.9, 0.7], [0.5]]), [0.2, 0.5])


def test_messages_of_the_second_view_get_their_own_calibration():
    """Second-view scores run higher for the same chance of being right: their own thresholds; the main view keeps the pooled decision."""
    rng = np.random.default_rng(0)
    n = 400
    second = np.repeat([0, 1], n)
    correct = rng.random(2 * n) < 0.6
    score = np.where(correct, 0.75, 0.55) + rng.normal(0, 0.05, 2 * n) + 0.2 * second
    margin = np.where(correct, 0.1, 0.02) + rng.normal(0, 0.02, 2 * n)
    answerable = np.ones(2 * n, dtype=int)
    both = DecisionModel.fit_by_view(score, margin, correct, second, answerable, 0.9, 0.5)
    pooled = DecisionModel.fit(score, margin, correct, 0.9, 0.5)
    assert both.second_view is not None and (both.coef, both.high) == (pooled.coef, pooled.high)
    view = both.for_view(True)
    assert view.probability(0.95, 0.1) > 0.9 > view.probability(0.75, 0.02)
    assert DecisionModel.from_dict(both.to_dict()).for_view(True) == view
    few = DecisionModel.fit_by_view(score[: n + 10], margin[: n + 10], correct[: n + 10], second[: n + 10], answerable[: n + 10], 0.9, 0.5)
    assert few.second_view is None  # too few second-view questions: one pooled model


def test_the_second_view_can_be_calibrated_on_evidence_of_its_own():
    """An adapted main model keeps a small held-out split; the frozen second view is fitted on its own (k-fold) evidence."""
    rng = np.random.default_rng(0)
    n = 400
    correct = rng.random(2 * n) < 0.6
    score = np.where(correct, 0.75, 0.55) + rng.normal(0, 0.05, 2 * n)
    margin = np.where(correct, 0.1, 0.02) + rng.normal(0, 0.02, 2 * n)
    second = np.repeat([0, 1], n)
    answerable = np.ones(2 * n, dtype=int)
    # The second view's own evidence: its scores run 0.2 higher for the same chance of being right.
    own = (score[n:] + 0.2, margin[n:], correct[n:], answerable[n:])
    model = DecisionModel.fit_by_view(score, margin, correct, second, answerable, 0.9, 0.5, second_evidence=own)
    from_rows = DecisionModel.fit_by_view(score, margin, correct, second, answerable, 0.9, 0.5)
    assert model.for_view(True).high == pytest.approx(from_rows.for_view(True).high, abs=1e-3)  # same messages, shifted scores: the same threshold on p
    assert model.for_view(True).probability(0.95, 0.1) > 0.9 > model.for_view(True).probability(0.75, 0.02)
    assert from_rows.for_view(True).probability(0.75, 0.02) > model.for_view(True).probability(0.75, 0.02)
    too_few = (own[0][:20], own[1][:20], own[2][:20], own[3][:20])
    assert DecisionModel.fit_by_view(score, margin, correct, second, answerable, 0.9, 0.5, second_evidence=too_few).second_view is None


def _result(best: float, runner_up: float, count: int = 4):
    from retrieval.qa import QAPair
    from retrieval.ranking import AnswerHit, Hit, SearchResult

    scores = [best, runner_up] + [runner_up - 0.05 * n for n in range(1, count - 1)]
    answers = [AnswerHit(s, f"answer {n}", [Hit(s, QAPair(f"entry-{n}", f"question {n}", f"answer {n}"))])
               for n, s in enumerate(scores)]
    return SearchResult("a question", [a.hits[0] for a in answers], answers)


@pytest.mark.parametrize("best, runner_up, intent, route, suggest", [
    (0.80, 0.70, "faq", "answer", 0),               # answered: nothing to suggest
    (0.6325, 0.5825, "nlu_fallback", "none", 3),    # p 0.30: no answer, the top 3 offered
    (0.6325, 0.5825, "out_of_scope", "none", 3),
    (0.55, 0.53, "nlu_fallback", "none", 0),        # p 0.06: too unlikely to offer
    (0.6325, 0.5825, "return_item", "intent", 0),   # a scripted intent answers: no "did you mean" with it
])
def test_where_the_bot_does_not_answer_likely_candidates_are_offered(best, runner_up, intent, route, suggest):
    from retrieval.knowledge_base import KBConfig, KnowledgeBase

    kb = KnowledgeBase(None, DecisionModel(coef=(20.0, 10.0), intercept=-14.0, high=0.9, low=0.5), KBConfig())
    result = kb.decide(_result(best, runner_up), intent, 0.45)
    assert (result.route, result.suggest) == (route, suggest)
    assert kb.decide(_result(best, runner_up, count=2), intent, 0.45).suggest == min(suggest, 2)


def test_suggestions_can_be_switched_off():
    from retrieval.knowledge_base import KBConfig, KnowledgeBase

    kb = KnowledgeBase(None, DecisionModel(coef=(20.0, 10.0), intercept=-14.0), KBConfig(suggest_from=1.0))
    assert kb.decide(_result(0.6325, 0.5825), "nlu_fallback", 0.45).suggest == 0
