"""A second vector per entry from a multilingual sentence encoder, for queries the main model cannot read.

The packaged MiniLM (the main embedding model, adapted to the Q&A) reads 244
Chinese characters. USE multilingual v3 (`kefu.core.sentence_encoder`) reads
Chinese, Traditional included, at about 1 ms per message. Built when the Q&A
needs it (IndexConfig.multilingual), the view keeps one such vector per entry
in its own faiss index; a query's score for an entry is
w * main cosine + (1 - w) * multilingual cosine, with w from how much of the
query the main tokenizer reads (1.0 for English: unchanged). Held-out Chinese
paraphrases, top-1: 0.444 with character n-grams, 0.651 with this view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from kefu.core import sentence_encoder
from kefu.core.errors import ModelLoadError
from kefu.core.sentence_encoder import SentenceEncoder
from retrieval.config import IndexConfig
from retrieval.vectors import VectorIndex

INDEX_FILE = "multilingual.faiss"


class MultilingualView:
    def __init__(self, encoder: SentenceEncoder, vectors: VectorIndex):
        self.encoder = encoder
        self.vectors = vectors

    @classmethod
    def build(cls, encoder: SentenceEncoder, ids: np.ndarray, texts: Sequence[str], config: IndexConfig) -> "MultilingualView":
        return cls(encoder, VectorIndex.build(encoder.encode(list(texts)), np.asarray(ids, dtype=np.int64), config, kind="flat",
                                              progress=False))

    @property
    def name(self) -> str:
        return self.encoder.name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(list(texts))

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        if len(ids):
            self.vectors.add(self.encode(texts), np.asarray(ids, dtype=np.int64), progress=False)

    def remove(self, ids: Sequence[int]) -> None:
        self.vectors.remove(ids)

    def scores(self, vector: np.ndarray, k: int, also: Sequence[int] = ()) -> Tuple[Dict[int, float], Dict[int, float]]:
        """({vector id: cosine} of the k nearest entries, the cosines of the entries in `also`)."""
        scores, ids = self.vectors.search(vector[None, :], k)
        best = {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0}
        missing = [int(i) for i in also if int(i) not in best]
        others = dict(zip(missing, (self.vectors.reconstruct(np.asarray(missing)) @ vector).tolist())) if missing else {}
        return best, {**{i: best[i] for i in also if i in best}, **others}

    def save(self, directory: Path) -> None:
        import faiss

        faiss.write_index(self.vectors.index, str(Path(directory) / INDEX_FILE))

    @classmethod
    def load(cls, directory: Path, encoder_name: str) -> "MultilingualView":
        import faiss

        path = Path(directory) / INDEX_FILE
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ModelLoadError(f"{path} is missing or corrupt ({str(exc).splitlines()[0]}); rebuild with `kefu kb build`") from exc
        encoder = sentence_encoder.load(encoder_name)
        if encoder is None or index.d != encoder.dimension:
            raise ModelLoadError(f"{path}: {index.d}-d vectors, but encoder {encoder_name!r} makes {getattr(encoder, 'dimension', 0)}-d ones")
        return cls(encoder, VectorIndex(index, "flat", {}))
