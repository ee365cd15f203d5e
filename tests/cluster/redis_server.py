"""A throw-away redis-server on a free loopback port (installed with apt-get when missing), for tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import procs, stores
from cluster.config import ClusterConfig, ClusterError
from tests.live_bot import free_port


class RedisServer:
    def __init__(self, state: Path):
        self.config = ClusterConfig(state_dir=str(state), embedded_redis_port=free_port())

    def start(self) -> "RedisServer":
        try:
            self.url = stores.start_redis(self.config)
        except ClusterError as e:
            pytest.skip(f"no redis-server: {e}")
        return self

    def stop(self) -> None:
        procs.stop(self.config.state, "redis")
