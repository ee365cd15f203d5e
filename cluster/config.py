"""cluster.yml: how many replicas, which ports, which PostgreSQL and Redis (embedded ones when none are named)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import yaml

from kefu.core.errors import KefuError
from kefu.core.options import Options


class ClusterError(KefuError):
    """The cluster cannot start, stop or roll out; the message says why."""


@dataclasses.dataclass
class ClusterConfig(Options):
    error = ClusterError
    what = "cluster"

    replicas: int = 2
    actions: int = 1                      # action servers behind nginx's `actions` upstream
    host: str = "127.0.0.1"               # where nginx listens for customers (0.0.0.0 on a server)
    port: int = 8088                      # nginx: webhooks, socket.io, token-protected API
    replica_base_port: int = 15005        # replica i listens on 127.0.0.1:replica_base_port+i
    actions_port: int = 15050             # nginx upstream of the action servers (loopback)
    actions_base_port: int = 15055        # action server i on 127.0.0.1:actions_base_port+i
    model_server_port: int = 15080        # nginx serving models_dir with ETags (loopback)
    postgres_url: Optional[str] = None    # postgresql://user:password@host:port/db; None: embedded
    redis_url: Optional[str] = None       # redis://[:password@]host:port; None: embedded
    embedded_postgres_port: int = 15432
    embedded_redis_port: int = 16379
    state_dir: str = "var/cluster"        # pids, logs, generated configs, embedded databases
    models_dir: str = "models"            # what the model server serves (retrain promotes into it)
    model_file: str = "champion.tar.gz"   # the file the replicas pull; `kefu cluster rollout` replaces it
    pull_interval_s: int = 5              # endpoints.yml models.wait_time_between_pulls
    rolling: bool = True                  # one replica loads a new model at a time (cluster/controller.py)
    client_max_body_size: str = "64k"     # nginx
    max_message_chars: int = 5000         # KEFU_MAX_MESSAGE_CHARS on every channel
    rate_per_minute: float = 30.0         # per sender, shared in Redis (429 + Retry-After)
    rate_burst: int = 10
    credentials: str = "credentials.yml"  # channels; /metrics is added
    retrain_state: str = "var/retrain"    # retrain reports, exported as metrics

    def validate(self) -> None:
        if not 1 <= self.replicas <= 64 or not 1 <= self.actions <= 16:
            raise ClusterError("replicas must be 1..64 and actions 1..16")
        for name in ("postgres_url", "redis_url"):
            url = getattr(self, name)
            if url and urlsplit(url).scheme not in (("postgresql", "postgres") if name == "postgres_url" else ("redis",)):
                raise ClusterError(f"{name} must be a {name.split('_')[0]}:// URL, got {url!r}")
        if self.pull_interval_s < 1:
            raise ClusterError("pull_interval_s must be at least 1")

    @classmethod
    def load(cls, path: Optional[Path], **overrides) -> "ClusterConfig":
        values = {}
        if path is not None:
            if not Path(path).exists():
                raise ClusterError(f"cluster config {path} not found")
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            if not isinstance(values, dict):
                raise ClusterError(f"{path}: expected a mapping of options")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @property
    def state(self) -> Path:
        return Path(self.state_dir).resolve()

    @property
    def model_path(self) -> Path:
        return Path(self.models_dir).resolve() / self.model_file

    def replica_ports(self):
        return [self.replica_base_port + i for i in range(self.replicas)]

    def action_ports(self):
        return [self.actions_base_port + i for i in range(self.actions)]
