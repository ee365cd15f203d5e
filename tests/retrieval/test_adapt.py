from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from retrieval import AdaptConfig, RetrievalError, adapt
from retrieval.adapt import distinct_label_batches, embed_by_length, holdout_split, length_groups, training_pairs
from retrieval.qa import normalize_text


def test_holdout_is_stratified_by_answer(small_pairs):
    train, held_out = holdout_split(small_pairs, 0.3, seed=1)
    assert len(train) + len(held_out) == len(small_pairs)
    per_answer = Counter(normalize_text(p.answer) for p in small_pairs)
    held = Counter(normalize_text(p.answer) for p in held_out)
    for answer, n in per_answer.items():
        assert (held[answer] >= 1) == (n >= 2)  # every answer with >= 2 questions is tested...
        assert held[answer] < n  # ...and keeps at least one question in training
    assert holdout_split(small_pairs, 0.3, seed=1) == (train, held_out)


def test_training_pairs_and_batches_never_pair_an_answer_with_itself(small_pairs):
    examples = training_pairs(small_pairs, siblings=2, seed=0)
    assert ("How long does shipping take?", small_pairs[0].answer, normalize_text(small_pairs[0].answer)) in examples
    labels = [key for _, _, key in examples]
    batches = distinct_label_batches(labels, 8, np.random.default_rng(0))
    assert all(len({labels[i] for i in batch}) == len(batch) for batch in batches)
    assert sum(map(len, batches)) >= 0.9 * len(examples)


@pytest.fixture()
def one_torch_thread():
    """Training steps this small are dominated by waiting for the second thread on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_adapted_model_that_does_not_beat_the_frozen_one_is_not_kept(small_pairs, embedder, one_torch_thread):
    # Learning rate 0: the "adapted" model equals the frozen one, so it cannot beat it.
    five_answers = small_pairs[:13]
    config = AdaptConfig(epochs=1, batch_size=16, learning_rate=0.0, siblings_per_question=0, seed=3)
    result = adapt(five_answers, config, frozen=embedder, progress=False)
    assert not result.adapted and result.embedder is embedder
    assert (result.held_out, result.train_pairs, result.steps) == (5, 8, 2)
    assert result.adapted_top1 == result.frozen_top1
    assert "using the frozen model default" in result.message


def test_adaptation_needs_answers_with_several_questions(small_pairs, embedder):
    one_each = list({p.answer: p for p in small_pairs}.values())
    result = adapt(one_each, frozen=embedder, progress=False)
    assert not result.adapted and result.embedder is embedder and "nothing can be held out" in result.message
    with pytest.raises(RetrievalError, match="Unknown adaptation option"):
        AdaptConfig.from_dict({"epoch": 2})


def test_a_batch_embedded_by_length_gives_the_padded_batchs_embeddings_in_order(small_pairs, embedder, monkeypatch):
    import torch
    from sentence_transformers.util import batch_to_device

    monkeypatch.setenv("KEFU_TRAIN_PRECISION", "fp32")

    # Short questions and long answers, mixed, as an adaptation batch holds them.
    texts = [t for p in small_pairs[:12] for t in (p.question, p.answer * 3)]
    model = embedder.model
    model.eval()
    with torch.no_grad():
        padded = model(batch_to_device(model.preprocess(texts), model.device))["sentence_embedding"]
        grouped = embed_by_length(model, texts, model.device, pass_cost=16)
    assert grouped.shape == padded.shape and torch.allclose(grouped, padded, atol=1e-5)
    # In bf16 (what a CPU with AMX tiles trains in) the transformer's pass is coarser, its pooled vectors fp32.
    monkeypatch.setenv("KEFU_TRAIN_PRECISION", "bf16")
    with torch.no_grad():
        coarse = embed_by_length(model, texts, model.device, pass_cost=16)
    assert coarse.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(coarse, padded).min() > 0.99
    # 20 short texts and 4 long: two groups beat one padded batch, and one group beats 24 passes.
    assert length_groups([10] * 20 + [100] * 4, pass_cost=128) == [20, 24]
    assert length_groups([10] * 20 + [100] * 4, pass_cost=10_000) == [24]
