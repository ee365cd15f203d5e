"""`kefu retrain` status, rollback and errors from the shell, without training anything."""

import json
import subprocess
import sys

import yaml

from kefu.cli import main


def _config(tmp_path):
    path = tmp_path / "retrain.yml"
    path.write_text(yaml.safe_dump({"server": {"url": None}}))
    return str(path)


def test_status_of_a_project_never_retrained(tmp_path, capsys):
    assert main(["retrain", "--config", _config(tmp_path), "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["champion"] is None and status["history"] == [] and status["last_run"] is None


def test_status_loads_no_model_library(tmp_path):
    code = (f"import sys\nfrom kefu.cli import main\nassert main(['retrain', '--config', {_config(tmp_path)!r}, 'status']) == 0\n"
            "print('HEAVY', [m for m in ('torch', 'transformers', 'rasa', 'scrubadub') if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_rollback_without_history_and_a_missing_config_are_explained(tmp_path, capsys):
    assert main(["retrain", "--config", _config(tmp_path), "rollback"]) == 2
    assert "no earlier model to roll back to" in capsys.readouterr().err
    assert main(["retrain", "--config", str(tmp_path / "nope.yml")]) == 2
    assert "retrain config not found" in capsys.readouterr().err
    (tmp_path / "bad.yml").write_text("signals: {review: {confidence_below: 2}}\n")
    assert main(["retrain", "--config", str(tmp_path / "bad.yml"), "status"]) == 2
    assert "confidence_below" in capsys.readouterr().err
