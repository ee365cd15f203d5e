"""`kefu run` refuses clearly where it cannot work, and picks the newest model."""

import os
import time

from kefu.cli import main
from kefu.run import newest_model


def test_refuses_outside_a_project(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "project root" in capsys.readouterr().err


def test_missing_model_file_is_reported(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.yml").write_text("language: en\n")
    (tmp_path / "domain.yml").write_text('version: "3.1"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--model", str(tmp_path / "models" / "nope.tar.gz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_newest_model_wins(tmp_path):
    assert newest_model(tmp_path) is None
    old, new = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    past = time.time() - 100
    os.utime(old, (past, past))
    assert newest_model(tmp_path) == new
