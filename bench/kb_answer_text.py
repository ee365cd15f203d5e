"""How much an answer's own text should count next to its stored questions (IndexConfig.answer_text_weight).

Frozen all-MiniLM-L6-v2, development sets only: the fixtures' 40 answers x 5 questions with their
80 held-out paraphrases (tests/fixtures/qa_support*.csv), and leave-one-question-out on the English
curated Q&A (data/qa/store_faq.csv: each question searched with itself removed from the hits).
Prints top-1 per weight w (answer score = (best question + w * answer text) / (1 + w)) and for
"max" (the better of the two, the scoring before the option). The test sets (tests/data) are
not read.

    .venv/bin/python bench/kb_answer_text.py [--weights 0.5 1 1.5]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def top1(index, questions, answers, weights, leave_out=None):
    """Top-1 per weight; `leave_out[i]`: the entry of question i removed from its own hits."""
    from kefu.core.text import normalize_text
    from retrieval.ranking import group_by_answer

    # Searched with a weight > 0, so every candidate answer's own text is scored among the hits.
    index.config = dataclasses.replace(index.config, answer_text_weight=1.0, candidates=max(index.config.candidates, 50))
    results = index.search(questions, k=index.config.candidates)
    right = {w: 0 for w in ["max", *weights]}
    for i, (result, expected) in enumerate(zip(results, answers)):
        hits = [h for h in result.hits if leave_out is None or h.pair is not leave_out[i]]
        for w in right:
            grouped = group_by_answer(hits, 0.0, 0.0 if w == "max" else w)
            right[w] += bool(grouped) and normalize_text(grouped[0].answer) == normalize_text(expected)
    return {w: round(n / len(answers), 3) for w, n in right.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", type=float, default=[0.5, 1.0, 1.5])
    args = parser.parse_args()

    from retrieval import IndexConfig, build, load_qa
    from retrieval.embedder import Embedder
    from retrieval.qa import is_answer_text

    embedder = Embedder.load("default")
    support = build(load_qa([ROOT / "tests/fixtures/qa_support.csv"]), IndexConfig(kind="flat"), embedder=embedder, progress=False)
    heldout = load_qa([ROOT / "tests/fixtures/qa_support_heldout.csv"])
    rows = [("qa_support_heldout", len(heldout), top1(support, [p.question for p in heldout], [p.answer for p in heldout], args.weights))]
    store = build(load_qa([ROOT / "data/qa/store_faq.csv"]), IndexConfig(kind="flat"), embedder=embedder, progress=False)
    own = [p for p in store.pairs.values() if not is_answer_text(p)]
    rows.append(("store_faq leave-one-out", len(own), top1(store, [p.question for p in own], [p.answer for p in own], args.weights, own)))

    columns = ["max", *args.weights]
    print("top-1 by answer_text_weight (max: the better of best question and answer text)")
    print(f"| set | n | {' | '.join(str(c) for c in columns)} |")
    print(f"|---|---|{'---|' * len(columns)}")
    for name, n, scores in rows:
        print(f"| {name} | {n} | {' | '.join(f'{scores[c]:.3f}' for c in columns)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
