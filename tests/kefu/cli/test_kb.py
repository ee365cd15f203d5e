"""`kefu kb ...` as a person runs it: exit codes, what is printed, what is written."""

from __future__ import annotations

import json

import pytest

from kefu.cli import main
from tests.conftest import FIXTURES, ROOT

REPORT_KEYS = {"top1_accuracy", "top5_accuracy", "mrr", "latency_ms_p50", "latency_ms_p99"}


@pytest.fixture(scope="session")
def small_csv():
    return FIXTURES / "qa_small.csv"


@pytest.fixture(scope="session")
def paraphrases_csv():
    return FIXTURES / "qa_small_paraphrases.csv"


@pytest.fixture()
def kb(tmp_path, small_csv, capsys):
    assert main(["kb", "build", "--qa", str(small_csv), "--out", str(tmp_path / "kb"), "--index-kind", "flat"]) == 0
    out = capsys.readouterr().out
    assert "Loaded 30 Q&A pairs" in out and "Built flat index of 30 questions + 14 answer texts" in out
    return tmp_path / "kb"


def test_build_search_eval(kb, paraphrases_csv, tmp_path, capsys):
    assert main(["kb", "search", "--index", str(kb), "-k", "2", "how soon is my money refunded"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("? how soon is my money refunded\n1. 0.")
    assert "A: Refunds go back to your original payment method" in out
    assert "Q: When will I get my refund?" in out and "source: https://help.example.com/refunds (id ref-1)" in out
    assert "\n2. " in out and "\n3. " not in out

    report_path = tmp_path / "reports" / "kb.json"
    assert main(["kb", "eval", "--index", str(kb), "--qa", str(paraphrases_csv), "--report", str(report_path), "--latency-samples", "20"]) == 0
    report = json.loads(report_path.read_text())
    assert REPORT_KEYS <= set(report) and report["queries"] == 14 and report["answer_text_weight"] == 1.0
    assert f"top-1 {report['top1_accuracy']:.4f}" in capsys.readouterr().out


def test_add_and_delete(kb, tmp_path, capsys):
    more = tmp_path / "more.csv"
    more.write_text("question,answer\nDo you offer gift wrapping?,Yes for $3.99.\nHow can I track my order,"
                    "\"Use the tracking link in your shipping confirmation email, or open Orders and choose 'Track package'.\"\n")
    assert main(["kb", "add", "--index", str(kb), "--qa", str(more)]) == 0
    out = capsys.readouterr().out
    assert "Merged 1 duplicates (1 exact duplicate)" in out and "Added 1 of 2 pairs" in out and "31 questions + 15 answer texts (flat)" in out

    assert main(["kb", "delete", "--index", str(kb), "--id", "ship-1", "ship-2"]) == 0
    assert "Deleted 2 entries" in capsys.readouterr().out
    assert json.loads((kb / "manifest.json").read_text())["questions"] == 29


def test_bad_input_is_an_error_not_a_traceback(tmp_path, kb, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,reply\nhi,hello\n")
    assert main(["kb", "build", "--qa", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "error: " in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["kb", "delete", "--index", str(kb), "--id", "nope"]) == 2
    assert "error: No entry with id 'nope'" in capsys.readouterr().err
    assert main(["kb", "search", "--index", str(tmp_path / "missing"), "hi"]) == 2
    assert "error: Index directory not found" in capsys.readouterr().err
    assert main(["kb", "build", "--qa", str(bad), "--out", str(tmp_path / "x"), "--config", "{bad"]) == 2
    assert "error: --config is not valid JSON" in capsys.readouterr().err
    assert main(["kb", "eval", "--index", str(kb), "--qa", str(bad), "--answer-text-weight", "-1"]) == 2
    assert "error: answer_text_weight must be >= 0" in capsys.readouterr().err


def test_build_makes_the_decision_the_bot_uses(tmp_path, capsys):
    """`kb build` writes index + fitted decision; `--rasa-config` takes the bot's own options from config.yml."""
    out_dir = tmp_path / "kb"
    args = ["kb", "build", "--qa", str(FIXTURES / "qa_support.csv"), "--out", str(out_dir), "--rasa-config", str(ROOT / "config.yml"),
            "--no-adapt", "--nlu", str(ROOT / "data" / "nlu" / "basics.yml")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "negative messages" in out and "Decision: answer at p >= " in out
    # Nine rankings tried (answer-text weight x answer-head share) on held-out questions; the choice printed.
    assert "Ranking: answer-text weight " in out and out.count("/") >= 9
    saved = json.loads((out_dir / "decision.json").read_text())
    assert saved["decision"]["intent_gap_cut"] is not None and "keeps its intent" in out
    assert saved["decision"]["stats"]["fitted"] == 1 and saved["config"]["answer_precision"] == 0.9
    stored = saved["config"]
    assert stored["adapt"] is False and stored["clarify_precision"] == 0.5

    assert main(["kb", "search", "--index", str(out_dir), "-k", "1", "zxqv blorp"]) == 0
    assert "=> kb_match none" in capsys.readouterr().out
    assert main(["kb", "add", "--index", str(out_dir), "--qa", str(FIXTURES / "qa_small.csv")]) == 0
    assert (out_dir / "decision.json").exists() and (out_dir / "intent_examples.npy").exists(), "kb add must keep the decision"

    broken = tmp_path / "config.yml"
    broken.write_text("pipeline:\n  - name: WhitespaceTokenizer\n")
    assert main(["kb", "build", "--qa", str(FIXTURES / "qa_small.csv"), "--out", str(tmp_path / "x"), "--rasa-config", str(broken)]) == 2
    assert "no FaissAnswerRetriever" in capsys.readouterr().err


def test_an_answer_head_share_is_tried_only_on_an_index_that_has_the_head(tmp_path, small_csv, paraphrases_csv, capsys):
    out_dir, config = tmp_path / "kb", tmp_path / "config.yml"
    config.write_text("pipeline:\n  - name: bot.components.FaissAnswerRetriever\n    answer_head_weights: []\n")
    assert main(["kb", "build", "--qa", str(small_csv), "--out", str(out_dir), "--no-adapt", "--rasa-config", str(config)]) == 0
    capsys.readouterr()
    assert main(["kb", "eval", "--index", str(out_dir), "--qa", str(paraphrases_csv), "--answer-head", "0.3"]) == 2
    assert "has no answer head" in capsys.readouterr().err
    assert main(["kb", "eval", "--index", str(out_dir), "--qa", str(paraphrases_csv), "--answer-head", "0", "--latency-samples", "0"]) == 0
