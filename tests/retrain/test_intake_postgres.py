"""Intake from a PostgreSQL tracker store, written by Rasa's own SQLTrackerStore (throw-away cluster)."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from retrain.config import RetrainConfig
from retrain.intake import Watermark, read_new_transcripts

PG = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(args, **kw):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def postgres():
    if not (PG / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: postgres refuses to run as root")
    data = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
    os.chmod(data, 0o777)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    init = _as_postgres([str(PG / "initdb"), "-D", str(data / "db"), "-U", "kefu", "--auth=trust"])
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr[-300:]}")
    start = _as_postgres([str(PG / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w", "-o",
                          f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"])
    if start.returncode != 0:
        pytest.skip(f"pg_ctl start failed: {start.stderr[-300:]}")
    try:
        yield port
    finally:
        _as_postgres([str(PG / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"])
        shutil.rmtree(data, ignore_errors=True)


def test_conversations_in_postgres_are_read_after_the_watermark(postgres, tmp_path):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.from_yaml('version: "3.1"\nintents: [greet]\n')
    store = SQLTrackerStore(domain, dialect="postgresql", host="127.0.0.1", port=postgres, db="postgres", username="kefu")
    now = time.time()
    tracker = DialogueStateTracker.from_events("pg-user", [
        UserUttered("hi, my email is ann@example.org", {"name": "greet", "confidence": 0.9}, timestamp=now - 10),
        ActionExecuted("action_handoff_to_human", timestamp=now - 9),
        UserUttered("do you gift wrap?", {"name": "nlu_fallback", "confidence": 0.2}, timestamp=now - 8),
        BotUttered("Yes, tick 'gift wrap' at checkout for 2.50.", metadata={"agent": "human"}, timestamp=now - 7),
    ])
    import asyncio

    asyncio.run(store.save(tracker))
    (tmp_path / "endpoints.yml").write_text(
        f"tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: 127.0.0.1\n  port: {postgres}\n  db: postgres\n  username: kefu\n")
    config = RetrainConfig.from_dict({"project": str(tmp_path)})
    found = read_new_transcripts(config, Watermark(tmp_path / "wm.json"))
    (conversation,) = found.conversations
    assert [t.text for t in conversation.new_user_turns()] == ["hi, my email is ann@example.org", "do you gift wrap?"]
    assert [t.kind for t in conversation.turns if t.kind == "agent"] == ["agent"] and conversation.handed_off
    wm = Watermark(tmp_path / "wm.json")
    wm.advance(found.watermarks)
    assert read_new_transcripts(config, Watermark(tmp_path / "wm.json")).conversations == []
