"""Calibrated confidences and the out-of-scope signal.

Softmax confidences of a fine-tuned classifier are over-confident and say
nothing about messages unlike any intent (a weather question gets 0.99 for
*some* intent). Two corrections, both fitted on the held-out split:

* temperature scaling of the logits (minimises held-out NLL);
* an in-domain probability from the cosine similarity of the message's
  embedding to its nearest training examples: a `SigmoidScaler`
  (kefu.core.scaling) fitted on held-out in-scope similarities (those messages
  were not in the bank, so they look like real new in-scope traffic).

The final confidence of intent i is p_softmax(i) * p_in_domain. When the data
has an `out_of_scope` intent, the removed mass goes to it, so clearly foreign
messages are *predicted* out_of_scope; otherwise Rasa's FallbackClassifier
catches the low confidence.
"""

from __future__ import annotations

import numpy as np

from kefu.core.payloads import OUT_OF_SCOPE
from kefu.core.scaling import SigmoidScaler, fit_temperature, softmax

__all__ = ["OUT_OF_SCOPE", "SigmoidScaler", "combine", "fit_knn_weight", "fit_temperature", "knn_similarity", "knn_vote", "softmax"]


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


def combine(probs: np.ndarray, p_in: np.ndarray, labels: list) -> np.ndarray:
    """Scales each row by its in-domain probability; the rest goes to out_of_scope if known."""
    scaled = probs * p_in[:, None]
    if OUT_OF_SCOPE in labels:
        oos = labels.index(OUT_OF_SCOPE)
        scaled[:, oos] = probs[:, oos] * p_in + (1.0 - p_in)
    return scaled
