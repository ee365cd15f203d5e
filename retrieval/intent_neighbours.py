"""How close a message is to the bot's own intent examples, in the knowledge base's embedding space.

A knowledge base fitted on one business's Q&A still finds *some* question
for any message; its calibrated probability says how likely that best answer
is right among messages like the held-out questions, not whether the message
is about the Q&A at all. A message much nearer to the examples of the bot's
scripted intents than to any stored question belongs to the intents (BANKING77
messages reached a web shop's payment and card answers at p 0.69-0.89 while their
own intent's examples were closer by a median 0.29 cosine). `KnowledgeBase` gives
such a message no answer and no "did you mean it?" unless the classifier left it
to the knowledge base: the gap (nearest intent example minus best answer score)
above the cut fitted at build on held-out questions that the knowledge base
answered right (`DecisionModel.intent_gap_cut`).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from retrieval.embedder import Embedder
from retrieval.errors import ModelLoadError

FILE = "intent_examples.npy"


def sample_per_intent(examples: Sequence[Tuple[str, str]], per_intent: int, seed: int = 42) -> List[Tuple[str, str]]:
    """(text, intent) pairs: at most `per_intent` distinct texts of each intent, a seeded sample, intents in name order."""
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in examples:
        by_intent[intent].append(text)
    rng = random.Random(seed)
    sampled = []
    for intent in sorted(by_intent):
        unique = list(dict.fromkeys(by_intent[intent]))
        sampled.extend((text, intent) for text in (rng.sample(unique, per_intent) if len(unique) > per_intent else unique))
    return sampled


def sample_at_most(examples: Sequence[Tuple[str, str]], total: int, seed: int = 42) -> List[Tuple[str, str]]:
    """`examples` as they are when there are at most `total`; else the same number of each intent's distinct texts
    (all of a smaller intent's), as many as `total` allows but at least one, a seeded sample (`sample_per_intent`)."""
    if len(examples) <= total:
        return list(examples)
    sizes = sorted(Counter(intent for _, intent in set(examples)).values())
    level, remaining, left = 0, total, len(sizes)
    for size in sizes:
        share = remaining // left
        if size > share:
            level = share
            break
        level, remaining, left = size, remaining - size, left - 1
    return sample_per_intent(examples, max(level, 1), seed)


class IntentNeighbours:
    """Normalised embeddings of the bot's intent examples (the retrieval intent's excluded by the caller)."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    @classmethod
    def build(cls, embedder: Embedder, examples: Sequence[Tuple[str, str]], per_intent: int = 30, seed: int = 42,
              batch_size: int = 64, min_coverage: float = 0.0) -> Optional["IntentNeighbours"]:
        """`examples`: (text, intent); of those the model reads (`min_coverage` of their words in its vocabulary:
        the gap is measured for such messages only), at most `per_intent` of each intent's (a seeded sample)."""
        examples = [(t, i) for t, i in examples if t and t.strip()]
        if min_coverage > 0 and examples:
            readable = embedder.coverage([t for t, _ in examples]) >= min_coverage
            examples = [e for e, ok in zip(examples, readable) if ok]
        texts = [text for text, _ in sample_per_intent(examples, per_intent, seed)]
        if not texts:
            return None
        vectors = embedder.encode(texts, batch_size, progress=False)
        return cls(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))

    def __len__(self) -> int:
        return len(self.vectors)

    def nearest(self, queries: np.ndarray) -> np.ndarray:
        """Per (normalised) query vector, its highest cosine with an intent example."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if not len(queries):
            return np.zeros(0, dtype=np.float32)
        return (queries @ self.vectors.T).max(axis=1)

    def to_array(self) -> np.ndarray:
        """What is stored with the index (`KnowledgeBase.save`): float16 halves it; cosines move by < 1e-3."""
        return self.vectors.astype(np.float16)

    @classmethod
    def from_array(cls, vectors: np.ndarray, dimension: int) -> "IntentNeighbours":
        if vectors.ndim != 2 or vectors.shape[1] != dimension:
            raise ModelLoadError(f"{FILE} holds vectors of shape {vectors.shape}, not (n, {dimension}); rebuild the knowledge base")
        return cls(vectors.astype(np.float32))
