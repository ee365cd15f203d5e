"""The desk's cookie-encryption key: from KEFU_DESK_SECRET, else a generated file only its owner can read.

A generated key survives restarts (agents stay signed in) and never leaves the
machine; deleting the file signs everyone out.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.fernet import Fernet

from kefu.core import atomic
from kefu.core.errors import KefuError

ENV = "KEFU_DESK_SECRET"


def session_key(path: Path) -> bytes:
    """32 raw bytes for aiohttp-session's EncryptedCookieStorage."""
    value = os.environ.get(ENV)
    if value:
        return _decode(value.strip(), ENV)
    if path.exists():
        return _decode(path.read_text(encoding="ascii").strip(), str(path))
    key = Fernet.generate_key().decode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    atomic.write_text(path, key + "\n")
    os.chmod(path, 0o600)
    return _decode(key, str(path))


def _decode(value: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise KefuError(f"{where}: expected a url-safe base64 key of 32 bytes "
                        "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')")
    return raw
