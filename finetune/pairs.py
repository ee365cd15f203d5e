"""Pairs of examples of one intent, and the contrastive loss over them that trains next to cross-entropy.

Cross-entropy shapes the transformer through its classification head; the kNN vote, the
sentence head and the out-of-scope signal read the transformer's sentence vectors, which
it shapes only indirectly. The knowledge base's adaptation (retrieval/adapt.py) shapes
those vectors directly, with sentence-transformers' MultipleNegativesRankingLoss, and its
nearest-question ranking beats the classifier on BANKING77's questions. The pairs bring
that loss here: each batch holds (example, another example of its intent) pairs, and each
example's vector must be nearer its partner's than any other intent's example in the
batch. Other pairs of the same intent are left out of the negatives (masked), so batches
keep their size and their length bucketing whatever the number of intents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch


def pair_batches(y: np.ndarray, lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                 batcher: Callable[[List[int], int, np.random.Generator], List[List[int]]]) -> List[List[int]]:
    """One epoch of batches `[a0, p0, a1, p1, ...]` of example indices, `batch_size // 2` pairs each.

    Every example is in one pair (an intent with an odd count lends one example twice; one
    with a single example pairs it with itself). `batcher` groups the pairs by their longer
    member's length, as the trainer groups examples.
    """
    pairs = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        if len(members) % 2:
            members = np.append(members, members[0] if len(members) == 1 else rng.choice(members[:-1]))
        pairs.extend(members.reshape(-1, 2).tolist())
    pair_lengths = [max(lengths[a], lengths[p]) for a, p in pairs]
    return [[i for k in batch for i in pairs[k]] for batch in batcher(pair_lengths, max(1, batch_size // 2), rng)]


def pair_loss(embeddings: "torch.Tensor", y: "torch.Tensor", scale: float) -> "torch.Tensor":
    """MultipleNegativesRankingLoss over a `pair_batches` batch, both directions, same-intent others masked.

    `embeddings`: L2-normalised, rows in the batch's order; `y`: their intents.
    """
    import torch

    anchors, positives = embeddings[0::2], embeddings[1::2]
    labels = y[0::2]
    scores = anchors @ positives.T * scale
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    scores = scores.masked_fill(same, float("-inf"))
    target = torch.arange(len(anchors), device=embeddings.device)
    ce = torch.nn.functional.cross_entropy
    return (ce(scores, target) + ce(scores.T, target)) / 2
