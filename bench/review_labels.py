"""The retrain gate's check of reviewed labels (retrain/label_check.py): right labels against wrong ones.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/review_labels.py [--label 50] [--seeds 2] [--holdout 0.25]

For each seed, like the learning round: holds back `--holdout` of each intent's
examples in data/nlu (English and Chinese), fits the frozen multilingual view on
the rest and puts the `--label` held-back messages it is least sure of in the
"review queue" (the queue ranks by low confidence the same way). Then the check
runs three times on those rows: with their true intents (a careful lead), with
random other intents (a careless lead, as the learning round's wrong night), and
with a fifth of them wrong. Prints the share of labels that agree at top 1 and
top 3 (the gate's default `review_labels_top_k`), the gate's verdict at its
default floor, and the seconds the check took. Only the project's training data
is read (tests/data is the gate's own held-out set).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--holdout", type=float, default=0.25)
    args = parser.parse_args()

    from finetune import load_nlu_examples
    from finetune.multilingual import MultilingualHead
    from kefu.core import sentence_encoder
    from retrain.config import GateConfig
    from retrain.gate import review_labels
    from retrain.label_check import agreement

    examples = [(e.text, e.intent) for e in load_nlu_examples(sorted((ROOT / "data" / "nlu").glob("*.yml")))]
    encoder = sentence_encoder.load()
    cache = {}

    def encode(texts):
        missing = [t for t in texts if t not in cache]
        for text, vector in zip(missing, encoder.encode(missing)):
            cache[text] = vector
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, encoder.dimension), np.float32)

    gate = GateConfig()
    print(f"{len(examples)} examples, {len({i for _, i in examples})} intents; top_k {gate.review_labels_top_k}, "
          f"floor {gate.review_labels_floor}")
    print(f"{'seed':>4} {'lead':<14} {'judged':>6} {'top-1':>6} {'top-k':>6} {'gate':<8} {'seconds':>7}")
    by_intent = defaultdict(list)
    for text, intent in examples:
        by_intent[intent].append((text, intent))
    labels = sorted(by_intent)
    ids = {label: n for n, label in enumerate(labels)}
    for seed in range(args.seeds):
        rng = random.Random(seed)
        kept, held = [], []
        for _, rows in sorted(by_intent.items()):
            rows = rows[:]
            rng.shuffle(rows)
            n = int(round(len(rows) * args.holdout))
            held += rows[:n]
            kept += rows[n:]
        head = MultilingualHead.fit(encode([t for t, _ in kept]), np.array([ids[i] for _, i in kept]), len(labels), seed=seed)
        log_probs, _ = head.score(encode([t for t, _ in held]))
        unsure = np.argsort(log_probs.max(axis=1))[: args.label]  # least sure first, as the review queue ranks
        queue = [held[i] for i in unsure]
        careless = [(t, rng.choice([x for x in labels if x != i])) for t, i in queue]
        some_wrong = [careless[n] if n % 5 == 0 else row for n, row in enumerate(queue)]
        for name, rows in (("right", queue), ("all wrong", careless), ("a fifth wrong", some_wrong)):
            started = time.perf_counter()
            found = agreement(kept, rows, encode, top_k=gate.review_labels_top_k)
            seconds = time.perf_counter() - started
            verdict = "pass" if review_labels(found, gate)[0] else "REFUSE"
            print(f"{seed:>4} {name:<14} {found['judged']:>6} {found['first'] / found['judged']:>6.3f} "
                  f"{found['agreement']:>6.3f} {verdict:<8} {seconds:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
