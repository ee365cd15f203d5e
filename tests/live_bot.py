"""Starts the real action server and Rasa server on a trained model, on free loopback ports.

Used by the live tests; each bot gets its own orders database and SQLite
tracker store in a temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(count: int) -> int:
    """The first of `count` consecutive free loopback ports, for a cluster's replica_base_port.

    Chosen below the kernel's ephemeral range: there, outgoing connections take
    source ports at any moment, so base + 1 of a block next to a free_port()
    could be taken before the replica binds it (seen once in CI as EADDRINUSE).
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chooser = random.Random()
    for _ in range(200):
        base = chooser.randrange(10000, low - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free loopback ports between 10000 and {low}")


class LiveBot:
    TOKEN = "kefu-live-test-token"

    def __init__(self, model: Path, workdir: Path, credentials: Path | None = None, actions: str = "bot.actions",
                 env: Dict[str, str] | None = None):
        """`credentials` (default: the project's credentials.yml), `actions` (the action server's
        package) and `env` (extra environment of both servers) let a test run other channels/actions."""
        self.model = model
        self.workdir = workdir
        self.credentials = credentials or ROOT / "credentials.yml"
        self.actions = actions
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.actions_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tracker_db = workdir / "tracker.db"
        self.orders_db = workdir / "orders.db"
        self.processes: List[subprocess.Popen] = []
        self.token = self.TOKEN  # the HTTP API is never served without one (as in kefu run)

    def start(self, timeout_s: float = 240) -> "LiveBot":
        endpoints = self.workdir / "endpoints.yml"
        endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{self.actions_port}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{self.tracker_db}"\n'
            'nlg:\n  type: bot.nlg.BilingualNLG\n  responses_zh: data/responses_zh.yml\n'
        )
        env = dict(os.environ, KEFU_ORDERS_DB=str(self.orders_db), HF_HUB_OFFLINE="1")
        env.update(self.extra_env)
        rasa = str(Path(sys.executable).with_name("rasa"))
        log = open(self.workdir / "servers.log", "ab")
        self.processes.append(subprocess.Popen(
            [rasa, "run", "actions", "--actions", self.actions, "--port", str(self.actions_port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.processes.append(subprocess.Popen(
            [rasa, "run", "--model", str(self.model), "--interface", "127.0.0.1", "--port", str(self.port),
             "--enable-api", "--auth-token", self.token, "--endpoints", str(endpoints), "--credentials", str(self.credentials)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout_s
        for url in (f"http://127.0.0.1:{self.actions_port}/health", f"{self.url}/status?token={self.token}"):
            while not self._ok(url):
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    self.stop()
                    raise RuntimeError(f"bot did not start; log:\n{(self.workdir / 'servers.log').read_text()[-3000:]}")
                time.sleep(0.5)
        return self

    def _ok(self, url: str) -> bool:
        try:
            return self.request("GET", url)[0] == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def request(self, method: str, path: str, data: Any = None, headers: Dict[str, str] | None = None):
        """`path` is relative to the Rasa server, or a full URL."""
        url = path if path.startswith("http") else self.url + path
        if not path.startswith(("http", "/webhooks/")):  # the HTTP API: with the token
            url += ("&" if "?" in url else "?") + f"token={self.token}"

        async def go():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                async with session.request(method, url, data=data, headers=headers) as response:
                    return response.status, await response.text()

        return asyncio.run(go())

    def say(self, sender: str, message: Any) -> List[Dict[str, Any]]:
        status, body = self.request("POST", "/webhooks/rest/webhook", json.dumps({"sender": sender, "message": message}),
                                    {"Content-Type": "application/json"})
        assert status == 200, f"{status}: {body[:500]}"
        return json.loads(body)

    def texts(self, sender: str, message: Any) -> str:
        return " | ".join(m.get("text", "") for m in self.say(sender, message))
