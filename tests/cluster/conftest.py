"""One live cluster per module (3 replicas behind nginx on embedded PostgreSQL and Redis), for the slow tests.

Needs the trained model (KEFU_TEST_MODEL, set by `make test`); nginx, redis-server
and PostgreSQL 15 come from Debian (installed with apt-get when missing). Every
service listens on free loopback ports and is stopped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

from cluster import lifecycle
from cluster.config import ClusterConfig, ClusterError
from tests.live_bot import free_port, free_port_block

ROOT = Path(__file__).resolve().parents[2]
MODEL = os.environ.get("KEFU_TEST_MODEL")
TOKEN = "kefu-cluster-test-token"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts a whole cluster (minutes)")


class LiveCluster:
    def __init__(self, config: ClusterConfig, info: Dict[str, Any], workdir: Path):
        self.config, self.info, self.workdir = config, info, workdir
        self.url = info["url"]
        self.token = TOKEN

    def replica_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.config.replica_ports()[i]}"

    def request(self, method: str, url: str, body: Any = None, headers: Optional[Dict[str, str]] = None,
                raw: Optional[bytes] = None, timeout: float = 60) -> Tuple[int, Dict[str, str], str]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(url, data=data, method=method,
                                         headers=dict({"Content-Type": "application/json"}, **(headers or {})))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode(errors="replace")

    def say(self, sender: str, text: str, base: Optional[str] = None) -> str:
        status, _, body = self.request("POST", (base or self.url) + "/webhooks/rest/webhook", {"sender": sender, "message": text})
        assert status == 200, f"{status}: {body[:300]}"
        return " | ".join(m.get("text", "") for m in json.loads(body))

    def tracker(self, sender: str) -> Dict[str, Any]:
        status, _, body = self.request("GET", f"{self.replica_url(0)}/conversations/{sender}/tracker?token={self.token}")
        assert status == 200, body[:300]
        return json.loads(body)

    def user_texts_in_postgres(self) -> set:
        import psycopg2

        from cluster import stores

        with psycopg2.connect(stores.postgres_url(self.config)) as db, db.cursor() as cur:
            cur.execute("SELECT sender_id, data FROM events WHERE type_name = 'user'")
            return {(sender, json.loads(data).get("text")) for sender, data in cur.fetchall()}


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="package")
def live_cluster(tmp_path_factory):
    if not MODEL:
        pytest.skip("needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")
    workdir = tmp_path_factory.mktemp("cluster")
    (workdir / "models").mkdir()
    shutil.copy(MODEL, workdir / "models" / "champion.tar.gz")
    ports = {name: free_port() for name in ("port", "actions_port", "model_server_port", "embedded_postgres_port", "embedded_redis_port")}
    base = free_port_block(10 + 3)  # replicas at base.., action servers at base + 10..
    config = ClusterConfig(replicas=3, state_dir=str(workdir / "state"), models_dir=str(workdir / "models"),
                           replica_base_port=base, actions_base_port=base + 10, pull_interval_s=2,
                           rate_per_minute=120, rate_burst=10, max_message_chars=2000,
                           retrain_state=str(workdir / "retrain"), **ports)
    (workdir / "retrain" / "reports").mkdir(parents=True)  # one retrain run, for the dashboard's retrain panels
    (workdir / "retrain" / "reports" / "latest.json").write_text(json.dumps(
        {"decision": "promoted", "started_at": "2026-01-01T02:00:00+00:00", "seconds": 300}))
    saved = {k: os.environ.get(k) for k in ("KEFU_API_TOKEN", "KEFU_ORDERS_DB")}
    os.environ.update(KEFU_API_TOKEN=TOKEN, KEFU_ORDERS_DB=str(workdir / "orders.db"))
    try:
        info = lifecycle.up(config, project=ROOT, timeout_s=420)
    except ClusterError as e:
        lifecycle.down(config, quiet=True)
        pytest.fail(f"kefu cluster up failed: {e}")
    try:
        yield LiveCluster(config, info, workdir)
    finally:
        lifecycle.down(config, quiet=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
