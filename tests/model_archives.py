"""A model trained with another domain, made from the test model: its domain names a custom action no action server of kefu serves.

Every member of the archive is kept (it loads like any model); only
`components/domain_provider/domain.yml` gains the action, as a model trained on
another project's domain would have it.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import yaml

from bot.model_domain import DOMAIN_MEMBER
from kefu.run import action_server_command
from tests.live_bot import free_port

FOREIGN_ACTION = "action_track_parcel_with_carrier"


def with_foreign_domain(source: Path, target: Path, action: str = FOREIGN_ACTION) -> Path:
    with tarfile.open(source, "r:gz") as src, tarfile.open(target, "w:gz", compresslevel=1) as dst:
        for member in src:
            data = src.extractfile(member) if member.isfile() else None
            if member.name.lstrip("./").lstrip("/") == DOMAIN_MEMBER:
                domain = yaml.safe_load(data.read().decode("utf-8"))
                domain["actions"] = list(domain.get("actions") or []) + [action]
                body = yaml.safe_dump(domain, allow_unicode=True, sort_keys=False).encode("utf-8")
                member.size = len(body)
                data = io.BytesIO(body)
            dst.addfile(member, data)
    return target


class ActionServer:
    """kefu's real action server (`python -m bot.action_server`) on a free loopback port, for the checks that ask it what it serves."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, KEFU_ORDERS_DB=str(workdir / "orders.db"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(action_server_command(self.port), cwd=root, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self, timeout_s: float = 60) -> "ActionServer":
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the action server exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("the action server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
