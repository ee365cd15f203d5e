"""The Rasa HTTP API token: one secret shared by `kefu run`, the cluster and the desk.

`api_token(state)` returns KEFU_API_TOKEN when set, else the token stored in
`<state>/secrets/api-token` (mode 0600), generating it on first use. Nothing
serves Rasa's HTTP API (`--enable-api`) without it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Optional, Tuple

ENV = "KEFU_API_TOKEN"
RELATIVE_PATH = Path("secrets") / "api-token"


def token_path(state: Path) -> Path:
    return Path(state) / RELATIVE_PATH


def read_api_token(state: Path, env: str = ENV, environ=os.environ) -> Optional[str]:
    """The token a client (the retrain, the desk) sends: `env` when set, else the file `kefu run` wrote; None if neither."""
    if env and environ.get(env, "").strip():
        return environ[env].strip()
    path = token_path(state)
    if path.exists():
        return path.read_text(encoding="utf-8").strip() or None
    return None


def api_token(state: Path, environ=os.environ) -> Tuple[str, Optional[Path]]:
    """(token, file it is kept in; None when it came from KEFU_API_TOKEN)."""
    if environ.get(ENV, "").strip():
        return environ[ENV].strip(), None
    path = token_path(state)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            os.chmod(path, 0o600)
            return token, path
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    token = secrets.token_urlsafe(32)
    # O_EXCL + 0600: the secret is never readable by others, not even for an instant.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return token, path
