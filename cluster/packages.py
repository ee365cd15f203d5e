"""The Debian packages the cluster runs (nginx, redis-server, postgresql), installed with apt-get when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional

from cluster.config import ClusterError

PG_BIN = Path(os.environ.get("KEFU_PG_BIN", "/usr/lib/postgresql/15/bin"))
# executable -> Debian package
PACKAGES: Dict[str, str] = {"nginx": "nginx-light", "redis-server": "redis-server", "prometheus": "prometheus",
                            "initdb": "postgresql-15"}


def find(executable: str) -> Optional[str]:
    if executable == "initdb":
        return str(PG_BIN / "initdb") if (PG_BIN / "initdb").exists() else None
    return shutil.which(executable) or next((str(p) for p in (Path("/usr/sbin") / executable, Path("/usr/bin") / executable)
                                             if p.exists()), None)


def ensure(executable: str) -> str:
    """The path of `executable`, installing its package with apt-get (as root) when missing."""
    found = find(executable)
    if found:
        return found
    package = PACKAGES[executable]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterError(f"{executable} not found: install it (`sudo apt-get install {package}`)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"apt-get could not install {package}: {result.stderr[-300:]}")
    found = find(executable)
    if not found:
        raise ClusterError(f"{package} installed but {executable} not found")
    return found
