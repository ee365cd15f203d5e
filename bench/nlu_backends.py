"""kefu's NLU with its two transformer passes in ONNX Runtime (fp32, int8) vs torch, side by side in one run.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/nlu_backends.py --model build/test/models/kefu.tar.gz [--test tests/data/nlu.yml]
                                                              [--diet ~/.cache/kefu/bench-models/kefu-diet-*.tar.gz] [--threads 1] [--repeat 3]
                                                              [--also OTHER_MODEL.tar.gz ...] [--block 1]

Loads the model five times (torch; ONNX Runtime fp32; ONNX with only the knowledge base's query
encoder in int8; ONNX with both in int8, the default, with its three encoder passes one after the
other (KEFU_OVERLAP=off) and overlapped on two cores (kefu.core.side_work, the default):
KEFU_INFERENCE_BACKEND and KEFU_INT8), parses every held-out message (English and Chinese intents,
knowledge-base paraphrases) with each, alternating so all see the same machine, and prints
per-message parse latency (p50, p99: the whole NLU pipeline, classifier + knowledge base +
decision, as `Agent.parse_message` runs it, with the inference caches off, over the English
intent messages), intent accuracy, the knowledge base's top-1 answer accuracy and the
precision of the answers it gives, and how often each ONNX row agrees with torch. The two passes: the intent
classifier's transformer and the knowledge base's sentence encoder. Any archive: the ONNX
copies are made when the model loads (kefu/core/onnx_runtime.py). `--diet`: a third row, the
same project on Rasa's stock DIET pipeline (the archive `bench/throughput.py` trains and caches),
and each kefu row's p50 and p99 as multiples of DIET's, over all passes and per pass (`--repeat`:
the latency comes from that many passes over the English messages). `--also`: more kefu models (the
same data with another `base_model`, say), each a row served the default way and compared with DIET
(the line before the table says whether its classifier passed the int8 check or serves fp32).

`--threads N`: the compute threads every row may use for one message, the same for all: kefu's
KEFU_INFERENCE_THREADS (its serving default is 1) and TensorFlow's intra-op threads for DIET, set
the way `rasa run` sets them (TF_INTRA_OP_PARALLELISM_THREADS). Without it each side keeps its own
default: kefu one thread, DIET all cores (stock Rasa sets no limit).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


DEFAULT_ROW = "onnx int8 (default)"
KB_INT8_ROW = "onnx, int8 knowledge base only"
ROWS = {  # row: (KEFU_INFERENCE_BACKEND, KEFU_INT8, KEFU_OVERLAP)
    "torch": ("torch", "off", "auto"),
    "onnx fp32": ("onnx", "off", "auto"),
    KB_INT8_ROW: ("onnx", "knowledge-base", "auto"),
    "onnx int8, passes one after the other": ("onnx", "all", "off"),
    DEFAULT_ROW: ("onnx", "all", "auto"),
}


def load(model: str, backend: str, int8: str = "off"):
    from rasa.core.agent import Agent

    os.environ["KEFU_INFERENCE_BACKEND"], os.environ["KEFU_INT8"] = backend, int8
    return Agent.load(model)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--test", default="tests/data/nlu.yml")
    parser.add_argument("--test-zh", default="tests/data/nlu_zh.yml")
    parser.add_argument("--qa", nargs="*", default=["tests/data/qa_paraphrases.csv", "tests/data/qa_paraphrases_zh.csv"])
    parser.add_argument("--diet", help="a model trained with bench/configs/diet.yml's pipeline, for a third row")
    parser.add_argument("--also", nargs="*", default=[], metavar="MODEL",
                        help="other kefu models (another base model, say) served the default way, a row each")
    parser.add_argument("--threads", type=int, help="compute threads per message for every row (default: each side's own)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="passes over the English messages for the latency figures (the first pass also gives the accuracy); "
                             "p99 of one pass is its 5 slowest of 448 messages, where one hiccup of the machine moves a row by 10 %%")
    parser.add_argument("--block", type=int, default=1,
                        help="messages each row parses before the next row takes over (default 1: the rows alternate "
                             "message by message, so every row meets its weights out of the CPU's caches, as after another "
                             "model ran; a larger block lets a row keep them, as a server with one model does)")
    args = parser.parse_args()
    if args.repeat < 1 or args.block < 1:
        parser.error("--repeat and --block must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        for name in ("KEFU_INFERENCE_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS"):
            os.environ[name] = str(args.threads)
        from rasa.utils.tensorflow.environment import setup_tf_environment

        setup_tf_environment()  # what `rasa run` does with the variable, before TensorFlow runs anything
    os.environ["KEFU_INFERENCE_CACHE"] = "0"  # every message runs the models
    import logging

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # not Rasa's per-message debug lines

    from finetune import load_nlu_examples

    examples = load_nlu_examples([ROOT / args.test])
    examples_zh = load_nlu_examples([ROOT / args.test_zh]) if args.test_zh else []
    questions = []
    for path in args.qa:
        with open(ROOT / path, newline="", encoding="utf-8") as handle:
            questions += [(row["question"], row["answer"]) for row in csv.DictReader(handle)]
    agents = {row: load(args.model, backend, int8) for row, (backend, int8, _) in ROWS.items()}
    overlap = {row: settings[2] for row, settings in ROWS.items()}
    also = {f"{Path(model).name}, default": model for model in args.also}
    for row, model in also.items():
        agents[row] = load(model, *ROWS[DEFAULT_ROW][:2])
    if args.diet:
        agents["Rasa DIET"] = load(args.diet, "torch")
    for row, precision in (("onnx fp32", "fp32"), (DEFAULT_ROW, "int8")):
        if _classifier_precision(agents[row]) != f"ONNX {precision}":
            print(f"the classifier does not serve in ONNX {precision} for the row {row!r}: see the warning above")
            return 2
    for row in also:
        print(f"{row}: the classifier serves {_classifier_precision(agents[row])}")
    texts = [e.text for e in examples] + [e.text for e in examples_zh] + [q for q, _ in questions]
    n_en, n_zh = len(examples), len(examples_zh)
    timings = {b: [] for b in agents}  # English messages only, every pass
    parses = {b: [] for b in agents}  # every message, first pass

    async def go() -> None:
        for agent in agents.values():
            await agent.parse_message(examples[0].text)  # warm-up
        for repeat in range(args.repeat):
            batch = texts if repeat == 0 else texts[:n_en]
            for start in range(0, len(batch), args.block):
                for backend, agent in agents.items():
                    os.environ["KEFU_OVERLAP"] = overlap.get(backend, "auto")  # read per message (kefu.core.side_work)
                    for position in range(start, min(start + args.block, len(batch))):
                        started = time.perf_counter()
                        parse = await agent.parse_message(batch[position])
                        if position < n_en:
                            timings[backend].append((time.perf_counter() - started) * 1000)
                        if repeat == 0:
                            parses[backend].append(parse)

    asyncio.run(go())
    threads = f"{args.threads} thread(s) per message on every row" if args.threads else "kefu one thread, DIET TensorFlow's default (all cores)"
    print(f"\n{n_en} English and {n_zh} Chinese held-out intent messages, {len(questions)} knowledge-base paraphrases "
          f"({', '.join(args.qa)}); model {args.model}, {threads}, caches off; latency over the English messages, {args.repeat} pass(es) ({args.repeat * n_en} parses per row), rows alternating every {args.block} message(s)")
    print("| NLU (transformer passes in) | parse p50 | p99 | intents en | intents zh | kb top-1 | kb answers right/given |")
    print("|---|---|---|---|---|---|---|")
    for backend in agents:
        got = parses[backend]
        en = np.mean([p["intent"]["name"] == e.intent for p, e in zip(got[:n_en], examples)])
        zh = np.mean([p["intent"]["name"] == e.intent for p, e in zip(got[n_en:n_en + n_zh], examples_zh)]) if n_zh else float("nan")
        kb = [(p.get("kb") or {}, answer) for p, (_, answer) in zip(got[n_en + n_zh:], questions)]
        top1 = np.mean([_same(k.get("answer"), a) for k, a in kb]) if kb else float("nan")
        given = [(k, a) for k, a in kb if k.get("match") == "high"]
        right = sum(_same(k.get("answer"), a) for k, a in given)
        name = backend if backend == "Rasa DIET" else f"kefu ({backend})"
        latency = timings[backend]
        print(f"| {name} | {np.percentile(latency, 50):.2f} ms | {np.percentile(latency, 99):.2f} ms | {en:.4f} | {zh:.4f} | "
              f"{top1:.4f} | {right}/{len(given)} |")
    if "Rasa DIET" in timings:
        diet = timings["Rasa DIET"]
        for backend in (DEFAULT_ROW, KB_INT8_ROW, *also):
            mine = timings[backend]
            per_pass = [np.percentile(mine[i * n_en:(i + 1) * n_en], 99) / np.percentile(diet[i * n_en:(i + 1) * n_en], 99)
                        for i in range(args.repeat)]
            print(f"kefu ({backend}) against DIET: p50 {np.percentile(mine, 50) / np.percentile(diet, 50):.2f}x, "
                  f"p99 {np.percentile(mine, 99) / np.percentile(diet, 99):.2f}x (each pass's p99: "
                  f"{', '.join(f'{r:.2f}x' for r in per_pass)})")
    for backend in [row for row in ROWS if row != "torch"]:
        same = np.mean([a["intent"]["name"] == b["intent"]["name"] for a, b in zip(parses["torch"], parses[backend])])
        gap = max(abs(a["intent"]["confidence"] - b["intent"]["confidence"]) for a, b in zip(parses["torch"], parses[backend]))
        print(f"{backend}: same intent as torch on {same:.4f} of all {len(texts)} messages; largest confidence difference {gap:.2g}")
    return 0


def _same(got, expected) -> bool:
    return bool(got) and " ".join(str(got).split()) == " ".join(str(expected).split())


def _classifier_precision(agent) -> str:
    classifiers = [c for c in _components(agent) if hasattr(c, "model") and hasattr(c.model, "onnx")]
    runner = classifiers[0].model.onnx if classifiers else None
    return f"ONNX {runner.precision}" if runner is not None else "torch"


def _components(agent):
    """The graph's loaded components (Rasa 3.6: the processor's graph runner holds them per node)."""
    runner = agent.processor.graph_runner
    return [getattr(node, "_component", None) for node in getattr(runner, "_instantiated_nodes", {}).values()]


if __name__ == "__main__":
    sys.exit(main())
