"""kefu's FAISS retriever vs Rasa's stock ResponseSelector, on the same Q&A and held-out questions.

The Q&A history (data/qa) becomes Rasa retrieval intents for the ResponseSelector
(one `faq/<answer>` intent per distinct answer, its questions as examples, the
answer as `utter_faq/<answer>`), trained with `rasa train nlu` (tokenizer, word
and char n-gram count vectors, ResponseSelector with its default 300 epochs:
Rasa's documented FAQ set-up). Its accuracy on its own training questions is
printed too, to show it learned them. kefu's retriever is built the way `FaissAnswerRetriever` builds it
in `rasa train` (answer texts indexed, embedding model adapted when that helps;
`--frozen` skips adaptation). Both answer each held-out paraphrase one at a
time: top-1 / top-5 accuracy, MRR@10 and latency per message.

    .venv/bin/python bench/compare_kb.py [--qa data/qa] [--test tests/data/qa_paraphrases.csv] [--frozen]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESPONSE_SELECTOR_CONFIG = {
    "recipe": "default.v1",
    "language": "en",
    "assistant_id": "bench-response-selector",
    "pipeline": [
        {"name": "WhitespaceTokenizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
        {"name": "ResponseSelector", "retrieval_intent": "faq", "random_seed": 42},
    ],
    "policies": [],
}


def answer_keys(pairs):
    """A Rasa-safe name per distinct answer, from the first id filed under it."""
    from kefu.core.text import normalize_text

    keys = {}
    for pair in pairs:
        norm = normalize_text(pair.answer)
        if norm not in keys:
            keys[norm] = re.sub(r"[^a-z0-9_]+", "_", pair.id.lower()).strip("_") + f"_{len(keys)}"
    return keys


def write_rasa_project(pairs, folder: Path) -> dict:
    from kefu.core.text import normalize_text

    keys = answer_keys(pairs)
    examples, responses = {}, {}
    for pair in pairs:
        key = keys[normalize_text(pair.answer)]
        examples.setdefault(key, []).append(pair.question)
        responses[f"utter_faq/{key}"] = [{"text": pair.answer}]
    nlu = {"version": "3.1", "nlu": [{"intent": f"faq/{k}", "examples": "".join(f"- {q}\n" for q in qs)} for k, qs in examples.items()]}
    (folder / "data").mkdir(parents=True)
    (folder / "data/nlu.yml").write_text(yaml.safe_dump(nlu, allow_unicode=True, sort_keys=False))
    (folder / "domain.yml").write_text(yaml.safe_dump({"version": "3.1", "intents": ["faq"], "responses": responses}, allow_unicode=True))
    (folder / "config.yml").write_text(yaml.safe_dump(RESPONSE_SELECTOR_CONFIG, sort_keys=False))
    return {f"faq/{k}": norm for norm, k in keys.items()}


def score(rankings, expected):
    """rankings: per question, answer keys best first; expected: the right key."""
    ranks = [r.index(e) + 1 if e in r else None for r, e in zip(rankings, expected)]
    return {
        "queries": len(ranks),
        "top1_accuracy": round(float(np.mean([r == 1 for r in ranks])), 4),
        "top5_accuracy": round(float(np.mean([r is not None and r <= 5 for r in ranks])), 4),
        "mrr": round(float(np.mean([1.0 / r if r is not None and r <= 10 else 0.0 for r in ranks])), 4),
    }


def timings_summary(timings):
    return {"latency_ms_p50": round(float(np.percentile(timings, 50)), 2), "latency_ms_p99": round(float(np.percentile(timings, 99)), 2)}


def run_response_selector(pairs, tests) -> dict:
    from rasa.core.agent import Agent

    from kefu.core.text import normalize_text

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        key_to_answer = write_rasa_project(pairs, folder)
        started = time.perf_counter()
        env = dict(os.environ, RASA_CACHE_DIRECTORY=str(folder / "cache"))
        subprocess.run([str(Path(sys.executable).with_name("rasa")), "train", "nlu", "--config", "config.yml", "--nlu", "data/nlu.yml",
                        "--domain", "domain.yml", "--out", "models", "--fixed-model-name", "rs"], check=True, cwd=folder, env=env)
        train_seconds = time.perf_counter() - started
        agent = Agent.load(str(folder / "models/rs.tar.gz"))
        rankings, timings, seen = [], [], []

        async def go():
            for pair in pairs[::5]:
                ranking = (await agent.parse_message(pair.question))["response_selector"]["faq"]["ranking"]
                seen.append(bool(ranking) and key_to_answer.get(ranking[0]["intent_response_key"]) == normalize_text(pair.answer))
            await agent.parse_message(tests[0].question)
            for test in tests:
                start = time.perf_counter()
                parsed = await agent.parse_message(test.question)
                timings.append((time.perf_counter() - start) * 1000)
                ranking = parsed["response_selector"]["faq"]["ranking"]
                rankings.append([key_to_answer.get(r["intent_response_key"]) for r in ranking])

        asyncio.run(go())
    result = score(rankings, [normalize_text(t.answer) for t in tests])
    return {**result, **timings_summary(timings), "train_seconds": round(train_seconds, 1),
            "top1_on_training_questions": round(float(np.mean(seen)), 4)}


def run_kefu(pairs, tests, adapt_model: bool) -> dict:
    from kefu.core.text import normalize_text
    from retrieval import AdaptConfig, Embedder, IndexConfig, QAIndex, adapt

    started = time.perf_counter()
    embedder = Embedder.load("default")
    note = "frozen all-MiniLM-L6-v2"
    if adapt_model:
        result = adapt(pairs, AdaptConfig(), frozen=embedder, progress=False)
        embedder = result.embedder
        note = result.message
    index = QAIndex.build(pairs, IndexConfig(), embedder=embedder, progress=False)
    train_seconds = time.perf_counter() - started
    index.search(tests[0].question)
    rankings, timings = [], []
    for test in tests:
        start = time.perf_counter()
        answers = index.search(test.question, k=10)[0].answers
        timings.append((time.perf_counter() - start) * 1000)
        rankings.append([normalize_text(a.answer) for a in answers])
    result = score(rankings, [normalize_text(t.answer) for t in tests])
    return {**result, **timings_summary(timings), "train_seconds": round(train_seconds, 1), "model": note}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", nargs="+", default=["data/qa"])
    parser.add_argument("--test", default="tests/data/qa_paraphrases.csv")
    parser.add_argument("--frozen", action="store_true", help="do not adapt the embedding model")
    parser.add_argument("--only", choices=["kefu", "response-selector"], help="run one side only")
    parser.add_argument("--out", default="bench/out/compare_kb.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from retrieval import load_qa

    pairs = load_qa([ROOT / p for p in args.qa])
    tests = load_qa([ROOT / args.test])
    results = {}
    if args.only != "response-selector":
        results["kefu FaissAnswerRetriever"] = run_kefu(pairs, tests, adapt_model=not args.frozen)
    if args.only != "kefu":
        results["Rasa ResponseSelector"] = run_response_selector(pairs, tests)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\n{len(tests)} held-out questions, {len(pairs)} Q&A pairs ({len(answer_keys(pairs))} answers)")
    print(f"{'retriever':28} {'top-1':>6} {'top-5':>6} {'MRR@10':>7} {'p50 ms':>7} {'p99 ms':>7} {'build s':>8}")
    for name, r in results.items():
        print(f"{name:28} {r['top1_accuracy']:6.3f} {r['top5_accuracy']:6.3f} {r['mrr']:7.3f} {r['latency_ms_p50']:7.1f} "
              f"{r['latency_ms_p99']:7.1f} {r['train_seconds']:8.1f}")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
