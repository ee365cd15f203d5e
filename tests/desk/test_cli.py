"""`kefu desk adduser / users / disable`."""

from __future__ import annotations

import pytest

from desk.accounts import Accounts
from kefu.cli import main


def test_adduser_users_disable(tmp_path, monkeypatch, capsys):
    config = tmp_path / "desk.yml"
    config.write_text(f"db: {tmp_path / 'desk.db'}\n")
    monkeypatch.setenv("KEFU_DESK_PASSWORD", "long enough password")
    assert main(["desk", "--config", str(config), "adduser", "lena", "--role", "lead", "--name", "Lena"]) == 0
    assert main(["desk", "--config", str(config), "adduser", "lena"]) == 2  # exists
    assert main(["desk", "--config", str(config), "users"]) == 0
    assert "lena\tlead\tactive\tLena" in capsys.readouterr().out
    assert Accounts(tmp_path / "desk.db").verify("lena", "long enough password").is_lead
    assert main(["desk", "--config", str(config), "disable", "lena"]) == 0
    assert Accounts(tmp_path / "desk.db").verify("lena", "long enough password") is None


def test_weak_passwords_are_refused(tmp_path, monkeypatch):
    config = tmp_path / "desk.yml"
    config.write_text(f"db: {tmp_path / 'desk.db'}\n")
    monkeypatch.setenv("KEFU_DESK_PASSWORD", "short")
    assert main(["desk", "--config", str(config), "adduser", "al"]) == 2
    with pytest.raises(SystemExit):
        main(["desk", "--config", str(config), "adduser", "al", "--role", "admin"])
