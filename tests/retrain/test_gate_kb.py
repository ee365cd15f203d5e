"""The gate refuses a challenger whose knowledge-base answers lose precision, and says why in the run report."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from retrain import gate
from retrain.config import GateConfig, RetrainConfig
from retrain.kb_probe import precision, read_questions
from retrain.report import summary

ROOT = Path(__file__).resolve().parents[2]


def test_precision_counts_answers_given_and_wrong_ones_to_unanswerable_questions(tmp_path):
    paraphrases = tmp_path / "p.csv"
    paraphrases.write_text("question,answer_id,answer\nhow do returns work,r,Send it back within 30 days.\n"
                           "gift cards?,g,Gift cards are on the Gift cards page.\nsize chart?,s,Use the Size guide link.\n")
    unanswerable = tmp_path / "u.csv"
    unanswerable.write_text("question\ndo you sell lawn mowers\n")
    questions = read_questions([paraphrases], [unanswerable])
    assert questions[-1] == ("do you sell lawn mowers", None)
    # Right (case and punctuation aside), not answered, wrong answer, an answer to an unanswerable question.
    found = precision(questions, ["send it back within 30 days", None, "Gift cards are on the Gift cards page.", "We do!"])
    assert (found["given"], found["right"], found["precision"]) == (3, 1, 0.3333)
    assert [w["question"] for w in found["wrong_examples"]] == ["size chart?", "do you sell lawn mowers"]
    assert precision(questions, [None] * 4)["precision"] is None


def test_gate_refuses_under_the_floor_or_a_drop_beyond_tolerance():
    config = GateConfig(kb_precision_floor=0.9)  # default tolerance 0.05 for kb_answer_precision
    champion = {"intent_accuracy": 0.93, "kb_answer_precision": 0.95, "kb_answers_given": 100, "kb_answers_right": 95}
    ok, reasons = gate.decide(champion, {**champion, "kb_answer_precision": 0.91}, config)
    assert ok, reasons
    ok, reasons = gate.decide({**champion, "kb_answer_precision": 0.99}, {**champion, "kb_answer_precision": 0.93}, config)
    assert not ok and any(r.startswith("kb_answer_precision 0.9900 -> 0.9300") and r.endswith("WORSE") for r in reasons)
    # Better than a poor champion is still refused under the floor.
    poor = {**champion, "kb_answer_precision": 0.70}
    ok, reasons = gate.decide(poor, {**champion, "kb_answer_precision": 0.80}, config)
    assert not ok and any("under the floor 0.9" in r for r in reasons)
    # The floor is an option: off, the same challenger passes (it beats the champion).
    assert gate.decide(poor, {**champion, "kb_answer_precision": 0.80}, GateConfig(kb_precision_floor=None))[0]
    # A model without the knowledge base is judged on the other metrics alone.
    assert gate.decide({"intent_accuracy": 0.9}, {"intent_accuracy": 0.9}, config)[0]


def wrong_answers_archive(source: Path, target: Path) -> int:
    """The champion's archive with every knowledge-base question filed under another article's answer: what the
    knowledge base learns when a lead accepts wrong agents' answers. Returns how many entries changed."""
    changed = 0
    with tarfile.open(source, "r:gz") as src, tarfile.open(target, "w:gz", compresslevel=0) as dst:  # stored: 2.6 s, not 9.4
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if data is not None and member.name.endswith("knowledge_base/pairs.jsonl"):
                rows = [json.loads(line) for line in data.read().decode().splitlines() if line.strip()]
                answers = sorted({r["answer"] for r in rows})
                shifted = {a: answers[(i + 7) % len(answers)] for i, a in enumerate(answers)}
                for row in rows:
                    row["answer"] = shifted[row["answer"]]
                    changed += 1
                body = ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()
                member.size = len(body)
                dst.addfile(member, io.BytesIO(body))
            else:
                dst.addfile(member, data)
    return changed


@pytest.mark.slow
def test_a_challenger_with_wrong_answers_is_refused_with_the_reason_in_the_report(model, tmp_path):
    config = RetrainConfig.from_dict({"project": str(ROOT)})
    assert gate.kb_question_files(config)[0], "the project's config.yml has the knowledge base and tests/data its paraphrases"
    champion = gate.kb_metrics(config, model, tmp_path / "champion")
    challenger_archive = tmp_path / "wrong.tar.gz"
    assert wrong_answers_archive(model, challenger_archive) > 500
    challenger = gate.kb_metrics(config, challenger_archive, tmp_path / "challenger")
    # The served pipeline answers from the knowledge base only when the classifier leaves the message to it
    # (`make test`'s model: 123 of 415 held-out questions, 106 right, 0.862). The champion need not reach the
    # floor itself (retrain/gate.py judges such a champion's challengers on the tolerance once the new entries are
    # checked); it must be far better than the challenger whose answers are all filed wrong.
    assert champion["kb_answers_given"] >= 15 and champion["kb_answer_precision"] >= 0.8, champion
    assert challenger["kb_answer_precision"] < 0.5, challenger
    promote, reasons = gate.decide(champion, challenger, config.gate)
    assert not promote
    text = summary({"run_id": "t", "decision": "refused", "seconds": 1, "metrics": {"comparison": reasons}})
    assert f"kb_answer_precision {champion['kb_answer_precision']:.4f} -> {challenger['kb_answer_precision']:.4f}" in text
    assert "under the floor 0.9 (gate.kb_precision_floor): knowledge-base answers are wrong too often; e.g. " in text
