"""Converts public intent benchmarks kept outside the project into kefu's inputs.

The data stays outside the clone (licences and size); this writes Rasa NLU YAML for
`rasa train nlu` / `rasa test nlu` and, for BANKING77, Q&A CSV for `kefu kb build` /
`kefu kb eval`, into `--out` (default ~/.cache/kefu/benchmarks/<name>):

    # BANKING77 (PolyAI-LDN/task-specific-datasets, banking_data/, CC BY 4.0)
    .venv/bin/python bench/public_data.py banking77 --source DIR_WITH_train.csv_AND_test.csv
    # CLINC150 "full" (clinc/oos-eval, data/data_full.json): 150 intents + out-of-scope;
    # also writes val.yml, the benchmark's validation split, for development
    .venv/bin/python bench/public_data.py clinc150 --source data_full.json

Then, from the project root with config.yml as shipped:

    rasa train nlu --nlu OUT/train.yml --out OUT/models
    rasa test nlu --nlu OUT/test.yml --model OUT/models --out OUT/results
    .venv/bin/python bench/public_data.py score OUT/results   # accuracy, in-scope, out-of-scope caught

BANKING77 as historical Q&A: each training question answered by its category's answer
(77 distinct answers; the category name in words stands in for the answer text):

    kefu kb build --qa OUT/qa_train.csv --out OUT/kb && kefu kb eval --index OUT/kb --qa OUT/qa_test.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu.core.payloads import OUT_OF_SCOPE  # noqa: E402

Pairs = List[Tuple[str, str]]


def write_nlu(pairs: Pairs, path: Path, dedupe: bool) -> None:
    """Rasa NLU YAML; `dedupe` drops repeats within an intent (training), a test set keeps every message."""
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in pairs:
        text = " ".join(text.split())
        if text and not (dedupe and text in by_intent[intent]):
            by_intent[intent].append(text)
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {_escape(text)}" for text in by_intent[intent]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _escape(text: str) -> str:
    # Rasa reads `[text](entity)` as an annotation; the benchmarks have no entities.
    return text.replace("[", "(").replace("]", ")")


def write_qa(pairs: Pairs, path: Path, prefix: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "question", "answer"])
        for n, (text, intent) in enumerate(pairs):
            writer.writerow([f"{prefix}-{n}", " ".join(text.split()), f"Answer about {intent.replace('_', ' ')}."])


def read_banking(source: Path, split: str) -> Pairs:
    with (source / f"{split}.csv").open(newline="", encoding="utf-8") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def read_clinc(source: Path) -> Tuple[Pairs, Pairs, Pairs]:
    """(train, test, val): val is the benchmark's own validation split, for choices (bench/ood_quantile.py)."""
    data = json.loads(source.read_text(encoding="utf-8"))
    train, test, val = ([(t, i) for t, i in data[split]] + [(t, OUT_OF_SCOPE) for t, _ in data[f"oos_{split}"]]
                        for split in ("train", "test", "val"))
    return train, test, val


def score(results: Path) -> Dict[str, float]:
    """Accuracy from `rasa test nlu`'s intent report; with out-of-scope examples, in-scope accuracy and share caught."""
    report = json.loads((results / "intent_report.json").read_text())
    per_intent = {k: v for k, v in report.items() if isinstance(v, dict) and "support" in v and k not in
                  ("macro avg", "weighted avg", "micro avg")}
    correct = {k: v["recall"] * v["support"] for k, v in per_intent.items()}
    support = {k: v["support"] for k, v in per_intent.items()}
    figures = {"accuracy": round(sum(correct.values()) / sum(support.values()), 4),
               "macro_f1": round(report["macro avg"]["f1-score"], 4), "test_messages": int(sum(support.values()))}
    if OUT_OF_SCOPE in support:
        in_scope = [k for k in support if k != OUT_OF_SCOPE]
        figures["in_scope_accuracy"] = round(sum(correct[k] for k in in_scope) / sum(support[k] for k in in_scope), 4)
        figures["out_of_scope_caught"] = round(correct[OUT_OF_SCOPE] / support[OUT_OF_SCOPE], 4)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["banking77", "clinc150", "score"])
    parser.add_argument("path", nargs="?", help="score: the `rasa test nlu --out` directory")
    parser.add_argument("--source", type=Path, help="banking77: the banking_data directory; clinc150: data_full.json")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.what == "score":
        if not args.path:
            parser.error("score needs the results directory")
        print(json.dumps(score(Path(args.path)), indent=2))
        return 0
    if args.source is None or not args.source.exists():
        parser.error(f"--source {args.source}: not found")
    out = args.out or Path.home() / ".cache/kefu/benchmarks" / args.what
    out.mkdir(parents=True, exist_ok=True)
    if args.what == "banking77":
        train, test = read_banking(args.source, "train"), read_banking(args.source, "test")
        write_qa(train, out / "qa_train.csv", "train")
        write_qa(test, out / "qa_test.csv", "test")
    else:
        train, test, val = read_clinc(args.source)
        write_nlu(val, out / "val.yml", dedupe=False)
    write_nlu(train, out / "train.yml", dedupe=True)
    write_nlu(test, out / "test.yml", dedupe=False)
    yaml.safe_load((out / "train.yml").read_text(encoding="utf-8"))  # fails here, not in rasa, on a bad conversion
    print(f"{args.what}: {len(train):,} training and {len(test):,} test messages, "
          f"{len({i for _, i in train})} intents -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
