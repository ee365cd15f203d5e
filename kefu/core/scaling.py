"""Turning scores into probabilities: softmax with a temperature, and a fitted sigmoid.

Used by the intent classifier (calibrated confidences, the in-domain signal of
its embeddings and of its n-gram companion) and by anything else that maps a
similarity to "how likely is this in domain".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Grid + refinement search for the temperature that minimises held-out NLL."""
    if len(labels) == 0:
        return 1.0

    def nll(t: float) -> float:
        p = softmax(logits, t)[np.arange(len(labels)), labels]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(10.0), 60))
    best = min(grid, key=nll)
    fine = np.linspace(best * 0.9, best * 1.1, 21)
    return float(min(fine, key=nll))


@dataclass
class SigmoidScaler:
    """P(in domain) = sigmoid(slope * (similarity - threshold)).

    Fitted on held-out in-domain similarities: the threshold is their
    `quantile` (that share of real in-domain messages falls below 0.5), the
    slope maps their median to 0.99.
    """

    threshold: float = 0.3
    slope: float = 20.0

    @classmethod
    def fit(cls, held_out_similarities: np.ndarray, quantile: float, default_threshold: float = 0.3) -> "SigmoidScaler":
        if len(held_out_similarities) < 5:
            # Too little held-out data to estimate the tail: a permissive default.
            return cls(threshold=default_threshold, slope=20.0)
        threshold = float(np.quantile(held_out_similarities, quantile))
        median = float(np.median(held_out_similarities))
        return cls(threshold=threshold, slope=float(np.log(99.0) / max(median - threshold, 1e-3)))

    def probability(self, similarities: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.slope * (np.asarray(similarities) - self.threshold)))

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)
