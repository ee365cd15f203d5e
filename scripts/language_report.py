"""English next to Chinese through the trained model: intents, knowledge base, latency.

Loads a `rasa train` model once and parses, through the whole NLU pipeline
(classifier, FallbackClassifier, knowledge base):
  - held-out intents: English (tests/data/nlu.yml), Chinese (tests/data/nlu_zh.yml), the same Chinese
    converted to Traditional with OpenCC (s2t), and mixed messages (tests/data/nlu_mixed.yml); a message
    that FallbackClassifier (or the knowledge base) takes counts as a miss here, where `rasa test nlu`
    undoes the fallback and counts the intent under it;
  - knowledge-base top-1 on held-out paraphrases: English, Chinese, Chinese in Traditional.
Prints one line per figure and writes them as JSON.

    .venv/bin/python scripts/language_report.py --model build/test/models/kefu.tar.gz [--out build/test/language_report.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from kefu.core import atomic  # noqa: E402
from kefu.core.text import normalize_text, to_script  # noqa: E402


def nlu_set(name: str, traditional: bool = False):
    from rasa.shared.nlu.training_data.loading import load_data

    examples = [(m.get("text"), m.get("intent")) for m in load_data(str(ROOT / "tests/data" / name)).intent_examples]
    return [(to_script(t, "hant"), i) for t, i in examples] if traditional else examples


def qa_set(name: str, traditional: bool = False):
    from retrieval import load_qa

    pairs = [(p.question, normalize_text(p.answer)) for p in load_qa([ROOT / "tests/data" / name])]
    return [(to_script(q, "hant"), a) for q, a in pairs] if traditional else pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="build/test/models/kefu.tar.gz")
    parser.add_argument("--out", default="build/test/language_report.json")
    args = parser.parse_args()
    import logging

    import structlog
    from rasa.core.agent import Agent

    # Rasa logs every parse with its text at debug level through structlog; a report prints figures only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    agent = Agent.load(str(args.model))
    latencies = {"en": [], "zh": []}

    async def parse(texts, language=None):
        parsed = []
        for text in texts:
            started = time.perf_counter()
            parsed.append(await agent.parse_message(text))
            if language:
                latencies[language].append((time.perf_counter() - started) * 1000)
        return parsed

    report = {}
    for label, examples, language in (("intents en", nlu_set("nlu.yml"), "en"), ("intents zh", nlu_set("nlu_zh.yml"), "zh"),
                                      ("intents zh-Hant", nlu_set("nlu_zh.yml", traditional=True), None),
                                      ("intents mixed", nlu_set("nlu_mixed.yml"), None)):
        parsed = asyncio.run(parse([t for t, _ in examples], language))
        right = sum((p.get("intent") or {}).get("name") == gold for p, (_, gold) in zip(parsed, examples))
        report[label] = {"accuracy": round(right / len(examples), 4), "messages": len(examples)}
    for label, pairs in (("kb top-1 en", qa_set("qa_paraphrases.csv")), ("kb top-1 zh", qa_set("qa_paraphrases_zh.csv")),
                         ("kb top-1 zh-Hant", qa_set("qa_paraphrases_zh.csv", traditional=True))):
        parsed = asyncio.run(parse([q for q, _ in pairs]))
        right = sum(normalize_text((p.get("kb") or {}).get("answer") or "") == gold for p, (_, gold) in zip(parsed, pairs))
        report[label] = {"accuracy": round(right / len(pairs), 4), "messages": len(pairs)}
    for language, values in latencies.items():
        values.sort()
        report[f"latency ms {language}"] = {"p50": round(values[len(values) // 2], 2), "p95": round(values[int(len(values) * 0.95)], 2)}
    for label, figures in report.items():
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    atomic.write_json(Path(args.out), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
