"""`kefu kb ...` as a person runs it: exit codes, what is printed, what is written."""

from __future__ import annotations

import json

import pytest

from kefu.cli import main

REPORT_KEYS = {"top1_accuracy", "top5_accuracy", "mrr", "latency_ms_p50", "latency_ms_p99"}


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
    assert REPORT_KEYS <= set(report) and report["queries"] == 14
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
