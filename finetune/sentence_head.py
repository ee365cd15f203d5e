"""A logistic regression over the fine-tuned transformer's own sentence vectors, mixed into its view.

The fine-tuned classifier's softmax layer learns from mini-batches while the
encoder under it still moves. Once training ends, a logistic regression
fitted on the final encoder's sentence vectors of the training examples (the
nearest-neighbour bank, kept anyway; a few seconds on 2 cores) is a second
reading of the same vectors that learns every intent from all of its
examples at once. Alone it is about as accurate as the layer; its
probabilities take a share of the transformer's view
(`TrainConfig.sentence_head`) before the views are blended
(finetune/blend.py), where it corrected some of the layer's errors. It reads
the vectors the transformer's pass computes anyway: no second forward pass
at prediction.

Held-out 10 % splits of the public benchmarks' training files (never their
test files), C 10, share 0 -> 0.2 (`TrainConfig.sentence_head`): BANKING77
0.9162 -> 0.9222, CLINC150 0.9623 -> 0.9675, HWU64 0.9273 -> 0.9283; the fit
takes 2-6 s. The trainer's own validation split does not choose the share: it
already chose the best epoch, the temperature and the kNN weight, and reads
within a message or two of the same at every share (BANKING77 0.9410 at 0,
0.9388-0.9410 up to 0.6) while the splits above moved by up to 8 messages.
On the benchmarks' test files the same trained models moved little, share 0
-> 0.2 (bench/sentence_head.py --model): BANKING77 0.9331 -> 0.9337, CLINC150
(all 5,500) 0.9360 -> 0.9356, HWU64 0.9210 at both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kefu.core import sklearn_io
from kefu.core.linear_probabilities import LinearProbabilities

FILE = "sentence_head.skops"


class SentenceHead:
    """P(intent | the transformer's sentence vector)."""

    def __init__(self, classifier, n_labels: int):
        self.classifier = classifier
        self.n_labels = n_labels
        self._probabilities = LinearProbabilities(classifier)

    @classmethod
    def fit(cls, vectors: np.ndarray, label_ids: np.ndarray, n_labels: int, c: float, seed: int = 42) -> "SentenceHead":
        from sklearn.linear_model import LogisticRegression

        classifier = LogisticRegression(C=c, max_iter=3000, random_state=seed)
        classifier.fit(np.asarray(vectors, dtype=np.float32), np.asarray(label_ids))
        return cls(classifier, n_labels)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(messages, all labels); labels the head never saw get 0."""
        probs = np.zeros((len(vectors), self.n_labels), dtype=np.float32)
        if len(vectors):
            probs[:, self.classifier.classes_] = self._probabilities.probabilities(np.asarray(vectors, dtype=np.float32))
        return probs

    def mix(self, probs: np.ndarray, vectors: np.ndarray, share: float) -> np.ndarray:
        """(1 - share) * the transformer view's probabilities + share * the head's."""
        return (1.0 - share) * probs + share * self.probabilities(vectors)

    def save(self, directory: Path) -> None:
        sklearn_io.save(Path(directory) / FILE, self.classifier)

    @classmethod
    def load(cls, directory: Path, n_labels: int) -> "SentenceHead":
        return cls(sklearn_io.load(Path(directory) / FILE), n_labels)
