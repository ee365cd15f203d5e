"""Character n-gram scores for questions the embedding model cannot read (e.g. Chinese with MiniLM).

Built when the Q&A data needs it (IndexConfig.lexical, see kefu/coverage.py),
it keeps a TF-IDF row per index entry; a query's final score for an entry is
w * embedding cosine + (1 - w) * n-gram cosine, with w from how much of the
query the embedding model's tokenizer reads (1.0 for English: unchanged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

LEXICAL_FILE = "lexical.joblib"


class LexicalScorer:
    def __init__(self, vectorizer, matrix, ids: np.ndarray):
        self.vectorizer = vectorizer
        self.matrix = matrix  # CSR, one L2-normalised TF-IDF row per entry
        self.ids = np.asarray(ids, dtype=np.int64)  # vector id of each row
        self._row_of: Dict[int, int] = {}

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> "LexicalScorer":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=True)
        return cls(vectorizer, vectorizer.fit_transform(list(texts)).tocsr(), np.asarray(ids))

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """New entries use the existing n-gram vocabulary (a rebuild refreshes it)."""
        import scipy.sparse as sp

        if len(ids):
            self.matrix = sp.vstack([self.matrix, self.vectorizer.transform(list(texts))]).tocsr()
            self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
            self._row_of = {}

    def remove(self, ids: Iterable[int]) -> None:
        keep = ~np.isin(self.ids, np.fromiter(ids, dtype=np.int64))
        self.matrix, self.ids = self.matrix[keep], self.ids[keep]
        self._row_of = {}

    def scores(self, queries: Sequence[str], k: int) -> List[Dict[int, float]]:
        """Per query, the k entries with the highest n-gram cosine: {vector id: cosine}."""
        if not len(self.ids):
            return [{} for _ in queries]
        sims = (self.vectorizer.transform(list(queries)) @ self.matrix.T).toarray()
        top = np.argsort(-sims, axis=1)[:, :k]
        return [{int(self.ids[j]): float(sims[q, j]) for j in top[q] if sims[q, j] > 0} for q in range(len(queries))]

    def entry_scores(self, query: str, ids: Sequence[int]) -> Dict[int, float]:
        if len(self._row_of) != len(self.ids):
            self._row_of = {int(v): r for r, v in enumerate(self.ids)}
        wanted = [self._row_of[int(i)] for i in ids if int(i) in self._row_of]
        if not wanted:
            return {}
        sims = (self.vectorizer.transform([query]) @ self.matrix[wanted].T).toarray()[0]
        return {int(self.ids[r]): float(s) for r, s in zip(wanted, sims)}

    def save(self, directory: Path) -> None:
        import joblib

        joblib.dump({"vectorizer": self.vectorizer, "matrix": self.matrix, "ids": self.ids}, Path(directory) / LEXICAL_FILE)

    @classmethod
    def load(cls, directory: Path) -> "LexicalScorer":
        import joblib

        stored = joblib.load(Path(directory) / LEXICAL_FILE)
        return cls(stored["vectorizer"], stored["matrix"], stored["ids"])
