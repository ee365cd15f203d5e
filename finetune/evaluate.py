"""Held-out evaluation of an intent model: the report `kefu nlu eval` writes."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Dict, Optional, Sequence

import numpy as np

from finetune.calibration import OUT_OF_SCOPE
from finetune.data import Example

FALLBACK = "nlu_fallback"


def evaluate(
    model,
    examples: Sequence[Example],
    fallback_threshold: Optional[float] = 0.5,
    latency_samples: int = 300,
    top_confusions: int = 20,
) -> Dict[str, Any]:
    """Accuracy, macro F1, per-intent scores, top confusions and per-message latency.

    With `fallback_threshold`, predictions below it count as `nlu_fallback`, as
    Rasa's FallbackClassifier would make them; `out_of_scope` metrics then tell
    how many foreign messages are caught and how many in-scope ones are lost.
    """
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    examples = [e for e in examples if e.text]
    if not examples:
        raise ValueError("No examples to evaluate")
    predictions = model.predict([e.text for e in examples])
    truth = [e.intent for e in examples]
    predicted = [p.intent for p in predictions]
    labels = sorted(set(truth) | set(predicted))

    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    per_intent = {
        label: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        if s > 0
    }
    confusions = Counter((t, p) for t, p in zip(truth, predicted) if t != p)
    report: Dict[str, Any] = {
        "examples": len(examples),
        "accuracy": round(float(np.mean([t == p for t, p in zip(truth, predicted)])), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=sorted(set(truth)), average="macro", zero_division=0)), 4),
        "per_intent": per_intent,
        "confused_pairs": [
            {"true": t, "predicted": p, "count": n} for (t, p), n in confusions.most_common(top_confusions)
        ],
        "calibration_ece": round(expected_calibration_error([p.confidence for p in predictions], [t == p for t, p in zip(truth, predicted)]), 4),
    }
    if fallback_threshold is not None:
        report["fallback"] = _fallback_metrics(truth, predictions, fallback_threshold)
    report.update(_latency([e.text for e in examples], model, latency_samples))
    return report


def _fallback_metrics(truth, predictions, threshold: float) -> Dict[str, Any]:
    final = [p.intent if p.confidence >= threshold else FALLBACK for p in predictions]
    in_scope = [i for i, t in enumerate(truth) if t != OUT_OF_SCOPE]
    oos = [i for i, t in enumerate(truth) if t == OUT_OF_SCOPE]
    metrics: Dict[str, Any] = {"threshold": threshold}
    if in_scope:
        metrics["in_scope_accuracy"] = round(float(np.mean([final[i] == truth[i] for i in in_scope])), 4)
        metrics["in_scope_fallback_rate"] = round(float(np.mean([final[i] == FALLBACK for i in in_scope])), 4)
    if oos:
        metrics["out_of_scope_recall"] = round(float(np.mean([final[i] in (OUT_OF_SCOPE, FALLBACK) for i in oos])), 4)
    return metrics


def _latency(texts, model, samples: int) -> Dict[str, float]:
    """One message at a time, as a server sees them."""
    model.predict([texts[0]])  # warm-up
    timings = []
    for text in texts[: max(1, samples)]:
        start = time.perf_counter()
        model.predict([text])
        timings.append((time.perf_counter() - start) * 1000.0)
    return {
        "latency_ms_p50": round(float(np.percentile(timings, 50)), 2),
        "latency_ms_p99": round(float(np.percentile(timings, 99)), 2),
    }


def expected_calibration_error(confidences, correct, bins: int = 10) -> float:
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=float)
    ece = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        sel = (conf > lo) & (conf <= lo + 1.0 / bins)
        if sel.any():
            ece += sel.mean() * abs(ok[sel].mean() - conf[sel].mean())
    return float(ece)
