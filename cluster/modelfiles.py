"""The model server's files: the served archive, each replica's own link to it (rolling rollouts), ETags, and what each replica loaded."""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path
from typing import Optional

from cluster.config import ClusterConfig

ROLLOUT_DIR = ".rollout"
FINGERPRINT = re.compile(r'^kefu_model_fingerprint_info\{fingerprint="(.*)"\} 1\.0$', re.M)
FAILED_LOADS = re.compile(r'^kefu_model_loads_total\{outcome="failed"\} ([0-9.e+]+)$', re.M)


def replica_model(config: ClusterConfig, replica: int) -> Path:
    return config.model_path.parent / ROLLOUT_DIR / f"replica-{replica}.tar.gz"


def replica_url_path(config: ClusterConfig, replica: int) -> str:
    return f"{ROLLOUT_DIR}/replica-{replica}.tar.gz"


def drain_flag(config: ClusterConfig, replica: int) -> Path:
    """While this file exists nginx sends the replica no new webhook or API request (cluster/nginx.py)."""
    return config.model_path.parent / ROLLOUT_DIR / f"drain-{replica}"


def link_atomically(source: Path, target: Path) -> None:
    """`target` becomes another name of `source` (same inode, so nginx gives it the same ETag), atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o755)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.link(source, tmp)
    os.replace(tmp, target)


def etag_of(path: Path) -> str:
    """nginx's ETag for a static file: "<mtime hex>-<size hex>"."""
    st = path.stat()
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def _metrics(config: ClusterConfig, replica: int) -> Optional[str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{config.replica_ports()[replica]}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def replica_fingerprint(config: ClusterConfig, replica: int) -> Optional[str]:
    """The model-server ETag of the archive the replica loaded (its /metrics); None when it does not answer."""
    text = _metrics(config, replica)
    found = FINGERPRINT.search(text or "")
    return found.group(1).replace('\\"', '"') if found else None


def failed_loads(config: ClusterConfig, replica: int) -> float:
    found = FAILED_LOADS.search(_metrics(config, replica) or "")
    return float(found.group(1)) if found else 0.0
