"""A throw-away Prometheus (Debian's package, installed with apt-get when missing) scraping given targets every second."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest

from cluster import packages
from cluster.config import ClusterError
from tests.live_bot import free_port


class Prometheus:
    def __init__(self, workdir: Path, targets: List[str]):
        self.workdir, self.targets = workdir, targets
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "Prometheus":
        try:
            binary = packages.ensure("prometheus")
        except ClusterError as e:
            pytest.skip(f"no prometheus: {e}")
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                                      "scrape_configs": [{"job_name": "kefu", "static_configs": [{"targets": self.targets}]}]}))
        self.process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                                         f"--web.listen-address=127.0.0.1:{self.port}"],
                                        stdout=open(self.workdir / "prometheus.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"prometheus did not start: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.5)

    def query(self, expr: str) -> List[Dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
