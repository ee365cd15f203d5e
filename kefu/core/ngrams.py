"""Character n-grams: the one TF-IDF set-up for text a transformer's vocabulary cannot read.

Character 1-3-grams (`char_wb`) need no vocabulary and no word segmentation,
which is what Chinese needs when the transformer is all-MiniLM-L6-v2. The
intent classifier (finetune) puts a logistic regression on them, the knowledge
base (retrieval) keeps a row per entry; both score a message with one
`transform` of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from kefu.core import atomic, sklearn_io
from kefu.core.errors import ModelLoadError


def make_vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=True)


class NgramBank:
    """A fitted vectorizer and one L2-normalised TF-IDF row per stored text (CSR)."""

    def __init__(self, vectorizer, matrix):
        self.vectorizer = vectorizer
        self._set(matrix)

    def _set(self, matrix) -> None:
        self.matrix = matrix.tocsr()
        # The rows as columns (CSR of the transpose), made once: `features @ matrix.T` converted it on every message.
        self._columns = None

    @classmethod
    def fit(cls, texts: Sequence[str]) -> "NgramBank":
        vectorizer = make_vectorizer()
        return cls(vectorizer, vectorizer.fit_transform(list(texts)))

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def transform(self, texts: Sequence[str]):
        """Features of `texts` in this bank's vocabulary (sparse, rows L2-normalised)."""
        return self.vectorizer.transform(list(texts))

    def similarities(self, features, rows: Optional[Sequence[int]] = None) -> np.ndarray:
        """Cosine of each feature row to every stored row (or to `rows`), dense (queries x rows)."""
        if rows is not None:
            return (features @ self.matrix[list(rows)].T).toarray()
        if self._columns is None:
            self._columns = self.matrix.T.tocsr()
        return (features @ self._columns).toarray()

    def append(self, texts: Sequence[str]) -> None:
        """New rows in the existing vocabulary (a rebuild refreshes it)."""
        import scipy.sparse as sp

        if len(texts):
            self._set(sp.vstack([self.matrix, self.transform(texts)]))

    def keep(self, mask: np.ndarray) -> None:
        self._set(self.matrix[np.asarray(mask, dtype=bool)])

    def save(self, directory: Path, prefix: str) -> None:
        import scipy.sparse as sp

        sklearn_io.save(Path(directory) / f"{prefix}_vectorizer.skops", self.vectorizer)
        with atomic.writing(Path(directory) / f"{prefix}_rows.npz", "wb") as handle:
            sp.save_npz(handle, self.matrix)

    @classmethod
    def load(cls, directory: Path, prefix: str) -> "NgramBank":
        import scipy.sparse as sp

        vectorizer = sklearn_io.load(Path(directory) / f"{prefix}_vectorizer.skops")
        path = Path(directory) / f"{prefix}_rows.npz"
        try:
            matrix = sp.load_npz(path)
        except Exception as exc:  # missing, truncated or not an npz
            raise ModelLoadError(f"{path} is missing or corrupt: {exc}") from exc
        return cls(vectorizer, matrix)
