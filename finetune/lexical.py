"""A character n-gram companion for text the transformer's vocabulary cannot read.

all-MiniLM-L6-v2's WordPiece vocabulary has 244 CJK characters, so most
Chinese text becomes [UNK] and the fine-tuned transformer sees next to
nothing. Character n-grams (TF-IDF, 1-3 characters) need no vocabulary and no
word segmentation; a logistic regression on them classifies such messages.

The companion is trained only when the training data needs it
(`kefu.coverage.needs_lexical`), and its vote is weighted per message by how
much of the message the tokenizer can read (`kefu.coverage.token_coverage`): an English message
(coverage 1.0) gets the transformer's answer unchanged, a Chinese one mostly
the companion's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from kefu.coverage import needs_lexical, token_coverage, transformer_weight  # noqa: F401  (re-exported)

LEXICAL_FILE = "lexical.joblib"


@dataclass
class LexicalInDomain:
    """In-domain probability from the cosine to the nearest training example in n-gram space."""

    threshold: float = 0.2
    slope: float = 20.0

    @classmethod
    def fit(cls, similarities: np.ndarray, quantile: float) -> "LexicalInDomain":
        if len(similarities) < 5:
            return cls()
        threshold = float(np.quantile(similarities, quantile))
        median = float(np.median(similarities))
        return cls(threshold=threshold, slope=float(np.log(99.0) / max(median - threshold, 1e-3)))

    def probability(self, similarities: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.slope * (similarities - self.threshold)))

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)


class CharNgramClassifier:
    """TF-IDF over character 1-3-grams and a logistic regression; also a nearest-example similarity."""

    def __init__(self, vectorizer, classifier, bank, n_labels: int):
        self.vectorizer = vectorizer
        self.classifier = classifier
        self.bank = bank  # L2-normalised TF-IDF rows of the training texts (sparse)
        self.n_labels = n_labels

    @classmethod
    def fit(cls, texts: Sequence[str], label_ids: np.ndarray, n_labels: int, seed: int = 42) -> "CharNgramClassifier":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=True)
        bank = vectorizer.fit_transform(list(texts))
        classifier = LogisticRegression(C=20.0, max_iter=3000, class_weight="balanced", random_state=seed)
        classifier.fit(bank, np.asarray(label_ids))
        return cls(vectorizer, classifier, bank, n_labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities over all labels (labels absent from the training texts get 0)."""
        features = self.vectorizer.transform(list(texts))
        probs = np.zeros((len(texts), self.n_labels), dtype=np.float32)
        probs[:, self.classifier.classes_] = self.classifier.predict_proba(features)
        return probs

    def similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine to the nearest training text (rows are L2-normalised, so a sparse dot product)."""
        features = self.vectorizer.transform(list(texts))
        sims = (features @ self.bank.T).toarray()
        return sims.max(axis=1) if sims.shape[1] else np.zeros(len(texts))

    def save(self, directory: Path) -> None:
        import joblib

        joblib.dump({"vectorizer": self.vectorizer, "classifier": self.classifier, "bank": self.bank, "n_labels": self.n_labels},
                    Path(directory) / LEXICAL_FILE)

    @classmethod
    def load(cls, directory: Path) -> "CharNgramClassifier":
        import joblib

        stored = joblib.load(Path(directory) / LEXICAL_FILE)
        return cls(stored["vectorizer"], stored["classifier"], stored["bank"], int(stored["n_labels"]))
