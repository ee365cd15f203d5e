"""Search results, and grouping matched questions by the answer they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from retrieval.qa import QAPair, is_answer_text, normalize_text


@dataclass
class Hit:
    """A matched historical question; `score` is the cosine similarity to the query."""

    score: float
    pair: QAPair


@dataclass
class AnswerHit:
    """An answer and the matched questions that support it, best first."""

    score: float
    answer: str
    hits: List[Hit] = field(default_factory=list)
    # The main view's score before the joint answer head blended in (retrieval/joint_head.py); None: `score` is it.
    cosine: Optional[float] = None

    @property
    def pair(self) -> QAPair:
        return self.hits[0].pair

    @property
    def main_cosine(self) -> float:
        """The score on the cosine scale, comparable with other cosines (the intent-gap cut, retrieval.intent_neighbours)."""
        return self.score if self.cosine is None else self.cosine


@dataclass
class SearchResult:
    query: Optional[str]
    hits: List[Hit]
    answers: List[AnswerHit]
    # Scored with the second view (multilingual or n-gram): the main model reads the query poorly.
    second_view: bool = False


def group_by_answer(hits: Sequence[Hit], bonus: float = 0.0, answer_text_weight: float = 0.0) -> List[AnswerHit]:
    """One entry per distinct answer, scored by its best question.

    `bonus` > 0 adds bonus * score of every further supporting question. It
    helps only where answers have similar numbers of stored questions: on
    held-out questions it raised top-1 by 2-4 points with 5 questions per
    answer, and lowered it by 1.5-10 points when that number varied from 1
    to 4 (popular answers crowd out rare ones), so it is off by default.

    `answer_text_weight` w > 0 (answer texts indexed as entries): the answer's
    score is (best question's score + w * its answer text's score) / (1 + w);
    where one of the two is not among the hits, the lowest hit's score stands for it.
    0: the best of all its entries, answer text included.
    """
    groups: Dict[str, AnswerHit] = {}
    best_question: Dict[str, float] = {}
    answer_text: Dict[str, float] = {}
    for hit in sorted(hits, key=lambda h: -h.score):
        key = normalize_text(hit.pair.answer)
        (answer_text if is_answer_text(hit.pair) else best_question).setdefault(key, hit.score)
        if key not in groups:
            groups[key] = AnswerHit(score=hit.score, answer=hit.pair.answer, hits=[hit])
        else:
            groups[key].hits.append(hit)
            groups[key].score += bonus * hit.score
    if answer_text_weight > 0 and hits:
        # A question or answer text not among the hits scores at most the lowest hit: that bound stands for it.
        floor = min(hit.score for hit in hits)
        for key, group in groups.items():
            question = best_question.get(key, floor)
            text = answer_text.get(key, floor)
            supporting = group.score - group.hits[0].score  # the bonus part
            group.score = (question + answer_text_weight * text) / (1.0 + answer_text_weight) + supporting
    return sorted(groups.values(), key=lambda a: -a.score)
