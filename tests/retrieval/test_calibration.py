"""Calibration evidence: every question held out once, on-topic unanswerable questions included."""

from __future__ import annotations

from retrieval import IndexConfig
from retrieval.calibration import calibration_set
from retrieval.decision import DecisionModel


def test_every_question_is_held_out_once_and_some_answers_are_left_out(small_pairs, embedder):
    with_siblings = [p for p in small_pairs if sum(q.answer == p.answer for q in small_pairs) >= 2]
    negatives = ["what's the weather in Paris", "tell me a joke"]
    evidence = calibration_set(small_pairs, negatives, IndexConfig(), embedder, folds=2, unanswerable_fraction=0.2)
    assert len(evidence) == len(with_siblings) + len(negatives)
    # Left-out answers turn their questions into negatives, like the out-of-scope messages.
    assert len(negatives) < int((evidence.answerable == 0).sum()) < len(evidence)
    assert not evidence.correct[evidence.answerable == 0].any()
    # Questions whose answer stayed in the probe index mostly find it.
    assert evidence.correct[evidence.answerable == 1].mean() > 0.6


def test_decision_fitted_on_the_evidence_separates_right_from_wrong(small_pairs, embedder):
    evidence = calibration_set(small_pairs, ["book me a flight to Rome", "who won the football"], IndexConfig(), embedder, folds=2)
    model = DecisionModel.fit(evidence.best, evidence.margin, evidence.correct, 0.9, 0.5)
    p = model.probability(evidence.best, evidence.margin)
    assert p[evidence.correct == 1].mean() > p[evidence.correct == 0].mean()
    assert model.stats["fitted"] == 1 and 0.0 < model.low <= model.high <= 1.0
    answered = p >= model.high
    assert not answered.any() or evidence.correct[answered].mean() >= 0.9
