"""Calibrated confidences and the out-of-scope signal.

Softmax confidences of a fine-tuned classifier are over-confident and say
nothing about messages unlike any intent (a weather question gets 0.99 for
*some* intent). Two corrections, both fitted on the held-out split:

* temperature scaling of the logits (minimises held-out NLL);
* an in-domain probability from the cosine similarity of the message's
  embedding to its nearest training examples. The threshold is the
  `ood_quantile` of held-out in-scope similarities (those messages were not in
  the bank, so they look like real new in-scope traffic); the slope maps the
  median held-out similarity to 0.99.

The final confidence of intent i is p_softmax(i) * p_in_domain. When the data
has an `out_of_scope` intent, the removed mass goes to it, so clearly foreign
messages are *predicted* out_of_scope; otherwise Rasa's FallbackClassifier
catches the low confidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np

OUT_OF_SCOPE = "out_of_scope"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Grid + refinement search for the NLL-minimising temperature."""
    if len(labels) == 0:
        return 1.0

    def nll(t: float) -> float:
        p = softmax(logits, t)[np.arange(len(labels)), labels]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(10.0), 60))
    best = min(grid, key=nll)
    fine = np.linspace(best * 0.9, best * 1.1, 21)
    return float(min(fine, key=nll))


def knn_similarity(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine similarity to the k nearest bank rows, from a (messages x bank) matrix."""
    k = max(1, min(k, sims.shape[1]))
    top = np.partition(sims, -k, axis=1)[:, -k:]
    return top.mean(axis=1)


def knn_vote(sims: np.ndarray, bank_labels: np.ndarray, n_labels: int, k: int = 10, temperature: float = 0.05) -> np.ndarray:
    """Class distribution from the k most similar training examples (softmax-weighted votes)."""
    k = max(1, min(k, sims.shape[1]))
    idx = np.argpartition(sims, -k, axis=1)[:, -k:]
    top = np.take_along_axis(sims, idx, axis=1)
    weights = np.exp((top - top.max(axis=1, keepdims=True)) / temperature)
    votes = np.zeros((sims.shape[0], n_labels))
    np.add.at(votes, (np.repeat(np.arange(sims.shape[0]), k), bank_labels[idx].ravel()), weights.ravel())
    return votes / votes.sum(axis=1, keepdims=True)


def fit_knn_weight(probs: np.ndarray, votes: np.ndarray, labels: np.ndarray) -> float:
    """Interpolation weight of the kNN vote that maximises held-out accuracy (then likelihood)."""
    if len(labels) == 0:
        return 0.0

    def score(w: float):
        mixed = (1 - w) * probs + w * votes
        acc = float((mixed.argmax(1) == labels).mean())
        nll = float(-np.log(np.clip(mixed[np.arange(len(labels)), labels], 1e-12, 1)).mean())
        return (acc, -nll, -w)

    return float(max(np.linspace(0.0, 0.6, 7), key=score))


@dataclass
class InDomainScaler:
    threshold: float
    slope: float
    neighbours: int

    @classmethod
    def fit(cls, held_out_similarities: np.ndarray, quantile: float, neighbours: int) -> "InDomainScaler":
        if len(held_out_similarities) < 5:
            # Too little held-out data to estimate the tail: a permissive default.
            return cls(threshold=0.3, slope=20.0, neighbours=neighbours)
        threshold = float(np.quantile(held_out_similarities, quantile))
        median = float(np.median(held_out_similarities))
        slope = float(np.log(99.0) / max(median - threshold, 1e-3))
        return cls(threshold=threshold, slope=slope, neighbours=neighbours)

    def probability(self, similarities: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.slope * (similarities - self.threshold)))

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)


def combine(probs: np.ndarray, p_in: np.ndarray, labels: list) -> np.ndarray:
    """Scales each row by its in-domain probability; the rest goes to out_of_scope if known."""
    scaled = probs * p_in[:, None]
    if OUT_OF_SCOPE in labels:
        oos = labels.index(OUT_OF_SCOPE)
        scaled[:, oos] = probs[:, oos] * p_in + (1.0 - p_in)
    return scaled
