"""kefu's NLU with its two transformer passes in ONNX Runtime vs torch, side by side in one run.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/nlu_backends.py --model build/test/models/kefu.tar.gz [--test tests/data/nlu.yml]
                                                              [--diet ~/.cache/kefu/bench-models/kefu-diet-*.tar.gz]

Loads the model twice (KEFU_INFERENCE_BACKEND=torch, then onnx; one thread each, the
serving default), parses every held-out message with both, alternating so both see the
same machine, and prints per-message parse latency (p50, p99: the whole NLU pipeline,
classifier + knowledge base + decision, as `Agent.parse_message` runs it, with the
inference caches off), accuracy, and how often the two agree. The two passes: the intent
classifier's transformer and the knowledge base's sentence encoder. Any archive: the ONNX
copies are made when the model loads (kefu/core/onnx_runtime.py). `--diet`: a third row, the
same project on Rasa's stock DIET pipeline (the archive `bench/throughput.py` trains and caches).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(model: str, backend: str):
    from rasa.core.agent import Agent

    os.environ["KEFU_INFERENCE_BACKEND"] = backend
    return Agent.load(model)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--test", default="tests/data/nlu.yml")
    parser.add_argument("--diet", help="a model trained with bench/configs/diet.yml's pipeline, for a third row")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["KEFU_INFERENCE_CACHE"] = "0"  # every message runs the models
    import logging

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # not Rasa's per-message debug lines

    from finetune import load_nlu_examples

    examples = load_nlu_examples([ROOT / args.test])
    agents = {backend: load(args.model, backend) for backend in ("torch", "onnx")}
    if args.diet:
        agents["Rasa DIET"] = load(args.diet, "torch")
    classifiers = [c for c in _components(agents["onnx"]) if hasattr(c, "model") and hasattr(c.model, "onnx")]
    if not classifiers or classifiers[0].model.onnx is None:
        print("the classifier serves with torch under KEFU_INFERENCE_BACKEND=onnx too: see the warning above")
        return 2
    timings = {b: [] for b in agents}
    parses = {b: [] for b in agents}

    async def go() -> None:
        for agent in agents.values():
            await agent.parse_message(examples[0].text)  # warm-up
        for example in examples:
            for backend, agent in agents.items():
                started = time.perf_counter()
                parse = await agent.parse_message(example.text)
                timings[backend].append((time.perf_counter() - started) * 1000)
                parses[backend].append(parse)

    asyncio.run(go())
    gold = [e.intent for e in examples]
    print(f"\n{len(examples)} held-out messages ({args.test}), model {args.model}, one thread, caches off")
    print("| NLU (transformer passes in) | parse p50 | p99 | intent accuracy |")
    print("|---|---|---|---|")
    for backend in agents:
        accuracy = np.mean([p["intent"]["name"] == g for p, g in zip(parses[backend], gold)])
        name = backend if backend == "Rasa DIET" else f"kefu ({backend})"
        print(f"| {name} | {np.percentile(timings[backend], 50):.2f} ms | {np.percentile(timings[backend], 99):.2f} ms | {accuracy:.4f} |")
    same = np.mean([a["intent"]["name"] == b["intent"]["name"] for a, b in zip(parses["torch"], parses["onnx"])])
    gap = max(abs(a["intent"]["confidence"] - b["intent"]["confidence"]) for a, b in zip(parses["torch"], parses["onnx"]))
    print(f"same intent on {same:.4f} of messages; largest confidence difference {gap:.2g}")
    return 0


def _components(agent):
    """The graph's loaded components (Rasa 3.6: the processor's graph runner holds them per node)."""
    runner = agent.processor.graph_runner
    return [getattr(node, "_component", None) for node in getattr(runner, "_instantiated_nodes", {}).values()]


if __name__ == "__main__":
    sys.exit(main())
