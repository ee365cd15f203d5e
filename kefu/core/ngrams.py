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


class WordNgrams:
    """A fitted char_wb `TfidfVectorizer`'s `transform`, with each word's n-gram counts kept.

    sklearn cuts every message into character n-grams in Python and looks each one up in the
    vocabulary: 0.9 ms of a 14 ms NLU parse for a ten-word message. Words come back across
    messages ("order", "refund", "我的"), so their feature counts are kept (at most `max_words`
    words, then the memory starts again) and a message costs a merge of its words' counts. The
    numbers are sklearn's: its own n-gram function and vocabulary, then its sublinear tf, idf and
    L2 norm in the same order (tests/kefu/core/test_text_and_ngrams.py compares both on English,
    Chinese, mixed and odd-whitespace text). `supports(vectorizer)` says whether a vectorizer is
    one this reproduces; `NgramBank` leaves any other to sklearn.
    """

    def __init__(self, vectorizer, max_words: int = 50_000):
        self.vectorizer = vectorizer
        self.max_words = max_words
        self._idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self._vocabulary = vectorizer.vocabulary_
        self._words: dict = {}

    @staticmethod
    def supports(vectorizer) -> bool:
        try:
            params = vectorizer.get_params()
            fitted = hasattr(vectorizer, "idf_") and hasattr(vectorizer, "vocabulary_")
        except Exception:  # noqa: BLE001 - not a TfidfVectorizer at all
            return False
        return fitted and params.get("analyzer") == "char_wb" and params.get("lowercase") is True \
            and params.get("preprocessor") is None and params.get("strip_accents") is None \
            and params.get("input") == "content" and params.get("sublinear_tf") is True \
            and params.get("use_idf") is True and params.get("norm") == "l2" and params.get("binary") is False \
            and np.dtype(params.get("dtype")) == np.float64

    def transform(self, texts: Sequence[str]):
        import scipy.sparse as sp

        indices, data, indptr = [], [], [0]
        for text in texts:
            counts: dict = {}
            for word in self.vectorizer._white_spaces.sub(" ", text.lower()).split():
                for feature, count in self._word(word):
                    counts[feature] = counts.get(feature, 0) + count
            features = np.fromiter(sorted(counts), dtype=np.int32, count=len(counts))
            values = np.fromiter((counts[f] for f in features), dtype=np.float64, count=len(features))
            np.log(values, out=values)
            values += 1
            values *= self._idf[features]
            norm = np.sqrt(np.dot(values, values))
            if norm > 0:
                values /= norm
            indices.append(features)
            data.append(values)
            indptr.append(indptr[-1] + len(features))
        return sp.csr_matrix((np.concatenate(data) if data else np.zeros(0), np.concatenate(indices) if indices else
                              np.zeros(0, dtype=np.int32), np.asarray(indptr, dtype=np.int32)),
                             shape=(len(texts), len(self._idf)))

    def _word(self, word: str):
        known = self._words.get(word)
        if known is None:
            counts: dict = {}
            for gram in self.vectorizer._char_wb_ngrams(word):
                feature = self._vocabulary.get(gram)
                if feature is not None:
                    counts[feature] = counts.get(feature, 0) + 1
            known = tuple(counts.items())
            if len(self._words) >= self.max_words:
                self._words.clear()
            self._words[word] = known
        return known


class NgramBank:
    """A fitted vectorizer and one L2-normalised TF-IDF row per stored text (CSR)."""

    def __init__(self, vectorizer, matrix):
        self.vectorizer = vectorizer
        self._fast = WordNgrams(vectorizer) if WordNgrams.supports(vectorizer) else None
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
        texts = list(texts)
        if self._fast is not None and all(isinstance(text, str) for text in texts):
            return self._fast.transform(texts)
        return self.vectorizer.transform(texts)

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
