"""What the classifier's sentence head (finetune/sentence_head.py) buys: accuracy at several shares of it.

With `--nlu` alone: holds out a stratified share of that training file (never a benchmark's test file),
trains one classifier on the rest with the library's defaults and `--budget`, and scores the held-out
messages. With `--model` (a Rasa archive, or a directory holding them; its newest): scores that trained
classifier on the `--nlu` files (to report a trained model's figures with the head and without it; choose
on held-out data, never on a test file). Either way the head's share of the transformer view is set to each
of `--shares`, everything else as trained (0: without the head); the classifier's first choice counts, as
`rasa test nlu` counts it before the knowledge base or a fallback.

    .venv/bin/python bench/sentence_head.py --nlu ../shared/benchmarks/hwu64/train.yml
    .venv/bin/python bench/sentence_head.py --model OUT/models --nlu OUT/test.yml
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
    parser.add_argument("--nlu", required=True, nargs="+", help="training data (Rasa YAML); with --model, the messages to score")
    parser.add_argument("--model", type=Path, help="a trained Rasa archive, or a directory (its newest archive)")
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

    if args.model is not None:
        from rasa.model import get_local_model

        from retrain.train_candidate import load_intent_model

        archive = Path(get_local_model(str(args.model))) if args.model.is_dir() else args.model
        model = load_intent_model(archive)
        if model is None:
            parser.error(f"{archive} has no kefu intent classifier")
        scored = load_nlu_examples(args.nlu)
        print(f"{archive.name}: {len(scored)} messages")
    else:
        train_part, scored = stratified_split(load_nlu_examples(args.nlu), args.held_out, args.seed)
        started = time.perf_counter()
        model = train(train_part, TrainConfig(time_budget_minutes=args.budget), progress=True)
        print(f"{len(train_part)} training / {len(scored)} held-out messages; trained in {time.perf_counter() - started:.0f} s, "
              f"{model.metrics['steps']} steps")
    info = model.manifest.get("sentence_head") or {}
    if model.sentence_head is None:
        parser.error("the classifier has no sentence head (trained with sentence_head: 0, or before it existed)")
    print(f"the head: trained share {info.get('share')}, fitted in {info.get('train_seconds')} s")
    texts, expected = [e.text for e in scored], np.array([e.intent for e in scored], dtype=object)
    print(f"{'head share':>10}  accuracy")
    for share in args.shares:
        model.sentence_head_share = share
        predicted = np.array([p.intent for p in model.predict(texts)], dtype=object)
        print(f"{share:>10.2f}  {float((predicted == expected).mean()):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
