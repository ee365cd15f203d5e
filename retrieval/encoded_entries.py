"""One multilingual-encoder vector per index entry, kept in step with the index and saved with it.

Shared by the multilingual view (retrieval/multilingual.py) and the joint answer
head (retrieval/joint_head.py): both keep the entries' vectors so that their
answer heads can be refitted after `add` / `delete` without encoding every
question again, and both learn the bot's intent examples as classes of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from kefu.core import sentence_encoder
from kefu.core.errors import ModelLoadError
from kefu.core.sentence_encoder import SentenceEncoder
from retrieval.config import IndexConfig
from retrieval.vectors import VectorIndex

# Head classes of the intent examples an answer head also learns: the probability a scripted intent's
# message has, it does not give to an answer.
INTENT_CLASS = "intent:"


class EncodedEntries:
    """The encoder and a flat faiss index of the entries' vectors, under the index's vector ids."""

    def __init__(self, encoder: SentenceEncoder, vectors: VectorIndex):
        self.encoder = encoder
        self.vectors = vectors

    @staticmethod
    def entry_vectors(encoder: SentenceEncoder, ids: np.ndarray, texts: Sequence[str], config: IndexConfig) -> VectorIndex:
        return VectorIndex.build(encoder.encode(list(texts)), np.asarray(ids, dtype=np.int64), config, kind="flat", progress=False)

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

    def save_vectors(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.vectors.index, str(path))

    @staticmethod
    def read_vectors(path: Path, encoder_name: str) -> Tuple[SentenceEncoder, VectorIndex]:
        """The encoder and the stored vectors, refused when either is missing, corrupt or of another dimension."""
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ModelLoadError(f"{path} is missing or corrupt ({str(exc).splitlines()[0]}); rebuild with `kefu kb build`") from exc
        encoder = sentence_encoder.load(encoder_name)
        if encoder is None or index.d != encoder.dimension:
            raise ModelLoadError(f"{path}: {index.d}-d vectors, but encoder {encoder_name!r} makes {getattr(encoder, 'dimension', 0)}-d ones")
        return encoder, VectorIndex(index, "flat", {})


def save_intent_examples(path: Path, vectors: np.ndarray, names: Sequence[str]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, vectors=vectors, names=np.asarray(list(names), dtype=str))


def load_intent_examples(path: Path, dimension: int) -> Tuple[np.ndarray, List[str]]:
    """(vectors, class names) saved by `save_intent_examples`; refused when corrupt or not `dimension` wide."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            vectors, names = stored["vectors"].astype(np.float32), stored["names"].tolist()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path} is corrupt ({exc}); rebuild with `kefu kb build`") from exc
    if vectors.shape != (len(names), dimension):
        raise ModelLoadError(f"{path} is inconsistent; rebuild with `kefu kb build`")
    return vectors, names
