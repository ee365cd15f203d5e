"""Knowledge-base answer precision of a model archive, as customers get it (the gate's `kb_answer_precision`).

The archive's NLU is loaded (intent classifier, fallback and knowledge base, as
the server runs them; `bot.nlu_only`, without the dialogue policies a parse does
not use) in a child process (`python -m retrain.kb_probe`, so the retrain
process stays light), and parses every held-out question: paraphrases with
their right answer, and questions the knowledge base has no answer for. An
answer is *given* when the parse's `kb.match` is `high` (the bot answers from
the knowledge base); it is *right* when its text is the expected answer
(normalised: case, spacing, punctuation). Precision = right / given; an answer
to an unanswerable question is a wrong one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from kefu.core.payloads import KB_HIGH, KB_KEY
from kefu.core.text import log_tail, normalize_text

# (question, expected answer or None for a question with no answer)
Question = Tuple[str, Optional[str]]


def read_questions(paraphrases: Sequence[Path], unanswerable: Sequence[Path]) -> List[Question]:
    """CSV files with `question,answer` (other columns ignored) and files with `question` alone."""
    found: List[Question] = []
    for path, answered in [(p, True) for p in paraphrases] + [(p, False) for p in unanswerable]:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            need = {"question", "answer"} if answered else {"question"}
            if not need <= set(reader.fieldnames or []):
                raise ValueError(f"{path} needs the column(s) {sorted(need)}")
            found += [(row["question"].strip(), row["answer"].strip() if answered else None)
                      for row in reader if (row.get("question") or "").strip()]
    return found


def precision(questions: Sequence[Question], answers: Sequence[Optional[str]]) -> Dict[str, Any]:
    """`answers`: per question, the knowledge-base answer the bot gave (match high), else None."""
    given = [(q, expected, got) for (q, expected), got in zip(questions, answers) if got is not None]
    right = [g for g in given if g[1] is not None and normalize_text(g[1]) == normalize_text(g[2])]
    wrong = [{"question": q, "expected": expected, "got": got} for q, expected, got in given
             if expected is None or normalize_text(expected) != normalize_text(got)]
    answerable = sum(expected is not None for _, expected in questions)
    return {"questions": len(questions), "answerable": answerable, "given": len(given), "right": len(right),
            "precision": round(len(right) / len(given), 4) if given else None,
            "answered_share": round(len(right) / answerable, 4) if answerable else None, "wrong_examples": wrong[:10]}


def measure(archive: Path, questions: Sequence[Question], out: Path, timeout_s: float) -> Dict[str, Any]:
    """Parses the questions with the archive in a child process; returns `precision`'s figures and the seconds."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "questions.json").write_text(json.dumps([q for q, _ in questions], ensure_ascii=False), encoding="utf-8")
    started = time.perf_counter()
    run_child("retrain.kb_probe", ["--model", str(archive), "--questions", str(out / "questions.json"), "--out", str(out / "answers.json")],
              out / "kb_probe.log", timeout_s, f"the knowledge-base probe of {archive.name}")
    answers = json.loads((out / "answers.json").read_text(encoding="utf-8"))
    return precision(questions, answers) | {"seconds": round(time.perf_counter() - started, 1)}


def run_child(module: str, args: Sequence[str], log_path: Path, timeout_s: float, what: str) -> None:
    """`python -m module args` with this checkout's code, offline, output to `log_path`; RuntimeError (naming `what`
    and the log's tail) if it fails, subprocess.TimeoutExpired past `timeout_s`."""
    with open(log_path, "wb") as log:
        code = subprocess.call([sys.executable, "-m", module, *args], stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s,
                               env=_child_env())
    if code != 0:
        tail = log_tail(log_path)
        raise RuntimeError(f"{what} failed (exit {code}); see {log_path}:\n{tail}")


def _child_env() -> Dict[str, str]:
    """The child imports this same code (the checkout this module comes from), offline."""
    here = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([here] + ([path] if path else [])))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--questions", required=True, help="JSON list of messages")
    parser.add_argument("--out", required=True, help="JSON list: per message the knowledge-base answer given, or null")
    args = parser.parse_args(argv)
    from bot.nlu_only import NLUParser

    texts = json.loads(Path(args.questions).read_text(encoding="utf-8"))
    nlu = NLUParser(args.model)  # not `parser`: that name is the command line's
    answers = []
    for text in texts:
        kb = nlu.parse(text).get(KB_KEY) or {}
        answers.append(kb.get("answer") if kb.get("match") == KB_HIGH else None)
    Path(args.out).write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
