"""Scikit-learn objects on disk with skops, not pickles: loading never runs code from the file.

`load` accepts only the types the file was written with by kefu (the allow-list
of the caller); anything else is refused as corrupt or tampered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from kefu.core import atomic
from kefu.core.errors import ModelLoadError


def save(path: Path, obj: Any) -> Path:
    import skops.io as sio

    return atomic.write_bytes(path, sio.dumps(obj))


def load(path: Path, allowed_prefixes: Iterable[str] = ("sklearn.", "numpy.", "scipy.", "builtins.")) -> Any:
    import skops.io as sio

    path = Path(path)
    try:
        data = path.read_bytes()
        untrusted = sio.get_untrusted_types(data=data)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path} is missing") from exc
    except Exception as exc:  # a damaged zip raises many types
        raise ModelLoadError(f"{path} is corrupt: {exc}") from exc
    prefixes = tuple(allowed_prefixes)
    refused = [t for t in untrusted if not t.startswith(prefixes)]
    if refused:
        raise ModelLoadError(f"{path} holds unexpected types ({', '.join(sorted(refused))}); refusing to load it")
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise ModelLoadError(f"{path} is corrupt: {exc}") from exc
