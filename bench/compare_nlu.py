"""kefu's intent classifier vs Rasa's stock DIET pipeline, on the same split.

Trains each NLU pipeline with `rasa train nlu`, evaluates it with `rasa test
nlu` on the held-out file, and times `Agent.parse_message` one message at a
time. Prints a table and writes bench/out/compare_nlu.json.

    .venv/bin/python bench/compare_nlu.py [--train data/nlu] [--test tests/data/nlu.yml]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = {"kefu (config.yml)": ROOT / "config.yml", "Rasa DIET": ROOT / "bench/configs/diet.yml"}


def rasa(*args: str) -> None:
    # A fresh cache per call: `rasa train` would otherwise reuse a classifier trained earlier.
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, RASA_CACHE_DIRECTORY=cache)
        subprocess.run([str(Path(sys.executable).with_name("rasa")), *args], check=True, cwd=ROOT, env=env)


def latency(model: Path, texts) -> dict:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    timings = []

    async def go():
        await agent.parse_message(texts[0])
        for text in texts:
            start = time.perf_counter()
            await agent.parse_message(text)
            timings.append((time.perf_counter() - start) * 1000)

    asyncio.run(go())
    return {"latency_ms_p50": round(float(np.percentile(timings, 50)), 2), "latency_ms_p99": round(float(np.percentile(timings, 99)), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="data/nlu")
    parser.add_argument("--test", default="tests/data/nlu.yml")
    parser.add_argument("--out", default="bench/out/compare_nlu")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)

    from finetune import load_nlu_examples

    test_texts = [e.text for e in load_nlu_examples([ROOT / args.test])]
    rows = {}
    for name, config in PIPELINES.items():
        slug = "kefu" if name.startswith("kefu") else "diet"
        started = time.perf_counter()
        rasa("train", "nlu", "--config", str(config), "--nlu", args.train, "--out", str(out / slug), "--fixed-model-name", slug)
        train_s = time.perf_counter() - started
        model = out / slug / f"{slug}.tar.gz"
        rasa("test", "nlu", "--model", str(model), "--nlu", args.test, "--out", str(out / slug / "results"))
        report = json.loads((out / slug / "results" / "intent_report.json").read_text())
        oos = report.get("out_of_scope", {})
        rows[name] = {
            "accuracy": round(report["accuracy"], 4),
            "macro_f1": round(report["macro avg"]["f1-score"], 4),
            "out_of_scope_recall": round(oos.get("recall", float("nan")), 4),
            "train_seconds": round(train_s, 1),
            **latency(model, test_texts),
        }
    (out / "compare_nlu.json").write_text(json.dumps(rows, indent=2))
    print(f"\nHeld-out: {args.test} ({len(test_texts)} messages), training data: {args.train}, {os.cpu_count()} CPU cores")
    print(f"{'pipeline':<20} {'accuracy':>9} {'macro F1':>9} {'OOS rec.':>9} {'train s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in rows.items():
        print(f"{name:<20} {r['accuracy']:>9.4f} {r['macro_f1']:>9.4f} {r['out_of_scope_recall']:>9.4f} {r['train_seconds']:>8.1f} {r['latency_ms_p50']:>8.2f} {r['latency_ms_p99']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
