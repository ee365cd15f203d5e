"""The endpoints.yml and credentials.yml every replica runs with, and the environment it gets.

Replicas share: the tracker store (PostgreSQL), the lock store (Redis db 1: one
message of a conversation at a time across replicas), the model server
(nginx, ETag), the action servers (nginx upstream), Redis db 2 for the channels'
retry dedupe and per-sender rate limits (KEFU_REDIS_URL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml

from cluster import modelfiles
from cluster.config import ClusterConfig

METRICS_CHANNEL = "bot.channels.metrics.MetricsInput"


def tracker_store(postgres_url: str) -> Dict[str, Any]:
    url = urlsplit(postgres_url)
    store = {"type": "SQL", "dialect": "postgresql", "url": url.hostname or "127.0.0.1", "port": url.port or 5432,
             "db": (url.path or "/rasa").lstrip("/") or "rasa"}
    if url.username:
        store["username"] = unquote(url.username)
    if url.password:
        store["password"] = unquote(url.password)
    return store


def lock_store(redis_url: str) -> Dict[str, Any]:
    url = urlsplit(redis_url)
    # Rasa's Redis lock store with owner leases and atomic tickets (bot/redis_lock_store.py): a replica killed
    # mid-message holds its customer for lease_s, not Rasa's 60 s lock lifetime.
    store = {"type": "bot.redis_lock_store.RedisLockStore", "url": url.hostname or "127.0.0.1", "port": url.port or 6379,
             "db": 1, "key_prefix": "kefu", "socket_timeout": 2, "lease_s": 5}
    if url.password:
        store["password"] = unquote(url.password)
    return store


def channel_redis_url(redis_url: str) -> str:
    """The same Redis, database 2 (dedupe and rate limits)."""
    return urlunsplit(urlsplit(redis_url)._replace(path="/2"))


def endpoints(config: ClusterConfig, postgres_url: str, redis_url: str, project_endpoints: Path,
              replica: Optional[int] = None) -> Dict[str, Any]:
    base = yaml.safe_load(project_endpoints.read_text(encoding="utf-8")) if project_endpoints.exists() else {}
    result: Dict[str, Any] = {k: v for k, v in (base or {}).items() if k in ("nlg",)}  # the project's NLG stays
    result.update({
        "action_endpoint": {"url": f"http://127.0.0.1:{config.actions_port}/webhook"},
        "tracker_store": tracker_store(postgres_url),
        "lock_store": lock_store(redis_url),
        "models": {"url": model_url(config, replica), "wait_time_between_pulls": config.pull_interval_s},
    })
    return result


def model_url(config: ClusterConfig, replica: Optional[int] = None) -> str:
    """The served archive; with rolling rollouts, replica i's own link to it (cluster/controller.py)."""
    name = modelfiles.replica_url_path(config, replica) if config.rolling and replica is not None else config.model_file
    return f"http://127.0.0.1:{config.model_server_port}/models/{name}"


def credentials(project_credentials: Path) -> Dict[str, Any]:
    base = yaml.safe_load(project_credentials.read_text(encoding="utf-8")) if project_credentials.exists() else {}
    result = dict(base or {})
    result.setdefault(METRICS_CHANNEL, None)
    return result


def replica_env(config: ClusterConfig, redis_url: str) -> Dict[str, str]:
    return {
        "KEFU_REDIS_URL": channel_redis_url(redis_url),
        "KEFU_MAX_MESSAGE_CHARS": str(config.max_message_chars),
        "KEFU_RATE_PER_MINUTE": str(config.rate_per_minute),
        "KEFU_RATE_BURST": str(config.rate_burst),
        "KEFU_RETRAIN_STATE": str(Path(config.retrain_state).resolve()),
        "KEFU_INFERENCE_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "SANIC_WORKERS": "1",
    }
