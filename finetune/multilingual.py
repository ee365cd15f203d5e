"""The multilingual view: frozen sentence embeddings and a logistic-regression head over them.

The fine-tuned MiniLM reads English well and Chinese hardly at all (244 CJK
characters in its vocabulary). A frozen multilingual encoder
(`kefu.core.sentence_encoder`, USE multilingual v3 by default) reads both; a
logistic regression on its vectors, trained on every example in every
language, is a strong classifier on its own (held-out, this project's data:
English 0.951, Chinese 0.937) and a partner the transformer is blended with
per message (finetune/trainer.py fits the blend on the held-out split).
Its nearest-training-example cosine is an in-domain signal like the
transformer's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from kefu.core import sklearn_io
from kefu.core.errors import ModelLoadError
from kefu.core.linear_probabilities import LinearProbabilities

CLASSIFIER_FILE = "multilingual_classifier.skops"
BANK_FILE = "multilingual_bank.npz"


class MultilingualHead:
    """A logistic regression on sentence vectors, plus the training vectors for the nearest-example similarity."""

    def __init__(self, classifier, bank: np.ndarray, bank_labels: np.ndarray, n_labels: int):
        self.classifier = classifier
        self._probabilities = LinearProbabilities(classifier)
        self.bank = bank.astype(np.float32)
        self.bank_labels = bank_labels.astype(np.int64)
        self.n_labels = n_labels

    @classmethod
    def fit(cls, vectors: np.ndarray, label_ids: np.ndarray, n_labels: int, c: float = 10.0, seed: int = 42) -> "MultilingualHead":
        from sklearn.linear_model import LogisticRegression

        classifier = LogisticRegression(C=c, max_iter=3000, random_state=seed)
        classifier.fit(vectors, np.asarray(label_ids))
        return cls(classifier, vectors, np.asarray(label_ids), n_labels)

    def score(self, vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(log-probabilities over all labels, cosine to the nearest training example) for unit `vectors`."""
        log_probs = np.full((len(vectors), self.n_labels), -30.0, dtype=np.float32)
        if len(vectors):
            log_probs[:, self.classifier.classes_] = np.maximum(self._probabilities.log_probabilities(vectors), -30.0)
        sims = vectors @ self.bank.T if len(self.bank) else np.zeros((len(vectors), 0))
        nearest = sims.max(axis=1) if sims.shape[1] else np.zeros(len(vectors))
        return log_probs, nearest

    def save(self, directory: Path) -> None:
        sklearn_io.save(Path(directory) / CLASSIFIER_FILE, self.classifier)
        np.savez(Path(directory) / BANK_FILE, vectors=self.bank.astype(np.float16), labels=self.bank_labels.astype(np.int32))

    @classmethod
    def load(cls, directory: Path, n_labels: int) -> "MultilingualHead":
        classifier = sklearn_io.load(Path(directory) / CLASSIFIER_FILE)
        try:
            with np.load(Path(directory) / BANK_FILE, allow_pickle=False) as stored:
                bank, labels = stored["vectors"], stored["labels"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{Path(directory) / BANK_FILE} is missing or corrupt: {exc}") from exc
        return cls(classifier, bank, labels, n_labels)

