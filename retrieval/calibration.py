"""Held-out evidence for the knowledge-base decision, without starving the index.

Each answer's questions are split into `folds`; for each fold an index is built
from every other question (plus the answer texts), and the fold's questions are
searched against it. Every question is held out exactly once, and each probe
index still holds most of every answer's questions, so the scores resemble
what the full index sees on a new question. Messages that must never get a
knowledge-base answer (out-of-scope examples) are searched too, as negatives.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from retrieval.config import IndexConfig
from retrieval.decision import margins
from retrieval.embedder import Embedder, MemoEmbedder
from retrieval.index import QAIndex
from retrieval.intent_neighbours import IntentNeighbours
from retrieval.qa import QAPair, normalize_text


class Ranking(NamedTuple):
    """How answers are ranked: IndexConfig.answer_text_weight and IndexConfig.answer_head."""

    answer_text_weight: float
    answer_head: float

    @classmethod
    def of(cls, config: IndexConfig) -> "Ranking":
        return cls(float(config.answer_text_weight), float(config.answer_head))

    def __str__(self) -> str:
        return f"answer text {self.answer_text_weight:g}, answer head {self.answer_head:g}"


@dataclass
class CalibrationSet:
    best: np.ndarray      # best answer score per message
    margin: np.ndarray    # best minus runner-up answer score
    correct: np.ndarray   # 1 where answering with the best answer would have been right
    answerable: np.ndarray  # 1 for held-out questions, 0 for negatives
    second_view: np.ndarray  # 1 where the second view scored the message (SearchResult.second_view)
    # Cosine of the message's nearest intent example (IntentNeighbours) in the main view; NaN where not measured
    # (no intent examples, or the second view scored the message).
    intent_similarity: np.ndarray
    # Best answer's main-view cosine (`AnswerHit.main_cosine`: before the joint answer head), what the intent gap compares.
    best_cosine: np.ndarray

    def __len__(self) -> int:
        return len(self.correct)


def calibration_set(pairs: Sequence[QAPair], negatives: Sequence[str], config: IndexConfig, embedder: Embedder,
                    folds: int = 3, top_k: int = 5, seed: int = 42, unanswerable_fraction: float = 0.15,
                    split: Optional[Tuple[Sequence[QAPair], Sequence[QAPair]]] = None,
                    intent_examples: Sequence[Tuple[str, str]] = (),
                    intents: Optional[IntentNeighbours] = None) -> CalibrationSet:
    """Searches held-out questions against probe indexes built without them (see `calibration_sets`)."""
    return calibration_sets(pairs, negatives, config, embedder, folds, top_k, seed, unanswerable_fraction, split,
                            intent_examples, intents=intents)[Ranking.of(config)]


def calibration_sets(pairs: Sequence[QAPair], negatives: Sequence[str], config: IndexConfig, embedder: Embedder,
                     folds: int = 3, top_k: int = 5, seed: int = 42, unanswerable_fraction: float = 0.15,
                     split: Optional[Tuple[Sequence[QAPair], Sequence[QAPair]]] = None,
                     intent_examples: Sequence[Tuple[str, str]] = (),
                     rankings: Sequence[Ranking] = (),
                     intents: Optional[IntentNeighbours] = None) -> Dict[Ranking, CalibrationSet]:
    """Held-out evidence per ranking: `config`'s own and each of `rankings`.

    In each fold a share of the answers (`unanswerable_fraction`) is left out
    of the probe index altogether, so their held-out questions are realistic
    unanswerable questions: on-topic, worded like the rest, with no right
    answer to find. `split` = (index material, held-out questions) replaces
    the folds, for an embedding model adapted on part of the data (only
    questions it never saw are fair calibration evidence). The rankings share
    the probe indexes (built with the joint answer head when one of them uses it): only the ranking differs.
    `intents`: the bot's intent examples embedded by `embedder`; each message's nearest is recorded.
    """
    rng = random.Random(seed)
    splits = [split] if split is not None else _folds(pairs, folds, rng)
    memo = MemoEmbedder(embedder)
    rankings = list(dict.fromkeys([Ranking.of(config), *rankings]))
    config = replace(config, kind="flat", answer_head=max(r.answer_head for r in rankings))
    evidence = {ranking: _Evidence() for ranking in rankings}
    for number, (kept, held) in enumerate(splits):
        if not held:
            continue
        answers = sorted({normalize_text(p.answer) for p in held})
        left_out = set(rng.sample(answers, int(len(answers) * unanswerable_fraction)))
        probe = QAIndex.build([p for p in kept if normalize_text(p.answer) not in left_out], config, embedder=memo, progress=False,
                              intent_examples=intent_examples)
        for ranking in rankings:
            probe.config.answer_text_weight, probe.config.answer_head = ranking
            evidence[ranking].collect(probe, [p.question for p in held],
                                      [None if normalize_text(p.answer) in left_out else normalize_text(p.answer) for p in held], top_k, intents)
            if number == 0 and negatives:
                evidence[ranking].collect(probe, list(negatives), [None] * len(negatives), top_k, intents)
    return {ranking: collected.arrays() for ranking, collected in evidence.items()}


def held_out_top1(evidence: CalibrationSet) -> float:
    """Share of the held-out questions with an answer in the probe index whose best answer was the right one."""
    answerable = evidence.answerable.astype(bool)
    return float(evidence.correct[answerable].mean()) if answerable.any() else 0.0


def _folds(pairs: Sequence[QAPair], folds: int, rng: random.Random) -> List[Tuple[List[QAPair], List[QAPair]]]:
    """Each answer's questions dealt round-robin into folds (answers with one question never held out)."""
    groups = defaultdict(list)
    for pair in pairs:
        groups[normalize_text(pair.answer)].append(pair)
    fold_of = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        order = group[:]
        rng.shuffle(order)
        for position, pair in enumerate(order):
            fold_of[id(pair)] = position % folds
    return [([p for p in pairs if fold_of.get(id(p)) != fold], [p for p in pairs if fold_of.get(id(p)) == fold]) for fold in range(folds)]


class _Evidence:
    def __init__(self):
        self.best, self.margin, self.correct, self.answerable, self.second_view, self.intent_similarity = [], [], [], [], [], []
        self.best_cosine = []

    def collect(self, index: QAIndex, texts: List[str], expected: List[Optional[str]], top_k: int,
                intents: Optional[IntentNeighbours] = None) -> None:
        queries = index.encode_queries(texts)
        results = index.search(queries, k=top_k)
        nearest = intents.nearest(queries.vectors) if intents is not None else np.full(len(texts), np.nan)
        self.intent_similarity.extend(np.nan if r.second_view else float(s) for r, s in zip(results, nearest))
        scores = [[a.score for a in r.answers] for r in results]
        self.best.extend(s[0] if s else 0.0 for s in scores)
        self.best_cosine.extend(r.answers[0].main_cosine if r.answers else 0.0 for r in results)
        self.margin.extend(margins(scores).tolist())
        self.correct.extend(bool(r.answers) and e is not None and normalize_text(r.answers[0].answer) == e
                            for r, e in zip(results, expected))
        self.answerable.extend(e is not None for e in expected)
        self.second_view.extend(r.second_view for r in results)

    def arrays(self) -> CalibrationSet:
        return CalibrationSet(np.asarray(self.best, float), np.asarray(self.margin, float),
                              np.asarray(self.correct, int), np.asarray(self.answerable, int), np.asarray(self.second_view, int),
                              np.asarray(self.intent_similarity, float), np.asarray(self.best_cosine, float))
