"""Seconds per fine-tuning step of the intent classifier, its word embeddings trained (the default) against kept as
pre-trained (`freeze_word_embeddings: true`).

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/classifier_step.py [--nlu data/nlu] [--steps 30] [--rounds 3]

The trainer's own batches (finetune.trainer: length-bucketed, batch_size and max_length of TrainConfig, seed 42),
its optimiser groups and gradient clipping, a fresh copy of the base model per try, all cores, the ways
alternating round by round. Prints every try, then the medians. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WAYS = {"word embeddings trained (default)": False, "word embeddings frozen": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlu", nargs="+", default=[str(ROOT / "data/nlu")])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from finetune import TrainConfig
    from finetune.data import load_nlu_examples
    from finetune.trainer import _optimizer, _shuffled_length_batches
    from kefu.core import runtime
    from kefu.core.base_model import resolve_base_model

    runtime.configure()
    runtime.set_threads(runtime.training_threads())
    config = TrainConfig()
    examples = load_nlu_examples(args.nlu)
    labels = sorted({e.intent for e in examples})
    y = np.array([labels.index(e.intent) for e in examples])
    base_path = resolve_base_model(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    ids = tokenizer([e.text for e in examples], truncation=True, max_length=config.max_length)["input_ids"]
    batches = _shuffled_length_batches([len(x) for x in ids], config.batch_size, np.random.default_rng(config.seed))
    if len(batches) < args.steps + 2:
        parser.error(f"{len(examples)} examples make {len(batches)} batches; --steps {args.steps} needs {args.steps + 2}")
    base = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=len(labels), ignore_mismatched_sizes=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    print(f"{len(examples)} examples, {len(labels)} intents, batch {config.batch_size}, {torch.get_num_threads()} threads")

    seconds = {way: [] for way in WAYS}
    for round_ in range(1, args.rounds + 1):
        for way, freeze in WAYS.items():
            model = copy.deepcopy(base)
            model.get_input_embeddings().weight.requires_grad_(not freeze)
            model.train()
            optimizer = _optimizer(model, config)
            times = []
            for batch_idx in batches[: args.steps + 2]:
                started = time.perf_counter()
                batch = tokenizer.pad({"input_ids": [ids[i] for i in batch_idx]}, return_tensors="pt")
                loss_fn(model(**batch).logits, torch.as_tensor(y[batch_idx])).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                times.append(time.perf_counter() - started)
            seconds[way].append(statistics.mean(times[2:]))  # the first two pay for allocations
            print(f"round {round_}: {way:34s} {seconds[way][-1] * 1000:.0f} ms/step", flush=True)
    print("median ms/step: " + ", ".join(f"{way} {statistics.median(v) * 1000:.0f}" for way, v in seconds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
