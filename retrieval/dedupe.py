"""Merging duplicate Q&A pairs so that each is indexed once.

Three kinds, decided on normalised text (see `qa.normalize_text`):

* exact duplicates: same question, same answer;
* conflicts: same question, different answers - the newest by timestamp wins
  (no timestamp counts as oldest; on a tie the later pair wins, so a file
  loaded later, or an `add`, overrides older data);
* near duplicates: same answer and question embeddings with cosine >= threshold.

Merged pairs hand their tags to the pair that is kept.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence

import numpy as np

from retrieval.qa import QAPair, normalize_text, parse_timestamp

EXACT = "exact duplicate"
NEAR = "near duplicate"
CONFLICT = "conflicting answer"
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass
class Merge:
    kept: QAPair
    dropped: QAPair
    reason: str
    similarity: Optional[float] = None

    def describe(self) -> str:
        detail = f", cosine {self.similarity:.3f}" if self.similarity is not None else ""
        if self.reason == CONFLICT:
            return (f"{self.reason}{detail}: {self.dropped.question!r} had two answers; kept the newer "
                    f"({self.kept.timestamp or 'no timestamp'}, id {self.kept.id}), dropped id {self.dropped.id} "
                    f"({self.dropped.timestamp or 'no timestamp'})")
        return f"{self.reason}{detail}: {self.dropped.question!r} (id {self.dropped.id}) merged into {self.kept.question!r} (id {self.kept.id})"


@dataclass
class DedupeResult:
    keep: List[int]
    merges: List[Merge] = field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        counts = {EXACT: 0, NEAR: 0, CONFLICT: 0}
        for merge in self.merges:
            counts[merge.reason] += 1
        return counts


def find_duplicates(
    pairs: Sequence[QAPair],
    vectors: np.ndarray,
    threshold: float = 0.95,
    locked: Optional[Sequence[bool]] = None,
    readable: Optional[Sequence[bool]] = None,
) -> DedupeResult:
    """Which pairs to keep (indexes, in input order) and what was merged into what.

    `vectors` are the unit-length question embeddings, row for row. `locked`
    pairs (those already in an index) are dropped only when a newer pair
    answers the same question differently. Only `readable` questions (the
    embedding model's tokenizer reads them; see kefu.core.text) are merged
    by embedding similarity: two Chinese questions that MiniLM reads as
    mostly [UNK] look alike to it whatever they say.
    """
    locked = list(locked) if locked is not None else [False] * len(pairs)
    readable = list(readable) if readable is not None else [True] * len(pairs)
    questions = [normalize_text(p.question) for p in pairs]
    answers = [normalize_text(p.answer) for p in pairs]
    merges: List[Merge] = []
    alive = [True] * len(pairs)

    by_question = defaultdict(list)
    for i, question in enumerate(questions):
        by_question[question].append(i)
    for group in by_question.values():
        if len(group) < 2:
            continue
        newest = max(group, key=lambda i: (_time(pairs[i]), i))
        first = {}
        for i in sorted(group, key=lambda i: (not locked[i], i)):
            if answers[i] != answers[newest]:
                merges.append(Merge(pairs[newest], pairs[i], CONFLICT))
                alive[i] = False
            elif answers[i] in first and not locked[i]:
                _merge_tags(pairs[first[answers[i]]], pairs[i])
                merges.append(Merge(pairs[first[answers[i]]], pairs[i], EXACT))
                alive[i] = False
            else:
                first.setdefault(answers[i], i)

    by_answer = defaultdict(list)
    for i in range(len(pairs)):
        if alive[i]:
            by_answer[answers[i]].append(i)
    for group in by_answer.values():
        if len(group) < 2:
            continue
        kept: List[int] = []
        for i in sorted(group, key=lambda i: (not locked[i], i)):
            candidates = [k for k in kept if readable[k]]
            if candidates and readable[i] and not locked[i]:
                sims = vectors[candidates] @ vectors[i]
                best = int(np.argmax(sims))
                if sims[best] >= threshold:
                    _merge_tags(pairs[candidates[best]], pairs[i])
                    merges.append(Merge(pairs[candidates[best]], pairs[i], NEAR, float(sims[best])))
                    alive[i] = False
                    continue
            kept.append(i)
    return DedupeResult([i for i, ok in enumerate(alive) if ok], merges)


def _time(pair: QAPair) -> datetime:
    return parse_timestamp(pair.timestamp) if pair.timestamp else _OLDEST


def _merge_tags(kept: QAPair, dropped: QAPair) -> None:
    kept.tags.extend(tag for tag in dropped.tags if tag not in kept.tags)
