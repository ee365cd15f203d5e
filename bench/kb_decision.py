"""The whole NLU pipeline's "can we answer this, and how" decision, on held-out messages.

Parses, with a trained Rasa model (`rasa train` output), three held-out sets:
paraphrased questions the knowledge base can answer (tests/data/qa_paraphrases.csv),
on-topic questions it cannot (tests/data/qa_unanswerable.csv), and the held-out
NLU test set (tests/data/nlu.yml: scripted intents and out-of-scope messages).
Prints the precision of the knowledge-base answers given, the share of
answerable questions answered, how often the bot answered what it should not,
and intent accuracy on the NLU set with and without the retriever's override.

    .venv/bin/python bench/kb_decision.py [--model build/test/models/kefu.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_sets():
    from rasa.shared.nlu.training_data.loading import load_data

    from kefu.core.text import normalize_text
    from retrieval import load_qa

    paraphrases = [(p.question, normalize_text(p.answer)) for p in load_qa([ROOT / "tests/data/qa_paraphrases.csv"])]
    with open(ROOT / "tests/data/qa_unanswerable.csv", newline="") as f:
        unanswerable = [row["question"] for row in csv.DictReader(f) if row["question"].strip()]
    nlu = [(m.get("text"), m.get("intent")) for m in load_data(str(ROOT / "tests/data/nlu.yml")).intent_examples]
    return paraphrases, unanswerable, nlu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="build/test/models/kefu.tar.gz")
    parser.add_argument("--out", default="bench/out/kb_decision.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rasa.core.agent import Agent

    from kefu.core.text import normalize_text

    paraphrases, unanswerable, nlu = load_sets()
    agent = Agent.load(str(ROOT / args.model))

    async def parse_all(texts):
        return [await agent.parse_message(t) for t in texts]

    parsed_para = asyncio.run(parse_all([q for q, _ in paraphrases]))
    parsed_un = asyncio.run(parse_all(unanswerable))
    parsed_nlu = asyncio.run(parse_all([t for t, _ in nlu]))

    def routes(parsed):
        return Counter(p.get("kb", {}).get("route", "none") for p in parsed)

    answered_right = sum(1 for p, (_, expected) in zip(parsed_para, paraphrases)
                         if p["kb"]["route"] == "answer" and normalize_text(p["kb"]["answer"]) == expected)
    answered = {name: sum(p["kb"]["route"] == "answer" for p in parsed)
                for name, parsed in (("answerable", parsed_para), ("unanswerable", parsed_un), ("nlu", parsed_nlu))}
    given = sum(answered.values())
    with_retriever = sum(p["intent"]["name"] == gold for p, (_, gold) in zip(parsed_nlu, nlu)) / len(nlu)
    without = sum(p["kb"].get("intent_before", p["intent"]["name"]) == gold for p, (_, gold) in zip(parsed_nlu, nlu)) / len(nlu)
    report = {
        "answer_precision": round(answered_right / given, 4) if given else None,
        "answers_given": given,
        "answerable_questions": len(paraphrases),
        "answerable_answered_share": round(answered["answerable"] / len(paraphrases), 4),
        "answerable_answered_right_share": round(answered_right / len(paraphrases), 4),
        "answerable_routes": dict(routes(parsed_para)),
        "unanswerable_questions": len(unanswerable),
        "unanswerable_answered_share": round(answered["unanswerable"] / len(unanswerable), 4),
        "unanswerable_routes": dict(routes(parsed_un)),
        "nlu_messages": len(nlu),
        "nlu_answered_from_kb": answered["nlu"],
        "intent_accuracy_with_retriever": round(with_retriever, 4),
        "intent_accuracy_classifier_only": round(without, 4),
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
