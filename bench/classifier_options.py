"""Held-out accuracy of the intent classifier trained with each of several option settings, side by side.

Holds out a stratified share of a training file (never a benchmark's test file: choose on this, report on
the test), then trains one classifier per `--set` on the rest, the library's defaults with that setting and
`--budget`, and scores the held-out messages: the classifier's first choice as `rasa test nlu` counts it
before the knowledge base or a fallback, and the manifest's steps and seconds. Run it alone (it times).

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/classifier_options.py --nlu ../shared/benchmarks/hwu64/train.yml \\
        --set contrastive=0 --set contrastive=0.5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setting(text: str) -> dict:
    """`name=value[,name=value]`, each value read as YAML (0.5, true, off)."""
    options = {}
    for part in filter(None, text.split(",")):
        name, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected name=value, got {part!r}")
        options[name.strip()] = yaml.safe_load(value)
    return options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nlu", required=True, nargs="+", help="training data (Rasa YAML)")
    parser.add_argument("--set", dest="settings", type=setting, action="append", required=True,
                        help="options of one training, name=value[,name=value] (repeat for each training)")
    parser.add_argument("--held-out", type=float, default=0.1, help="share held out for scoring (default 0.1)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the held-out split (default 7)")
    parser.add_argument("--budget", type=float, default=6.5, help="the classifier's time budget in minutes (default 6.5)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.disable(logging.WARNING)
    from finetune import TrainConfig, load_nlu_examples, train
    from finetune.data import stratified_split

    configs = [TrainConfig.from_dict({"time_budget_minutes": args.budget, **options}) for options in args.settings]
    train_part, scored = stratified_split(load_nlu_examples(args.nlu), args.held_out, args.seed)
    texts, expected = [e.text for e in scored], np.array([e.intent for e in scored], dtype=object)
    print(f"{len(train_part)} training / {len(scored)} held-out messages, budget {args.budget} min")
    rows = []
    for options, config in zip(args.settings, configs):
        started = time.perf_counter()
        model = train(train_part, config, progress=True)
        seconds = time.perf_counter() - started
        predicted = np.array([p.intent for p in model.predict(texts)], dtype=object)
        accuracy = float((predicted == expected).mean())
        metrics = model.metrics
        rows.append((options, accuracy, metrics.get("steps"), seconds, metrics.get("val_accuracy_blend", metrics.get("val_accuracy"))))
        print(f"{options}: held-out accuracy {accuracy:.4f} ({int(round(accuracy * len(scored)))}/{len(scored)}), "
              f"{metrics.get('steps')} steps, {seconds:.0f} s", flush=True)
    print(f"\n{'setting':<40} {'held-out':>8} {'steps':>6} {'seconds':>7} {'val (trainer)':>13}")
    for options, accuracy, steps, seconds, val in rows:
        print(f"{str(options):<40} {accuracy:>8.4f} {steps:>6} {seconds:>7.0f} {val if val is not None else '-':>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
