import json

from finetune import evaluate
from kefu.cli import main


def test_report_has_what_users_read(tiny_model, tiny_examples):
    report = evaluate(tiny_model, tiny_examples, latency_samples=10)
    assert report["accuracy"] >= 0.9
    assert 0 < report["macro_f1"] <= 1
    assert set(report["per_intent"]) == {"greet", "order_status", "reset_password", "thanks"}
    assert report["latency_ms_p50"] > 0 and report["latency_ms_p99"] >= report["latency_ms_p50"]


def test_cli_eval_writes_the_json_report(tiny_model_dir, tiny_nlu, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert main(["nlu", "eval", "--model", str(tiny_model_dir), "--nlu", str(tiny_nlu), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    for key in ("accuracy", "macro_f1", "per_intent", "confused_pairs", "latency_ms_p50", "latency_ms_p99"):
        assert key in report
    assert "accuracy" in capsys.readouterr().out


def test_cli_train_writes_a_loadable_model(tiny_nlu, tmp_path, capsys):
    out = tmp_path / "model"
    options = json.dumps({"epochs": 2, "batch_size": 8, "max_length": 32, "time_budget_minutes": None})
    assert main(["nlu", "train", "--nlu", str(tiny_nlu), "--out", str(out), "--config", options]) == 0
    assert (out / "kefu_intent.json").exists()
    assert "Saved" in capsys.readouterr().out


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu: [\n")
    assert main(["nlu", "train", "--nlu", str(bad), "--out", str(tmp_path / "m")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["nlu", "eval", "--model", str(tmp_path / "none"), "--nlu", str(bad)]) == 2
