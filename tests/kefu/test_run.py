"""`kefu run` refuses clearly where it cannot work, and picks the newest model."""

import os
import time

import yaml

from kefu.cli import main
from kefu.core.archives import newest_model
from kefu.run import action_server_command, endpoints_for_actions_port


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


def test_a_non_default_actions_port_reaches_rasa_through_a_copy_of_endpoints(tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text('action_endpoint:\n  url: "http://localhost:5055/webhook"\ntracker_store:\n  type: SQL\n')
    assert endpoints_for_actions_port(endpoints, 5055, tmp_path / "var") == endpoints
    copy = endpoints_for_actions_port(endpoints, 6001, tmp_path / "var")
    config = yaml.safe_load(copy.read_text())
    assert config["action_endpoint"]["url"] == "http://localhost:6001/webhook"
    assert config["tracker_store"] == {"type": "SQL"}
    endpoints.write_text('action_endpoint:\n  url: "http://actions.internal:5055/webhook"\n')
    assert endpoints_for_actions_port(endpoints, 6001, tmp_path / "var") == endpoints  # remote: left alone


def test_the_action_server_is_bound_to_loopback():
    command = action_server_command(6055)
    assert command[1:3] == ["-m", "bot.action_server"] and command[command.index("--host") + 1] == "127.0.0.1"


def test_workers_come_from_the_option_else_the_environment_else_one():
    from kefu.run import default_workers, resolve_workers

    assert resolve_workers(3, {"KEFU_WORKERS": "1"}) == 3
    assert resolve_workers(None, {"KEFU_WORKERS": "1"}) == 1
    assert resolve_workers(None, {}) == default_workers()
    assert default_workers() == 1


def test_several_workers_need_a_lock_store_that_processes_share(tmp_path):
    from kefu.run import shared_lock_store

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: SQL\n")
    assert not shared_lock_store(endpoints)
    endpoints.write_text("lock_store:\n  type: in_memory\n")
    assert not shared_lock_store(endpoints)
    endpoints.write_text("lock_store:\n  type: bot.lock_store.SQLiteLockStore\n")
    assert shared_lock_store(endpoints)


def test_zero_workers_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.yml").write_text("language: en\n")
    (tmp_path / "domain.yml").write_text('version: "3.1"\n')
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.tar.gz").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--workers", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
