"""bot.lock_store: one conversation at a time across processes, stale locks expire, `kefu run --workers 2` keeps turns whole."""

from __future__ import annotations

import asyncio
import http.client
import json
import multiprocessing
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from bot.lock_store import SQLiteLockStore, is_dead, process_id


def _hold(db: str, conversation: str, log: str, name: str, rounds: int, go, lifetime: float = 60.0) -> None:
    """In a child process: take the conversation's lock `rounds` times, writing 'start'/'end' lines while holding it."""

    async def main() -> None:
        store = SQLiteLockStore(db=db)
        go.wait()
        for _ in range(rounds):
            async with store.lock(conversation, lock_lifetime=lifetime):
                with open(log, "a") as f:
                    f.write(f"start {name}\n")
                await asyncio.sleep(0.05)  # other process gets every chance to barge in
                with open(log, "a") as f:
                    f.write(f"end {name}\n")

    asyncio.run(main())


def _spawn(*args) -> multiprocessing.Process:
    process = multiprocessing.get_context("spawn").Process(target=_hold, args=args)
    process.start()
    return process


def served_one_at_a_time(workers, go, log: Path, turns: int, timeout_s: float = 120) -> list:
    """Starts the racing `workers` (each logs 'start NAME' / 'end NAME' around its turns) and checks no two overlapped."""
    go.set()
    for w in workers:
        w.join(timeout_s)
        assert w.exitcode == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 2 * turns
    for start, end in zip(lines[::2], lines[1::2]):  # every holder finished before the next one started
        assert start.split()[0] == "start" and end == "end " + start.split()[1], lines
    return lines


def _open_store(db: str, go, results) -> None:
    go.wait()
    try:
        SQLiteLockStore(db=db)
        results.put("ok")
    except Exception as e:  # noqa: BLE001 - the test reports what a starting worker would have died of
        results.put(repr(e))


def test_workers_starting_together_on_a_new_lock_file_all_start(tmp_path):
    """`rasa run --workers N` opens the lock file in N processes at once; none may die of 'database is locked'."""
    fork = multiprocessing.get_context("fork")
    failures = []
    for trial in range(40):  # before the retry, about one start in five of 8 workers had a casualty
        go, results = fork.Event(), fork.Queue()
        workers = [fork.Process(target=_open_store, args=(str(tmp_path / f"locks-{trial}.db"), go, results))
                   for _ in range(8)]
        for w in workers:
            w.start()
        go.set()
        outcomes = [results.get(timeout=60) for _ in workers]
        for w in workers:
            w.join(60)
        failures += [o for o in outcomes if o != "ok"]
    assert failures == []


def test_two_processes_are_served_one_at_a_time_on_one_conversation(tmp_path):
    db, log = str(tmp_path / "locks.db"), tmp_path / "log"
    go = multiprocessing.get_context("spawn").Event()
    workers = [_spawn(db, "customer-1", str(log), name, 5, go) for name in ("a", "b")]
    lines = served_one_at_a_time(workers, go, log, 10)
    assert {line.split()[1] for line in lines} == {"a", "b"}
    assert SQLiteLockStore(db=db).get_lock("customer-1") is None  # cleaned up when nobody waits


def test_other_conversations_are_not_held_up(tmp_path):
    store = SQLiteLockStore(db=str(tmp_path / "locks.db"))
    other = SQLiteLockStore(db=str(tmp_path / "locks.db"))  # like a second worker

    async def main() -> str:
        async with store.lock("customer-1"):
            async with other.lock("customer-2"):
                return "both held"

    assert asyncio.run(asyncio.wait_for(main(), 30)) == "both held"


def test_a_lock_held_by_another_hosts_process_expires_with_its_lifetime(tmp_path):
    """A container sharing the file: its processes are not ours to look up, so their tickets live out their lifetime."""
    import json as json_
    import socket
    import sqlite3

    db = str(tmp_path / "locks.db")
    store = SQLiteLockStore(db=db)
    ticket = store.issue_ticket("customer-1", lock_lifetime=2.0)
    with sqlite3.connect(db) as raw:  # as if another host's process (dead or alive, we cannot tell) had taken it
        raw.execute("UPDATE locks SET owners = ?", (json_.dumps({str(ticket): f"other-{socket.gethostname()}:1:1"}),))
    assert store.get_lock("customer-1").is_someone_waiting()

    async def next_customer_message() -> float:
        started = time.monotonic()
        async with store.lock("customer-1"):
            return time.monotonic() - started

    assert 1.0 < asyncio.run(asyncio.wait_for(next_customer_message(), 30)) < 10
    assert store.get_lock("customer-1") is None


def test_a_lock_held_by_a_killed_process_is_given_back_at_once_not_after_its_lifetime(tmp_path):
    db, log = str(tmp_path / "locks.db"), tmp_path / "log"
    go = multiprocessing.get_context("spawn").Event()
    holder = _spawn(db, "customer-1", str(log), "killed", 1, go, 60.0)  # Rasa's lifetime
    go.set()
    while not log.exists():
        holder.join(0.05)
        assert holder.exitcode is None, "the holder died before it took the lock"
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    store = SQLiteLockStore(db=db)  # e.g. the Rasa server started again after a kill -9

    async def next_customer_message() -> float:
        started = time.monotonic()
        async with store.lock("customer-1"):
            return time.monotonic() - started

    assert asyncio.run(asyncio.wait_for(next_customer_message(), 30)) < 5


def test_owners_are_judged_by_process_start_time_and_only_on_this_host():
    me = process_id(os.getpid())
    host, pid, started = me.split(":")
    assert not is_dead(me)
    assert is_dead(f"{host}:{pid}:{int(started) + 1}")  # the pid was reused by a newer process
    assert is_dead(f"{host}:999999999:1")  # no such process
    assert not is_dead(f"another-host-{host}:1:1")  # another machine's (container's) process: its lifetime decides
    assert not is_dead(f"{host}:{pid}:None") and is_dead(f"{host}:999999999:None")  # without /proc: the pid alone


def test_a_lock_file_of_an_earlier_kefu_is_started_afresh(tmp_path):
    import sqlite3

    db = tmp_path / "locks.db"
    with sqlite3.connect(db) as old:
        old.execute("CREATE TABLE locks (conversation_id TEXT PRIMARY KEY, lock TEXT NOT NULL, expires REAL NOT NULL)")
    store = SQLiteLockStore(db=str(db))
    store.issue_ticket("customer-1")
    assert store.get_lock("customer-1").is_someone_waiting()


def test_rows_left_by_killed_processes_are_removed_at_start(tmp_path):
    db = str(tmp_path / "locks.db")
    store = SQLiteLockStore(db=db)
    store.issue_ticket("gone", lock_lifetime=-1)  # already expired: its process is long gone
    store.issue_ticket("alive", lock_lifetime=60)
    restarted = SQLiteLockStore(db=db)
    assert restarted.get_lock("gone") is None and restarted.get_lock("alive") is not None


def test_rasa_builds_it_from_endpoints_and_allows_several_workers(tmp_path, monkeypatch):
    from rasa.core.lock_store import LockStore
    from rasa.core.utils import number_of_sanic_workers
    from rasa.utils.endpoints import read_endpoint_config

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"lock_store:\n  type: bot.lock_store.SQLiteLockStore\n  db: {tmp_path / 'var' / 'locks.db'}\n")
    config = read_endpoint_config(str(endpoints), "lock_store")
    store = LockStore.create(config)
    assert isinstance(store, SQLiteLockStore) and store.path == tmp_path / "var" / "locks.db"
    monkeypatch.setenv("SANIC_WORKERS", "2")
    assert number_of_sanic_workers(config) == 2


def test_the_project_endpoints_use_it():
    from rasa.utils.endpoints import read_endpoint_config

    config = read_endpoint_config(str(Path(__file__).resolve().parents[2] / "endpoints.yml"), "lock_store")
    assert config is not None and config.type == "bot.lock_store.SQLiteLockStore"


# ---------------------------------------------------------------- live: kefu run --workers 2

MODEL = os.environ.get("KEFU_TEST_MODEL")


def _post(url: str, body=None, timeout: float = 120):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


@pytest.mark.slow
@pytest.mark.skipif(not MODEL, reason="needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")
def test_kefu_run_with_two_workers_keeps_every_turn_of_concurrent_conversations(tmp_path, monkeypatch):
    import psutil

    from tests.kefu_server import KefuRun

    monkeypatch.setenv("KEFU_WORKERS", "2")
    server = KefuRun(Path(MODEL), tmp_path).start()
    try:
        rasa = [p for p in psutil.Process(server.process.pid).children() if "bot.rasa_server" in p.cmdline()]
        assert len(rasa) == 1 and len(rasa[0].children()) == 2, "two Rasa workers serve"
        webhook = f"{server.rasa_url}/webhooks/rest/webhook"
        conversation = ["hi", "where is my order", "104233", "thanks"]
        replies = {}

        def customer(sender: str) -> None:
            replies[sender] = [_post(webhook, {"sender": sender, "message": text}) for text in conversation]

        # Eight customers at once, each writing a whole order-status conversation.
        threads = [threading.Thread(target=customer, args=(f"customer-{i}",)) for i in range(8)]
        # One impatient customer sending six messages at the same moment (two workers take them).
        burst = [threading.Thread(target=lambda n=n: _post(webhook, {"sender": "impatient", "message": f"hi {n}"}))
                 for n in range(6)]
        for t in threads + burst:
            t.start()
        for t in threads + burst:
            t.join(300)
        assert len(replies) == 8
        for sender, answers in replies.items():
            assert all(answers), (sender, answers)
            assert "104233" in " ".join(m.get("text") or "" for m in answers[2]), (sender, answers[2])

        token = (tmp_path / "var" / "secrets" / "api-token").read_text().strip()
        for sender in [*replies, "impatient"]:
            events = _post(f"{server.rasa_url}/conversations/{sender}/tracker?token={token}")["events"]
            users = [e["text"] for e in events if e["event"] == "user"]
            expected = conversation if sender != "impatient" else sorted(f"hi {n}" for n in range(6))
            assert (users if sender != "impatient" else sorted(users)) == expected, (sender, users)  # none lost
            # Turns never interleave: each user message is answered before the next one is read.
            kinds = [e["event"] for e in events if e["event"] in ("user", "bot")]
            for i, kind in enumerate(kinds):
                if kind == "user" and i + 1 < len(kinds):
                    assert kinds[i + 1] == "bot", (sender, kinds)

        # Keep-alive customers reach both workers (bot/reuseport.py): each listens on its own socket.
        port = int(server.rasa_url.rsplit(":", 1)[1])
        workers = rasa[0].children()
        assert len(_listening_sockets(port)) == 2
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in range(16)]
        try:
            for i, connection in enumerate(connections):
                connection.request("POST", "/webhooks/rest/webhook", json.dumps({"sender": f"kept-{i}", "message": "hi"}),
                                   {"Content-Type": "application/json"})
                assert connection.getresponse().read()
            held = [sum(1 for c in w.connections("tcp") if c.status == "ESTABLISHED" and c.laddr.port == port) for w in workers]
            assert sum(held) == 16 and min(held) >= 1, f"keep-alive connections per worker: {held}"
        finally:
            for connection in connections:
                connection.close()
    finally:
        server.stop()


def _listening_sockets(port: int) -> list:
    """Inodes of the TCP sockets listening on `port` (/proc/net/tcp and tcp6; state 0A is LISTEN)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    found.append(fields[9])
    return found
