"""Answer-level retrieval metrics on held-out questions: the report `kefu kb eval` writes."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from retrieval.errors import QADataError
from retrieval.qa import QAPair, normalize_text
from retrieval.ranking import AnswerHit


def evaluate(index, test_pairs: Sequence[QAPair], k: int = 10, latency_samples: int = 200, show_misses: int = 20) -> Dict[str, Any]:
    """Top-1/top-5 accuracy and MRR@k of the answers `index.search` ranks for each test question.

    An answer is correct when its normalised text equals the expected answer,
    or when one of its supporting questions has the expected pair id (so Rasa
    `faq/<name>` test data matches by id even if a response was reworded).
    Latency is measured one query at a time, embedding included, as a server
    sees it; `latency_samples=0` skips it.
    """
    if not test_pairs:
        raise QADataError("No test questions to evaluate")
    results = index.search([p.question for p in test_pairs], k=max(k, 5))
    ranks = [_rank(r.answers[:k], expected) for r, expected in zip(results, test_pairs)]
    known_answers = {normalize_text(p.answer) for p in index.pairs.values()}
    report: Dict[str, Any] = {
        "queries": len(test_pairs),
        "top1_accuracy": _mean([r == 1 for r in ranks]),
        "top5_accuracy": _mean([r is not None and r <= 5 for r in ranks]),
        "mrr": _mean([1.0 / r if r else 0.0 for r in ranks]),
        "mrr_cutoff": k,
        "answers_not_in_index": sum(normalize_text(p.answer) not in known_answers for p in test_pairs),
        "index": {"kind": index.kind, "entries": len(index), "model": index.embedder.name},
        "answer_bonus": index.config.answer_bonus,
        "answer_text_weight": index.config.answer_text_weight,
        "answer_head": index.config.answer_head,
        "misses": [
            {
                "question": expected.question,
                "expected": expected.answer,
                "got": result.answers[0].answer if result.answers else None,
                "score": round(result.answers[0].score, 4) if result.answers else None,
            }
            for result, expected, rank in zip(results, test_pairs, ranks)
            if rank != 1
        ][:show_misses],
    }
    if latency_samples > 0:
        report.update(_latency(index, [p.question for p in test_pairs], latency_samples))
    return report


def _rank(answers: List[AnswerHit], expected: QAPair) -> Optional[int]:
    for position, answer in enumerate(answers, start=1):
        if _correct(answer, expected):
            return position
    return None


def _correct(answer: AnswerHit, expected: QAPair) -> bool:
    return normalize_text(answer.answer) == normalize_text(expected.answer) or any(h.pair.id == expected.id for h in answer.hits)


def _latency(index, questions: List[str], samples: int) -> Dict[str, float]:
    index.search(questions[0])  # warm-up
    timings = []
    for i in range(samples):
        start = time.perf_counter()
        index.search(questions[i % len(questions)])
        timings.append((time.perf_counter() - start) * 1000.0)
    return {
        "latency_ms_p50": round(float(np.percentile(timings, 50)), 2),
        "latency_ms_p99": round(float(np.percentile(timings, 99)), 2),
        "latency_samples": samples,
    }


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 4) if len(values) else 0.0
