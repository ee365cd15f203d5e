"""An answer classifier over both views of a question, blended into the main view's ranking.

A nearest neighbour scores an answer by its single closest stored question.
Where answers have many stored questions, a classifier that learns each
answer from all of them ranks better, and one that reads the main (adapted
MiniLM) vector next to the multilingual encoder's (USE) vector better than
either alone. BANKING77 used as Q&A (77 answers, ~100 questions each), a
development split of its training questions, adapted MiniLM: nearest
question top-1 0.911, a logistic regression over MiniLM 0.919, over USE
0.907, over both 0.926, and 0.7 * nearest cosine + 0.3 * its probability
0.933 (/tmp experiment, reproduced by `kefu kb build` choosing the share).

For a query the main model reads, an entry's score becomes
(1 - h) * main cosine + h * P(the entry's answer | both vectors), h =
`IndexConfig.answer_head`; the knowledge base picks h on held-out questions
at build (`KBConfig.answer_head_weights`), so a FAQ with a few questions per
answer keeps 0 when the head does not rank better there. Queries read poorly
by the main model keep the multilingual view's own scoring (retrieval.multilingual).

Besides the entries (answer texts included) the head learns a sample of the
bot's intent examples as classes of their own (`IndexConfig.answer_head_intent_examples`
per intent): without them it must spread every message over the answers, and
the shop's "I need a VAT invoice for my company's expenses" (request_invoice)
got a confident invoice answer that took it from its intent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from kefu.core import sentence_encoder
from kefu.core.errors import ModelLoadError
from kefu.core.sentence_encoder import SentenceEncoder
from retrieval.config import IndexConfig
from retrieval.multilingual import INTENT_CLASS, AnswerHead
from retrieval.qa import QAPair, normalize_text
from retrieval.vectors import VectorIndex

VECTORS_FILE = "joint_vectors.faiss"
HEAD_FILE = "joint_head.skops"
INTENTS_FILE = "joint_intents.npz"


class JointHead:
    """The entries' multilingual vectors (kept so the head can be refitted after a change) and the head over both views."""

    def __init__(self, encoder: SentenceEncoder, vectors: VectorIndex, head: Optional[AnswerHead] = None):
        self.encoder = encoder
        self.vectors = vectors
        self.head = head
        # Intent examples the head learns besides the entries: both views' vectors side by side, and INTENT_CLASS + name.
        self.intent_vectors = np.zeros((0, 0), dtype=np.float32)
        self.intent_names: list = []

    @classmethod
    def build(cls, encoder: SentenceEncoder, ids: np.ndarray, texts: Sequence[str], config: IndexConfig) -> "JointHead":
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

    def set_intent_examples(self, main_vectors: np.ndarray, texts: Sequence[str], intents: Sequence[str]) -> None:
        """Intent examples (their main vectors, texts and intents) the next `fit` learns as classes of their own."""
        if not len(texts):
            return
        self.intent_vectors = np.hstack([np.asarray(main_vectors, dtype=np.float32), self.encode(texts)])
        self.intent_names = [INTENT_CLASS + name for name in intents]

    def fit(self, main: VectorIndex, pairs: Mapping[int, QAPair]) -> None:
        """Learns every entry's answer from its main and multilingual vectors (None with fewer than two answers)."""
        ids = np.asarray(sorted(pairs), dtype=np.int64)
        if not len(ids):
            self.head = None
            return
        vectors = np.hstack([main.reconstruct(ids), self.vectors.reconstruct(ids)])
        if self.intent_names:
            vectors = np.vstack([vectors, self.intent_vectors])
        self.head = AnswerHead.fit(vectors, [answer_key(pairs[i]) for i in ids.tolist()] + self.intent_names)

    def probabilities(self, main_vector: np.ndarray, view_vector: np.ndarray) -> Dict[str, float]:
        """Normalised answer text -> probability; empty without a head."""
        if self.head is None:
            return {}
        return self.head.probabilities(np.concatenate([main_vector, view_vector]).astype(np.float32))

    def save(self, directory: Path) -> None:
        import faiss

        faiss.write_index(self.vectors.index, str(Path(directory) / VECTORS_FILE))
        if self.head is not None:
            self.head.save(Path(directory) / HEAD_FILE)
        if self.intent_names:
            with open(Path(directory) / INTENTS_FILE, "wb") as handle:
                np.savez(handle, vectors=self.intent_vectors, names=np.asarray(self.intent_names, dtype=str))

    @classmethod
    def load(cls, directory: Path, encoder_name: str) -> "JointHead":
        import faiss

        path = Path(directory) / VECTORS_FILE
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ModelLoadError(f"{path} is missing or corrupt ({str(exc).splitlines()[0]}); rebuild with `kefu kb build`") from exc
        encoder = sentence_encoder.load(encoder_name)
        if encoder is None or index.d != encoder.dimension:
            raise ModelLoadError(f"{path}: {index.d}-d vectors, but encoder {encoder_name!r} makes {getattr(encoder, 'dimension', 0)}-d ones")
        joint = cls(encoder, VectorIndex(index, "flat", {}), AnswerHead.load(Path(directory) / HEAD_FILE))
        intents = Path(directory) / INTENTS_FILE
        if intents.exists():
            try:
                with np.load(intents, allow_pickle=False) as stored:
                    joint.intent_vectors, joint.intent_names = stored["vectors"].astype(np.float32), stored["names"].tolist()
            except (OSError, ValueError, KeyError) as exc:
                raise ModelLoadError(f"{intents} is corrupt ({exc}); rebuild with `kefu kb build`") from exc
            if len(joint.intent_vectors) != len(joint.intent_names):
                raise ModelLoadError(f"{intents} is inconsistent; rebuild with `kefu kb build`")
        return joint


def answer_key(pair: QAPair) -> str:
    """The class an entry belongs to: its answer, as `ranking.group_by_answer` groups them."""
    return normalize_text(pair.answer)
