"""Adapting the embedding model to a company's own Q&A.

Contrastive fine-tuning with sentence-transformers' `MultipleNegativesRankingLoss`
on (question, another question with the same answer) and (question, answer)
pairs; the other pairs of a batch are the negatives, so a batch never holds
two pairs of the same answer. A plain torch loop drives the loss: the
sentence-transformers trainer (and `model.fit`, built on it) needs the
`datasets` package, which kefu does not install.

A stratified share of the questions whose answer has several questions is
held out; the adapted model is kept only if its held-out top-1 accuracy beats
the frozen model's, otherwise the frozen model is returned (and the result
says so).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import ClassVar, List, Optional, Sequence, Tuple, Type

import numpy as np

from kefu.core import runtime, train_step
from kefu.core.options import Options
from kefu.core.schedule import TimeBudget, lr_factor
from kefu.core.text import normalize_text
from retrieval.config import IndexConfig
from retrieval.embedder import Embedder
from retrieval.errors import QADataError, RetrievalError
from retrieval.evaluate import evaluate
from retrieval.index import build
from retrieval.qa import QAPair

logger = logging.getLogger(__name__)


@dataclass
class AdaptConfig(Options):
    base_model: str = "default"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    # Share of the questions of each answer with >= 2 questions held out for the keep-or-not test.
    holdout_fraction: float = 0.2
    # (question, sibling question) pairs per question, besides its (question, answer) pair.
    siblings_per_question: int = 3
    time_budget_minutes: Optional[float] = 5.0
    seed: int = 42
    device: str = "auto"

    error: ClassVar[Type[Exception]] = RetrievalError
    what: ClassVar[str] = "adaptation"

    def validate(self) -> None:
        self.require(self.epochs >= 1 and self.batch_size >= 2 and 0.0 < self.holdout_fraction < 1.0,
                     "adaptation needs epochs >= 1, batch_size >= 2 and holdout_fraction in (0, 1)")


@dataclass
class AdaptResult:
    embedder: Embedder
    adapted: bool
    frozen_top1: Optional[float]
    adapted_top1: Optional[float]
    held_out: int
    train_pairs: int
    steps: int
    seconds: float
    message: str
    # The split used: the adapted model never saw `held_out_pairs` (fair calibration evidence).
    train_pairs_used: List[QAPair] = dataclasses.field(default_factory=list)
    held_out_pairs: List[QAPair] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("embedder", "train_pairs_used", "held_out_pairs")}


def adapt(pairs: Sequence[QAPair], config: Optional[AdaptConfig] = None, frozen: Optional[Embedder] = None, progress: bool = True) -> AdaptResult:
    """Fine-tunes a copy of the embedding model on `pairs`; returns it only if it retrieves better."""
    config = config or AdaptConfig()
    started = time.perf_counter()
    frozen = frozen or Embedder.load(config.base_model, config.device)
    train, held_out = holdout_split(pairs, config.holdout_fraction, config.seed)
    if not held_out:
        return AdaptResult(frozen, False, None, None, 0, 0, 0, 0.0,
                           "no answer has two or more questions, so nothing can be held out to test an adapted model; using the frozen model")
    frozen_top1 = held_out_top1(frozen, train, held_out)
    examples = training_pairs(train, config.siblings_per_question, config.seed)
    model, steps = _fit(frozen, examples, config, progress)
    adapted = Embedder(model, f"{frozen.name} (adapted)", None, bundled=True)
    adapted_top1 = held_out_top1(adapted, train, held_out)
    seconds = round(time.perf_counter() - started, 1)
    kept = adapted_top1 > frozen_top1
    verdict = "keeping the adapted model" if kept else f"using the frozen model {frozen.name}"
    message = (f"held-out top-1 on {len(held_out)} questions: adapted {adapted_top1:.3f} vs frozen {frozen_top1:.3f}; "
               f"{verdict} ({steps} steps on {len(examples)} pairs, {seconds} s)")
    logger.info("Adaptation: %s", message)
    return AdaptResult(adapted if kept else frozen, kept, frozen_top1, adapted_top1, len(held_out), len(examples), steps, seconds,
                       message, list(train), list(held_out))


def holdout_split(pairs: Sequence[QAPair], fraction: float, seed: int) -> Tuple[List[QAPair], List[QAPair]]:
    """Holds out `fraction` (at least one, never all) of the distinct questions of each answer with >= 2."""
    by_answer = defaultdict(dict)
    for pair in pairs:
        by_answer[normalize_text(pair.answer)].setdefault(normalize_text(pair.question), pair)
    rng = random.Random(seed)
    train, held_out = [], []
    for answer in sorted(by_answer):
        group = list(by_answer[answer].values())
        rng.shuffle(group)
        n_out = min(len(group) - 1, max(1, round(len(group) * fraction))) if len(group) >= 2 and fraction > 0 else 0
        held_out.extend(group[:n_out])
        train.extend(group[n_out:])
    return train, held_out


def held_out_top1(embedder: Embedder, train: Sequence[QAPair], held_out: Sequence[QAPair]) -> float:
    index = build(train, IndexConfig(kind="flat"), embedder=embedder, progress=False)
    return evaluate(index, held_out, latency_samples=0)["top1_accuracy"]


def training_pairs(train: Sequence[QAPair], siblings: int, seed: int) -> List[Tuple[str, str, str]]:
    """(anchor, positive, answer key) triples: each question with its answer and a few sibling questions."""
    rng = random.Random(seed)
    by_answer = defaultdict(list)
    for pair in train:
        by_answer[normalize_text(pair.answer)].append(pair)
    examples = []
    for key, group in by_answer.items():
        for pair in group:
            examples.append((pair.question, pair.answer, key))
            others = [p.question for p in group if p is not pair]
            for sibling in rng.sample(others, min(siblings, len(others))):
                examples.append((pair.question, sibling, key))
    return examples


def _fit(frozen: Embedder, examples, config: AdaptConfig, progress: bool):
    import torch
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from tqdm.auto import tqdm

    if not examples:
        raise QADataError("No training pairs to adapt the embedding model on")
    runtime.seed_everything(config.seed)
    runtime.set_threads(runtime.training_threads())
    model = copy.deepcopy(frozen.model)
    device = model.device
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = train_step.adamw(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    rng = np.random.default_rng(config.seed)
    labels = [key for _, _, key in examples]
    steps_per_epoch = len(distinct_label_batches(labels, config.batch_size, rng))
    budget = TimeBudget(config.epochs * steps_per_epoch, config.time_budget_minutes, "adapting embeddings", margin=1.0, every=50, first=5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, budget.total, config.warmup_ratio))
    model.train()
    step = 0
    budget.started = time.perf_counter()
    bar = tqdm(total=budget.total, desc="adapting embeddings", unit="step", disable=not runtime.show_progress(progress), dynamic_ncols=True)
    for _ in range(config.epochs):
        for batch in distinct_label_batches(labels, config.batch_size, rng):
            if step >= budget.total:
                break
            embeddings = [embed_by_length(model, [examples[i][column] for i in batch], device) for column in (0, 1)]
            loss = loss_fn.compute_loss_from_embeddings(embeddings, None)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=round(loss.item(), 4))
            if bar.total != budget.refit(step):
                bar.total = budget.total
    bar.close()
    model.eval()
    return model, step


# Cost of one more forward pass, in padded tokens, when a batch is split by length. bench/adapt_step.py on the
# shop's Q&A, 2 cores: 1.17-1.25 s/step at 128, 1.18-1.27 at 512, 1.23-1.29 at 32, 2.31-2.42 padded whole.
PASS_COST_TOKENS = 128


def embed_by_length(model, texts: Sequence[str], device, pass_cost: int = PASS_COST_TOKENS):
    """Sentence embeddings of `texts` in their order, with gradients, computed in groups of similar token length.

    One padded batch costs its longest text's length for every text: an answer
    runs to 60-130 tokens and a question to 10-20, so a batch of (question,
    answer) and (question, sibling) pairs spent most of its forward and backward
    passes on padding. The loss only sees the embeddings, which do not depend on
    the padding.
    """
    import torch
    from sentence_transformers.util import batch_to_device

    lengths = [len(ids) for ids in model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    bounds = length_groups([lengths[i] for i in order], pass_cost)
    parts = [_sentence_embedding(model, batch_to_device(model.preprocess([texts[i] for i in order[start:end]]), device))
             for start, end in zip([0] + bounds[:-1], bounds)]
    return torch.cat(parts)[torch.tensor(order).argsort().to(device)]  # back to the texts' order


def _sentence_embedding(model, features: dict):
    """The SentenceTransformer's pass: its transformer in the training precision (kefu.core.train_step), the
    modules after it (pooling, normalisation) in fp32, as the loss's similarities need."""
    transformer, *rest = model
    with train_step.autocast(features["input_ids"].device):
        features = transformer(features)
    features["token_embeddings"] = features["token_embeddings"].float()
    for module in rest:
        features = module(features)
    return features["sentence_embedding"]


def length_groups(sorted_lengths: Sequence[int], pass_cost: int) -> List[int]:
    """End indices of the contiguous groups of ascending `sorted_lengths` with the fewest padded tokens plus
    `pass_cost` per group (exact, by dynamic programming over the cut points)."""
    n = len(sorted_lengths)
    best, cut = [0] + [None] * n, [0] * (n + 1)
    for end in range(1, n + 1):
        best[end], cut[end] = min((best[start] + (end - start) * sorted_lengths[end - 1] + pass_cost, start) for start in range(end))
    bounds, end = [], n
    while end:
        bounds.append(end)
        end = cut[end]
    return bounds[::-1]


def distinct_label_batches(labels: Sequence[str], batch_size: int, rng: np.random.Generator) -> List[List[int]]:
    """Shuffled batches in which no two examples share a label (they would be each other's false negatives).

    Examples are ordered by their rank within their label, so that every
    label's first example comes before any label's second one; an example
    whose label is already in the current batch waits for the next pass.
    What is left of a label too large to spread over batches (a batch of one
    has no negatives) is dropped.
    """
    rank, seen_count = [], defaultdict(int)
    for i in rng.permutation(len(labels)):
        rank.append((seen_count[labels[i]], i))
        seen_count[labels[i]] += 1
    pending = [i for _, i in sorted(rank)]
    batches: List[List[int]] = []
    while len(pending) > 1:
        batch, in_batch, waiting = [], set(), []
        for i in pending:
            if labels[i] in in_batch:
                waiting.append(i)
                continue
            batch.append(i)
            in_batch.add(labels[i])
            if len(batch) == batch_size:
                batches.append(batch)
                batch, in_batch = [], set()
        if len(batch) > 1:
            batches.append(batch)
        pending = waiting
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]
