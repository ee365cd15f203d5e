"""Rasa's own NLU commands work with the component unchanged."""

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOT = FIXTURES.parent.parent
RASA = str(Path(sys.executable).with_name("rasa"))


def run(*args, cwd=ROOT):
    result = subprocess.run([RASA, *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_train_nlu_then_test_nlu(tmp_path):
    run("train", "nlu", "--config", str(FIXTURES / "fast_config.yml"), "--nlu", str(FIXTURES / "tiny_nlu.yml"),
        "--out", str(tmp_path / "models"), "--fixed-model-name", "tiny")
    archive = tmp_path / "models" / "tiny.tar.gz"
    assert archive.exists()
    run("test", "nlu", "--model", str(archive), "--nlu", str(FIXTURES / "tiny_nlu.yml"), "--out", str(tmp_path / "results"))
    report = json.loads((tmp_path / "results" / "intent_report.json").read_text())
    assert report["accuracy"] >= 0.9


def test_cross_validation(tmp_path):
    run("test", "nlu", "--cross-validation", "--folds", "2", "--config", str(FIXTURES / "fast_config.yml"),
        "--nlu", str(FIXTURES / "tiny_nlu.yml"), "--out", str(tmp_path / "cv"))
    report = json.loads((tmp_path / "cv" / "intent_report.json").read_text())
    # Two folds of 24 training examples: well above the 25% of guessing among four intents.
    assert report["accuracy"] >= 0.6
