"""Character n-gram scores for questions the embedding model cannot read (e.g. Chinese with MiniLM).

Built when the Q&A data needs it (IndexConfig.lexical, see kefu.core.text),
it keeps a TF-IDF row per index entry (kefu.core.ngrams); a query's final
score for an entry is w * embedding cosine + (1 - w) * n-gram cosine, with w
from how much of the query the embedding model's tokenizer reads (1.0 for
English: unchanged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Sequence, Tuple

import numpy as np

from kefu.core.errors import ModelLoadError
from kefu.core.ngrams import NgramBank

PREFIX = "lexical"
IDS_FILE = "lexical_ids.npy"


class LexicalScorer:
    def __init__(self, bank: NgramBank, ids: np.ndarray):
        self.bank = bank
        self.ids = np.asarray(ids, dtype=np.int64)  # vector id of each row
        self._row_of: Dict[int, int] = {}

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> "LexicalScorer":
        return cls(NgramBank.fit(texts), np.asarray(ids))

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """New entries use the existing n-gram vocabulary (a rebuild refreshes it)."""
        if len(ids):
            self.bank.append(texts)
            self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
            self._row_of = {}

    def remove(self, ids: Iterable[int]) -> None:
        keep = ~np.isin(self.ids, np.fromiter(ids, dtype=np.int64))
        self.bank.keep(keep)
        self.ids = self.ids[keep]
        self._row_of = {}

    def scores(self, query: str, k: int, also: Sequence[int] = ()) -> Tuple[Dict[int, float], Dict[int, float]]:
        """One transform of `query`: ({vector id: cosine} of its k best entries, the cosines of the entries in `also`)."""
        if not len(self.ids):
            return {}, {}
        sims = self.bank.similarities(self.bank.transform([query]))[0]
        top = np.argsort(-sims)[:k]
        best = {int(self.ids[j]): float(sims[j]) for j in top if sims[j] > 0}
        if len(self._row_of) != len(self.ids):
            self._row_of = {int(v): r for r, v in enumerate(self.ids)}
        others = {int(i): float(sims[self._row_of[int(i)]]) for i in also if int(i) in self._row_of}
        return best, others

    def save(self, directory: Path) -> None:
        self.bank.save(directory, PREFIX)
        np.save(Path(directory) / IDS_FILE, self.ids)

    @classmethod
    def load(cls, directory: Path) -> "LexicalScorer":
        bank = NgramBank.load(directory, PREFIX)
        try:
            ids = np.load(Path(directory) / IDS_FILE, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{Path(directory) / IDS_FILE} is missing or corrupt: {exc}") from exc
        if len(ids) != len(bank):
            raise ModelLoadError(f"{directory}: {len(ids)} n-gram ids for {len(bank)} rows; rebuild with `kefu kb build`")
        return cls(bank, ids)
