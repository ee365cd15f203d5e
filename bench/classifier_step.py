"""Milliseconds per fine-tuning step of the intent classifier, the ways a step can run side by side.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/classifier_step.py [--nlu data/nlu] [--base-model default]
        [--steps 30] [--rounds 3] [--ways before fused bf16 frozen]

Ways: `before` (fp32 passes, torch's default per-tensor AdamW: the trainer until 2026-12-06), `fused` (fp32,
fused AdamW: kefu.core.train_step.adamw, the default), `bf16` (bfloat16 autocast and fused AdamW:
KEFU_TRAIN_PRECISION=bf16), `frozen` (the trainer's precision, KEFU_TRAIN_PRECISION or fp32, and word embeddings
kept as pre-trained: `freeze_word_embeddings`). The trainer's own batches (finetune.trainer: length-bucketed,
batch_size and max_length of TrainConfig, seed 42), its optimiser groups and gradient clipping, a fresh copy of
the base model per try, all cores, the ways alternating round by round. Prints each try's forward + backward and
optimiser milliseconds, then the medians. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# way -> (KEFU_TRAIN_PRECISION, fused AdamW, word embeddings frozen); None: the trainer's default
WAYS = {"before": ("fp32", False, False), "fused": ("fp32", True, False), "bf16": ("bf16", True, False),
        "frozen": (None, True, True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlu", nargs="+", default=[str(ROOT / "data/nlu")])
    parser.add_argument("--base-model", default="default")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ways", nargs="+", choices=sorted(WAYS), default=list(WAYS))
    args = parser.parse_args()
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from finetune import TrainConfig
    from finetune.data import load_nlu_examples
    from finetune.trainer import _optimizer, _shuffled_length_batches
    from kefu.core import runtime, train_step
    from kefu.core.base_model import resolve_base_model

    runtime.configure()
    runtime.set_threads(runtime.training_threads())
    config = TrainConfig(base_model=args.base_model)
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
    print(f"{len(examples)} examples, {len(labels)} intents, batch {config.batch_size}, {torch.get_num_threads()} threads, "
          f"default precision here {runtime.train_precision('cpu')}")

    totals = {way: [] for way in args.ways}
    for round_ in range(1, args.rounds + 1):
        for way in args.ways:
            precision, fused, freeze = WAYS[way]
            if precision is not None:
                os.environ["KEFU_TRAIN_PRECISION"] = precision
            else:
                os.environ.pop("KEFU_TRAIN_PRECISION", None)
            model = copy.deepcopy(base)
            model.get_input_embeddings().weight.requires_grad_(not freeze)
            model.train()
            optimizer = _optimizer(model, config)
            if not fused:
                groups = [{"params": g["params"], "lr": g["lr"], "weight_decay": g["weight_decay"]} for g in optimizer.param_groups]
                optimizer = torch.optim.AdamW(groups, fused=False)
            passes, updates = [], []
            for batch_idx in batches[: args.steps + 2]:
                started = time.perf_counter()
                batch = tokenizer.pad({"input_ids": [ids[i] for i in batch_idx]}, return_tensors="pt")
                with train_step.autocast("cpu"):
                    logits = model(**batch).logits
                loss_fn(logits.float(), torch.as_tensor(y[batch_idx])).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                middle = time.perf_counter()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                passes.append(middle - started)
                updates.append(time.perf_counter() - middle)
            # the first two steps pay for allocations
            total, update = statistics.mean(np.add(passes, updates)[2:]), statistics.mean(updates[2:])
            totals[way].append(total)
            print(f"round {round_}: {way:7s} {total * 1000:5.0f} ms/step (optimiser {update * 1000:.0f})", flush=True)
    os.environ.pop("KEFU_TRAIN_PRECISION", None)
    print("median ms/step: " + ", ".join(f"{way} {statistics.median(v) * 1000:.0f}" for way, v in totals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
