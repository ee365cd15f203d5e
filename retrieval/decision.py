"""One calibrated decision: answer from the knowledge base, ask, leave it to the intent, or nothing.

The intent classifier's confidence is already a calibrated probability of
being right (finetune/calibration.py). This module turns the retriever's raw
cosine scores into the same currency, P(the best answer is right for this
message), with a logistic regression on two features (best answer score and
its margin over the runner-up answer) fitted on held-out messages: questions
held out of the index (positive when their best answer is right) and messages
that belong to scripted intents or are out of scope (always negative).

Thresholds are read off the same held-out messages: `high` is the lowest
probability at which answers given reach `answer_precision`, `low` is where the
calibrated probability itself reaches `clarify_precision` (a message there has
that chance of having its answer in the knowledge base: worth asking the
customer to rephrase rather than saying there is no answer).
The route then compares the two calibrated probabilities: a scripted intent
keeps the message unless the answer is likelier right and reaches `high`; an
intent less sure than `low` facing a match that reaches `low` asks the customer
to rephrase (neither is worth acting on: "it's a birthday present, can you wrap
it nicely" read as shipping times at 0.49 with the gift-wrap answer at 0.68).

Messages the main model reads poorly (Chinese for the packaged MiniLM) are
scored by the second view, whose scores are another currency: they get their
own regression and thresholds (`second_view`), fitted on their own held-out
messages (every question held out in turn: the second view's encoder is frozen,
so it needs no split kept from an adapted main model, whose held-out split gave
it 180 messages and a threshold that moved with the split). Messages of the main view keep the decision fitted on every
held-out message, as before the second view had its own: fitted on English
alone, its higher threshold left an unsure intent (0.49) in front of a right
answer in a gating English conversation test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import AbstractSet, Dict, Optional, Sequence, Tuple

import numpy as np

from kefu.core.payloads import KB_HIGH, KB_LOW, KB_NONE, OUT_OF_SCOPE, ROUTE_ANSWER, ROUTE_CLARIFY, ROUTE_INTENT, ROUTE_NONE, no_scripted_intent

# Intents that mean "the classifier has no scripted answer for this" (default retrieval intent `faq`).
NO_SCRIPTED_INTENT = no_scripted_intent()
# Intents that say no answer exists (KBConfig.negative_intents' default).
NEGATIVE_INTENTS = frozenset({OUT_OF_SCOPE})
# A scripted intent keeps the message unless the answer is more likely right than the intent
# (1.0: compare the two calibrated probabilities only).
OVERRIDE_INTENT_BELOW = 1.0


@dataclass
class KBDecision:
    route: str  # "answer" (kb high), "clarify" (kb low), "intent" (scripted intent), "none"
    match: str  # the kb_match slot: "high", "low" or "none"
    p_answer: float


@dataclass
class DecisionModel:
    coef: Sequence[float] = (20.0, 10.0)
    intercept: float = -14.0
    high: float = 0.9
    low: float = 0.5
    stats: Dict[str, float] = field(default_factory=dict)
    # The decision for messages scored by the second view (a DecisionModel as a dict); None: this one.
    second_view: Optional[Dict] = None
    # A message whose nearest intent example is closer than its best answer by more than this is left to
    # its intent (retrieval.intent_neighbours; `fit_intent_gap_cut`). None: no cut.
    intent_gap_cut: Optional[float] = None

    def for_view(self, second_view: bool) -> "DecisionModel":
        return self._second_view_model if second_view else self

    @cached_property
    def _second_view_model(self) -> "DecisionModel":
        """Built once (not per message); a cached property is no dataclass field, so `to_dict` leaves it out."""
        return DecisionModel.from_dict(self.second_view) if self.second_view else self

    def probability(self, score: np.ndarray, margin: np.ndarray) -> np.ndarray:
        z = self.coef[0] * np.asarray(score) + self.coef[1] * np.asarray(margin) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def decide(self, intent: Optional[str], intent_confidence: float, score: float, margin: float,
               override_below: float = OVERRIDE_INTENT_BELOW, no_scripted: AbstractSet = NO_SCRIPTED_INTENT,
               negative: AbstractSet = NEGATIVE_INTENTS, intent_gap: Optional[float] = None) -> KBDecision:
        """`override_below`: a scripted intent keeps the message unless its calibrated
        confidence is under this (more likely wrong than right) and under the answer's
        probability: a scripted flow can act (look up, cancel, hand off), a stored answer cannot.

        A `negative` intent ("out of scope": no answer exists) is weighed the same way: the
        classifier sure a message is out of scope (0.95 for "what's the price of gold today")
        keeps it from a middling match (p 0.52) that would otherwise ask the customer to rephrase.
        But an out-of-scope verdict is no flow to protect: a match that reaches `low` and is likelier
        right than that verdict asks ("it's a surprise gift, can you pack it nicely": out of scope at
        0.53, the gift-wrap answer at p 0.54; refusing would tell the customer the shop has no answer).

        `intent_gap`: the message's nearest intent example's cosine minus `score`; above `intent_gap_cut`
        the message is about what the intents handle, not about the stored questions: no answer, no asking
        (the caller gives no gap for a message the classifier left to the knowledge base).
        """
        p = float(self.probability(score, margin))
        scripted = intent not in no_scripted
        weighed = scripted or intent in negative
        if self.intent_gap_cut is not None and intent_gap is not None and intent_gap > self.intent_gap_cut:
            return KBDecision(ROUTE_INTENT if scripted else ROUTE_NONE, KB_NONE, p)
        if p >= self.high and (not weighed or (p > intent_confidence and intent_confidence < override_below)):
            return KBDecision(ROUTE_ANSWER, KB_HIGH, p)
        unsure_intent = intent_confidence < self.low <= p
        doubted_negative = intent in negative and self.low <= p and p > intent_confidence
        if weighed and not (unsure_intent or doubted_negative):
            return KBDecision(ROUTE_INTENT if scripted else ROUTE_NONE, KB_NONE, p)
        if p >= self.low:
            return KBDecision(ROUTE_CLARIFY, KB_LOW, p)
        return KBDecision(ROUTE_NONE, KB_NONE, p)

    @classmethod
    def fit(cls, score: np.ndarray, margin: np.ndarray, correct: np.ndarray, answer_precision: float, clarify_precision: float) -> "DecisionModel":
        """`correct` is 1 where answering with the best match would have been right."""
        from sklearn.linear_model import LogisticRegression

        correct = np.asarray(correct).astype(int)
        if correct.min() == correct.max():
            # One class only (tiny data): keep the conservative defaults.
            return cls(stats={"calibration_messages": int(len(correct)), "fitted": 0})
        X = np.column_stack([score, margin])
        lr = LogisticRegression(C=10.0).fit(X, correct)
        model = cls(coef=[float(c) for c in lr.coef_[0]], intercept=float(lr.intercept_[0]))
        p = model.probability(score, margin)
        model.high = _threshold_for_precision(p, correct, answer_precision)
        # p is a calibrated probability of the best answer being right, so the messages at
        # p = clarify_precision are right that often: the least worth asking about.
        model.low = min(model.high, clarify_precision)
        answered = p >= model.high
        model.stats = {
            "calibration_messages": int(len(correct)),
            "fitted": 1,
            "answer_precision": round(float(correct[answered].mean()) if answered.any() else 1.0, 4),
            "answerable_share_answered": round(float(answered[correct == 1].mean()) if (correct == 1).any() else 0.0, 4),
        }
        return model

    def to_dict(self) -> Dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Dict) -> "DecisionModel":
        return cls(**values)

    @classmethod
    def fit_by_view(cls, score: np.ndarray, margin: np.ndarray, correct: np.ndarray, second_view: np.ndarray, answerable: np.ndarray,
                    answer_precision: float, clarify_precision: float, min_questions: int = 30,
                    second_evidence: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = None) -> "DecisionModel":
        """One model fitted on every message, and one of the second view's own when it has `min_questions` held-out questions.

        `second_evidence`: (score, margin, correct, answerable) of second-view messages from evidence of their own,
        used for the second view's model instead of the second-view rows of the main evidence (fit_decision: an
        adapted main model is calibrated on its held-out split alone, the frozen second view on every question).
        """
        second = np.asarray(second_view).astype(bool)
        answerable = np.asarray(answerable).astype(bool)
        main = cls.fit(score, margin, correct, answer_precision, clarify_precision)
        if second_evidence is None:
            second_evidence = (np.asarray(score)[second], np.asarray(margin)[second], np.asarray(correct)[second], answerable[second])
        s_score, s_margin, s_correct, s_answerable = (np.asarray(a) for a in second_evidence)
        if s_answerable.astype(bool).sum() < min_questions or (answerable & ~second).sum() < min_questions:
            return main
        other = cls.fit(s_score, s_margin, s_correct, answer_precision, clarify_precision)
        main.second_view = other.to_dict()
        main.stats = {**main.stats, "second_view": other.stats}
        return main


def fit_intent_gap_cut(best: np.ndarray, intent_similarity: np.ndarray, correct: np.ndarray, keep: float,
                       min_answers: int = 20) -> Optional[float]:
    """The gap (nearest intent example minus the best answer's main-view cosine) under which `keep` of the held-out questions
    answered right lie; None when off (`keep` 0) or with fewer than `min_answers` such questions measured."""
    gaps = right_answer_gaps(best, intent_similarity, correct)
    if keep <= 0.0 or len(gaps) < min_answers:
        return None
    return float(np.quantile(gaps, keep))


def right_answer_gaps(best: np.ndarray, intent_similarity: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """The gaps of the held-out questions answered right where the gap was measured (main view, intent examples)."""
    gap = np.asarray(intent_similarity, float) - np.asarray(best, float)
    return gap[np.asarray(correct).astype(bool) & np.isfinite(gap)]


def _threshold_for_precision(p: np.ndarray, correct: np.ndarray, precision: float) -> float:
    """Lowest threshold whose answers (p >= t) reach `precision`; 1.0 (never) if none does."""
    order = np.argsort(-p)
    hits = np.cumsum(correct[order])
    precisions = hits / np.arange(1, len(order) + 1)
    ok = np.nonzero(precisions >= precision)[0]
    if not len(ok):
        return 1.0
    # Deepest cut that still has the precision; at least a handful of answers to be meaningful.
    cut = ok[-1]
    return float(max(p[order][cut], 1e-6))


def margins(answer_scores: Sequence[Sequence[float]]) -> np.ndarray:
    """Best answer score minus the runner-up's (0 when there is only one answer)."""
    return np.array([(s[0] - s[1]) if len(s) > 1 else (s[0] if s else 0.0) for s in answer_scores], dtype=float)
