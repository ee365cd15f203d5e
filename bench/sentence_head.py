"""What the classifier's sentence head (finetune/sentence_head.py) buys, on a held-out split of a training file.

Holds out a stratified share of the training file (never a benchmark's test file), trains one classifier
on the rest with config.yml's defaults (a time budget per run), and scores the held-out messages with the
head's share of the transformer view at each of `--shares`, everything else as trained (0: without the
head). Accuracy is the first choice's, as `rasa test nlu` counts it.

    .venv/bin/python bench/sentence_head.py --nlu ../shared/benchmarks/hwu64/train.yml
    .venv/bin/python bench/sentence_head.py --nlu ~/.cache/kefu/benchmarks/banking77/train.yml
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlu", required=True, nargs="+", help="training data (Rasa YAML)")
    parser.add_argument("--held-out", type=float, default=0.1, help="share held out for scoring (default 0.1)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the held-out split (default 7)")
    parser.add_argument("--budget", type=float, default=6.5, help="the classifier's time budget in minutes (default 6.5)")
    parser.add_argument("--shares", nargs="+", type=float, default=[0.0, 0.2, 0.4, 0.6])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.disable(logging.WARNING)
    from finetune import TrainConfig, load_nlu_examples, train
    from finetune.data import stratified_split

    train_part, held_out = stratified_split(load_nlu_examples(args.nlu), args.held_out, args.seed)
    started = time.perf_counter()
    model = train(train_part, TrainConfig(time_budget_minutes=args.budget), progress=True)
    metrics = model.metrics
    print(f"{len(train_part)} training / {len(held_out)} held-out messages; trained in {time.perf_counter() - started:.0f} s, "
          f"{metrics['steps']} steps; the head fitted in {model.manifest['sentence_head'].get('train_seconds')} s")
    texts, expected = [e.text for e in held_out], np.array([e.intent for e in held_out], dtype=object)
    print(f"{'head share':>10}  held-out accuracy")
    for share in args.shares:
        model.sentence_head_share = share if model.sentence_head is not None else 0.0
        predicted = np.array([p.intent for p in model.predict(texts)], dtype=object)
        print(f"{share:>10.2f}  {float((predicted == expected).mean()):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
