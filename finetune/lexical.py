"""A character n-gram companion for text the transformer's vocabulary cannot read.

all-MiniLM-L6-v2's WordPiece vocabulary has 244 CJK characters, so most
Chinese text becomes [UNK] and the fine-tuned transformer sees next to
nothing. A logistic regression over character n-grams (kefu.core.ngrams)
classifies such messages.

The companion is trained only when the training data needs it
(`kefu.core.text.needs_lexical`), and its vote is weighted per message by how
much of the message the tokenizer can read: an English message (coverage 1.0)
gets the transformer's answer unchanged, a Chinese one mostly the companion's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

from kefu.core import sklearn_io
from kefu.core.linear_probabilities import LinearProbabilities
from kefu.core.ngrams import NgramBank

PREFIX = "lexical"
CLASSIFIER_FILE = "lexical_classifier.skops"


class CharNgramClassifier:
    """A logistic regression on an `NgramBank` of the training texts (also a nearest-example similarity)."""

    def __init__(self, bank: NgramBank, classifier, n_labels: int):
        self.bank = bank
        self.classifier = classifier
        self._probabilities = LinearProbabilities(classifier)
        self.n_labels = n_labels

    @classmethod
    def fit(cls, texts: Sequence[str], label_ids: np.ndarray, n_labels: int, seed: int = 42) -> "CharNgramClassifier":
        from sklearn.linear_model import LogisticRegression

        bank = NgramBank.fit(texts)
        classifier = LogisticRegression(C=20.0, max_iter=3000, class_weight="balanced", random_state=seed)
        classifier.fit(bank.matrix, np.asarray(label_ids))
        return cls(bank, classifier, n_labels)

    def score(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """(probabilities over all labels, cosine to the nearest training text), from one transform of `texts`.

        Labels absent from the training texts get probability 0.
        """
        features = self.bank.transform(texts)
        probs = np.zeros((len(texts), self.n_labels), dtype=np.float32)
        probs[:, self.classifier.classes_] = self._probabilities.probabilities(features)
        sims = self.bank.similarities(features)
        nearest = sims.max(axis=1) if sims.shape[1] else np.zeros(len(texts))
        return probs, nearest

    def save(self, directory: Path) -> None:
        self.bank.save(directory, PREFIX)
        sklearn_io.save(Path(directory) / CLASSIFIER_FILE, self.classifier)

    @classmethod
    def load(cls, directory: Path, n_labels: int) -> "CharNgramClassifier":
        return cls(NgramBank.load(directory, PREFIX), sklearn_io.load(Path(directory) / CLASSIFIER_FILE), n_labels)
