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

from kefu.core.sentence_encoder import SentenceEncoder
from retrieval.config import IndexConfig
from retrieval.encoded_entries import INTENT_CLASS, EncodedEntries, load_intent_examples, save_intent_examples
from retrieval.multilingual import AnswerHead
from retrieval.qa import QAPair, normalize_text
from retrieval.vectors import VectorIndex

VECTORS_FILE = "joint_vectors.faiss"
HEAD_FILE = "joint_head.skops"
INTENTS_FILE = "joint_intents.npz"


class JointHead(EncodedEntries):
    """The entries' multilingual vectors (kept so the head can be refitted after a change) and the head over both views."""

    def __init__(self, encoder: SentenceEncoder, vectors: VectorIndex, head: Optional[AnswerHead] = None):
        super().__init__(encoder, vectors)
        self.head = head
        # Intent examples the head learns besides the entries: both views' vectors side by side, and INTENT_CLASS + name.
        self.intent_vectors = np.zeros((0, 0), dtype=np.float32)
        self.intent_names: list = []

    @classmethod
    def build(cls, encoder: SentenceEncoder, ids: np.ndarray, texts: Sequence[str], config: IndexConfig) -> "JointHead":
        return cls(encoder, cls.entry_vectors(encoder, ids, texts, config))

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
        self.save_vectors(Path(directory) / VECTORS_FILE)
        if self.head is not None:
            self.head.save(Path(directory) / HEAD_FILE)
        if self.intent_names:
            save_intent_examples(Path(directory) / INTENTS_FILE, self.intent_vectors, self.intent_names)

    @classmethod
    def load(cls, directory: Path, encoder_name: str, main_dimension: int) -> "JointHead":
        """`main_dimension`: the main model's; the stored intent examples hold both views side by side."""
        encoder, vectors = cls.read_vectors(Path(directory) / VECTORS_FILE, encoder_name)
        joint = cls(encoder, vectors, AnswerHead.load(Path(directory) / HEAD_FILE))
        intents = Path(directory) / INTENTS_FILE
        if intents.exists():
            joint.intent_vectors, joint.intent_names = load_intent_examples(intents, main_dimension + vectors.dimension)
        return joint


def answer_key(pair: QAPair) -> str:
    """The class an entry belongs to: its answer, as `ranking.group_by_answer` groups them."""
    return normalize_text(pair.answer)
