"""`kefu run`: the whole bot on one machine, for the README's quick start.

Trains a model if none exists, starts the action server (loopback only:
bot/action_server.py) and the Rasa server (REST + socket.io, loopback by
default; its HTTP API always requires the token from KEFU_API_TOKEN or
var/secrets/api-token, generated on first run), serves the chat page with
aiohttp, and stops everything cleanly on Ctrl-C or when the Rasa server or the desk dies.
An action server that dies is started again (after 1 s, doubling up to 30 s while
it keeps dying): meanwhile the bot answers custom actions with a polite message
(bot/durability.py) and the conversation continues once it is back. The API token
reaches Rasa through the environment (bot/rasa_server.py), never a command line
that `ps` shows.
The command line is in kefu/cli/run.py; this module imports no Rasa itself
(Rasa runs in the subprocesses), so importing it is cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import yaml

from bot.webchat.server import SOCKET_IO_CLIENT
from bot.webchat.server import start as start_webchat
from kefu.core import atomic
from kefu.core.archives import newest_model, rasa_executable
from kefu.core.secrets import api_token


def run_bot(host: str = "127.0.0.1", port: int = 5005, actions_port: int = 5055, web_port: int = 8080,
            model: Optional[Path] = None, desk_port: int = 8090, workers: Optional[int] = None) -> int:
    """Serves until Ctrl-C (or SIGTERM); the exit status for the shell."""
    return asyncio.run(serve(host, port, actions_port, web_port, model, desk_port, workers))


async def serve(host: str = "127.0.0.1", port: int = 5005, actions_port: int = 5055, web_port: int = 8080,
                model: Optional[Path] = None, desk_port: int = 8090, workers: Optional[int] = None) -> int:
    """From the current directory, which must be the project root; `model` defaults to the newest in models/.

    `workers`: Rasa server processes (Sanic workers, each with its own copy of the model) on one port;
    default KEFU_WORKERS, else `default_workers()`.
    """
    root = Path.cwd()
    if not (root / "config.yml").exists() or not (root / "domain.yml").exists():
        print("error: run `kefu run` from the project root (config.yml and domain.yml not found)", file=sys.stderr)
        return 2
    (root / "var").mkdir(exist_ok=True)
    model = Path(model) if model else newest_model(root / "models")
    if model is None:
        print("No trained model in models/: training one now (a few minutes on a laptop CPU).", flush=True)
        if subprocess.call([rasa_executable(), "train"]) != 0:
            print("error: `rasa train` failed; see above", file=sys.stderr)
            return 1
        model = newest_model(root / "models")
    if model is None or not model.exists():
        print(f"error: model {model} not found", file=sys.stderr)
        return 2

    workers = resolve_workers(workers)
    if workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and not shared_lock_store(root / "endpoints.yml"):
        print("warning: endpoints.yml has no lock store shared between processes (lock_store:); "
              "Rasa serves with one worker", file=sys.stderr)

    tracker_db = sqlite_tracker_db(root / "endpoints.yml", root)
    if tracker_db is not None:
        use_wal(tracker_db)

    token, token_file = api_token(root / "var")
    print(f"Rasa HTTP API token: {'from KEFU_API_TOKEN' if token_file is None else f'in {token_file} (mode 0600)'}; "
          "send it as ?token=... on /conversations, /model and /status.", flush=True)
    rasa_url = f"http://{host}:{port}"
    processes: List[asyncio.subprocess.Process] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    web = None
    try:
        print(f"Starting action server on :{actions_port} and Rasa ({model.name}, {workers} worker"
              f"{'s' if workers > 1 else ''}) on {rasa_url} ...", flush=True)
        processes.append(await _spawn(action_server_command(actions_port)))
        endpoints = endpoints_for_actions_port(root / "endpoints.yml", actions_port, root / "var")
        processes.append(await _spawn(rasa_server_command(model, host, port, endpoints),
                                      env=rasa_environment(workers, token)))
        if desk_port:
            # The agent desk in its own process (it reads the same API token file); 0 switches it off.
            processes.append(await _spawn(desk_command(desk_port, rasa_url), env=dict(os.environ, KEFU_API_TOKEN=token)))
        ready = await _wait_ready([f"http://127.0.0.1:{actions_port}/health", f"{rasa_url}/status?token={token}"], processes, stop, timeout_s=300)
        if not ready:
            return 0 if stop.is_set() else 1
        web = await start_webchat(host, web_port, rasa_url)
        if not socketio_client_installed():
            print("warning: socket.io-client is not installed (run `make setup`); the chat widget falls back to REST",
                  file=sys.stderr)
        desk = f"  Agent desk: http://127.0.0.1:{desk_port}/ (accounts: `kefu desk adduser NAME`)." if desk_port else ""
        print(f"\nkefu is running. Chat at http://{host}:{web_port}/  "
              f"(REST: {rasa_url}/webhooks/rest/webhook).{desk} Press Ctrl-C to stop.", flush=True)
        restarts = _Backoff()
        while True:
            died = await _wait_stop_or_exit(processes, stop)
            if died is None:
                return 0
            if died is not processes[0]:
                print(f"error: a server process exited with code {died.returncode}; stopping", file=sys.stderr)
                return 1
            delay = restarts.next_delay()
            print(f"warning: the action server exited with code {died.returncode}; starting it again in {delay:.0f} s "
                  "(until then customers are asked to send their message again)", file=sys.stderr, flush=True)
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return 0
            except asyncio.TimeoutError:
                pass
            processes[0] = await _spawn(action_server_command(actions_port))
    finally:
        print("Stopping ...", flush=True)
        if web is not None:
            await web.cleanup()
        await _terminate(processes)
        print("Stopped.", flush=True)


def rasa_server_command(model: Path, host: str, port: int, endpoints: Path, credentials: str = "credentials.yml") -> List[str]:
    """`rasa run` with the API (its token comes from KEFU_API_TOKEN in the environment: bot/rasa_server.py)."""
    return [sys.executable, "-m", "bot.rasa_server", "--model", str(model), "--interface", host, "--port", str(port),
            "--enable-api", "--cors", "*", "--endpoints", str(endpoints), "--credentials", credentials]


def rasa_environment(workers: int, token: str, environ=os.environ) -> dict:
    """The Rasa server's environment: its workers, the API token, and one thread per worker for TensorFlow's
    policies (TED) when there are several workers (set values are kept); torch and faiss already run on
    KEFU_INFERENCE_THREADS (default 1)."""
    env = dict(environ, KEFU_API_TOKEN=token, SANIC_WORKERS=str(workers))
    if workers > 1:
        for name in ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS", "OMP_NUM_THREADS"):
            env.setdefault(name, "1")
    return env


def default_workers() -> int:
    """One Rasa worker unless asked for more (measured with bench/throughput.py, 2 cores).

    Two workers took kefu from 20.0 to 24.0 messages/s for about 0.7 GB more memory
    (each worker holds its own model), and /metrics and the per-sender rate limits then
    count per worker process; `--workers 2` (or KEFU_WORKERS=2) when the rate matters more.
    """
    return 1


def resolve_workers(workers: Optional[int], environ=os.environ) -> int:
    """--workers, else KEFU_WORKERS, else `default_workers()`."""
    if workers is not None:
        return workers
    value = environ.get("KEFU_WORKERS", "").strip()
    return int(value) if value else default_workers()


def shared_lock_store(endpoints: Path) -> bool:
    """Whether endpoints.yml names a lock store other than Rasa's in-memory one (Rasa's condition for workers > 1)."""
    config = yaml.safe_load(endpoints.read_text(encoding="utf-8")) if endpoints.exists() else None
    lock_store = (config or {}).get("lock_store") or {}
    return lock_store.get("type") not in (None, "in_memory")


def sqlite_tracker_db(endpoints: Path, root: Path) -> Optional[Path]:
    """The SQLite file of endpoints.yml's SQL tracker store (Rasa's default `rasa.db`), or None for another store."""
    config = yaml.safe_load(endpoints.read_text(encoding="utf-8")) if endpoints.exists() else None
    store = (config or {}).get("tracker_store") or {}
    if str(store.get("type", "")).lower() != "sql" or str(store.get("dialect", "sqlite")) != "sqlite":
        return None
    return root / str(store.get("db") or "rasa.db")


def use_wal(db: Path) -> None:
    """Write-ahead log for the tracker store (persistent in the file; every later connection uses it).

    Rasa's workers and the desk read while another process writes, instead of waiting for
    it; a commit syncs one file instead of the rollback journal and the database.
    Durability is SQLite's default for WAL with synchronous=FULL (Rasa's connections): a
    message acknowledged is on disk.
    """
    import sqlite3

    db.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(str(db), timeout=30)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


class _Backoff:
    """1 s, 2 s, 4 s ... 30 s between restarts of a process that keeps dying; back to 1 s after a minute of running."""

    def __init__(self, first_s: float = 1.0, cap_s: float = 30.0, healthy_s: float = 60.0):
        self.first_s, self.cap_s, self.healthy_s = first_s, cap_s, healthy_s
        self.delay_s, self.started = first_s, time.monotonic()

    def next_delay(self) -> float:
        if time.monotonic() - self.started > self.healthy_s:
            self.delay_s = self.first_s
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self.cap_s)
        self.started = time.monotonic() + delay
        return delay


def desk_command(port: int, rasa_url: str, host: str = "127.0.0.1") -> List[str]:
    """The agent desk (`kefu desk run`), on loopback by default."""
    return [sys.executable, "-m", "kefu", "desk", "run", "--host", host, "--port", str(port), "--rasa-url", rasa_url]


def action_server_command(port: int, host: str = "127.0.0.1", actions: str = "bot.actions") -> List[str]:
    """rasa-sdk's executor bound to `host` (`rasa run actions` binds every interface)."""
    return [sys.executable, "-m", "bot.action_server", "--actions", actions, "--host", host, "--port", str(port)]


def endpoints_for_actions_port(endpoints: Path, actions_port: int, scratch: Path) -> Path:
    """endpoints.yml, or a copy in `scratch` whose local action endpoint uses `actions_port`.

    A remote action server (any host other than this machine) is left alone.
    """
    config = yaml.safe_load(endpoints.read_text(encoding="utf-8")) if endpoints.exists() else None
    action = (config or {}).get("action_endpoint") or {}
    url = urlsplit(str(action.get("url", "")))
    if url.hostname not in ("localhost", "127.0.0.1", "::1") or url.port == actions_port:
        return endpoints
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    action["url"] = urlunsplit(url._replace(netloc=f"{host}:{actions_port}"))
    return atomic.write_text(scratch / "endpoints.run.yml",
                             "# Written by `kefu run` from endpoints.yml for --actions-port; edit endpoints.yml instead.\n"
                             + yaml.safe_dump(config, sort_keys=False))


def socketio_client_installed() -> bool:
    return SOCKET_IO_CLIENT.exists()


async def _spawn(command: List[str], env: Optional[dict] = None) -> asyncio.subprocess.Process:
    # Own session: Ctrl-C reaches only us, and we stop the children in order.
    return await asyncio.create_subprocess_exec(*command, start_new_session=True, env=env)


async def _wait_ready(urls, processes, stop: asyncio.Event, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    pending = list(urls)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while pending:
            if stop.is_set():
                return False
            if any(p.returncode is not None for p in processes):
                print("error: a server process exited during start-up; see its output above", file=sys.stderr)
                return False
            if time.monotonic() > deadline:
                print(f"error: not ready after {timeout_s:.0f} s: {', '.join(u.split('?')[0] for u in pending)}", file=sys.stderr)
                return False
            try:
                async with session.get(pending[0]) as response:
                    if response.status == 200:
                        pending.pop(0)
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.5)
    return True


async def _wait_stop_or_exit(processes, stop: asyncio.Event) -> Optional[asyncio.subprocess.Process]:
    waits = [asyncio.ensure_future(p.wait()) for p in processes]
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
    for task in [stopper, *waits]:
        if task not in done:
            task.cancel()
    if stopper in done:
        return None
    return next(p for p in processes if p.returncode is not None)


async def _terminate(processes, grace_s: float = 15.0) -> None:
    for p in reversed(processes):
        if p.returncode is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in processes:
        try:
            await asyncio.wait_for(p.wait(), grace_s)
        except asyncio.TimeoutError:
            os.killpg(p.pid, signal.SIGKILL)
            await p.wait()
