"""One trained model, its NLU test set parsed with the knowledge base's intent-gap cut and without it.

Separates what the cut (retrieval/intent_neighbours.py, `DecisionModel.intent_gap_cut`) does from the
run-to-run movement of the time-budgeted training: the same model parses every message twice, the
second time with no gap given to the decision. Accuracy is read as `rasa test nlu` reads it (a fallback
counts as the classifier's first choice). For the public benchmarks (bench/public_data.py):

    .venv/bin/python bench/kb_intent_gap.py --model ~/.cache/kefu/benchmarks/banking77/models \\
        --nlu ~/.cache/kefu/benchmarks/banking77/test.yml
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model archive, or a directory (its newest archive)")
    parser.add_argument("--nlu", required=True, help="the NLU test data (Rasa YAML)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["KEFU_INFERENCE_CACHE"] = "0"  # both passes decide afresh
    import logging

    logging.disable(logging.WARNING)
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # no per-message debug lines
    from rasa.core.agent import Agent
    from rasa.model import get_local_model
    from rasa.shared.nlu.training_data.loading import load_data

    from retrieval import decision

    cut_on = {"value": True}
    decide = decision.DecisionModel.decide

    def decide_with_or_without(self, *positional, intent_gap=None, **named):
        return decide(self, *positional, intent_gap=intent_gap if cut_on["value"] else None, **named)

    decision.DecisionModel.decide = decide_with_or_without
    agent = Agent.load(get_local_model(args.model))
    test = [(m.get("text"), m.get("intent")) for m in load_data(args.nlu).intent_examples]
    predicted = {}
    for on in (True, False):
        cut_on["value"] = on
        rows = []
        for text, _ in test:
            parse = asyncio.run(agent.parse_message(text))
            top, ranking = parse["intent"]["name"], parse.get("intent_ranking") or []
            if top == "nlu_fallback" and len(ranking) > 1:
                top = ranking[1]["name"]
            rows.append(top)
        predicted[on] = rows
        right = sum(p == gold for p, (_, gold) in zip(rows, test))
        print(f"cut {'on ' if on else 'off'}: accuracy {right / len(test):.4f}, faq {rows.count('faq')} of {len(test)}", flush=True)
    changed = [(a, b, gold) for a, b, (_, gold) in zip(predicted[True], predicted[False], test) if a != b]
    print(f"changed {len(changed)}: right with the cut {sum(a == g for a, _, g in changed)}, "
          f"right without {sum(b == g for _, b, g in changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
