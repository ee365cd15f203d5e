"""A digest of the training code, for Rasa's training cache.

Rasa reuses a trained component when its configuration and inputs are unchanged
(`rasa train` prints "Restored component ... from cache"); its fingerprint holds
no code. After an upgrade of kefu the old classifier or knowledge base would be
packed into the new model unseen: a benchmark trained after a change to the
knowledge base's calibration got the previous run's component in 25 s. The
components add this digest of the packages they train with to their fingerprint.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import import_module
from pathlib import Path


@lru_cache(maxsize=None)
def code_digest(*packages: str) -> str:
    """sha256 over every .py file of the named packages (relative path and bytes, in path order)."""
    digest = hashlib.sha256()
    for name in packages:
        root = Path(import_module(name).__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{name}/{path.relative_to(root).as_posix()}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
