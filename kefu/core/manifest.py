"""Versioned JSON manifests: what a model or index directory holds, readable without loading weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Type

from kefu.core import atomic
from kefu.core.errors import ModelLoadError

FORMAT_KEY = "format_version"


def write(path: Path, values: Dict[str, Any], version: int) -> Path:
    return atomic.write_json(path, {**values, FORMAT_KEY: version})


def read(path: Path, version: int, what: str, how_to_make: str, required: Iterable[str] = (),
         error: Type[Exception] = ModelLoadError) -> Dict[str, Any]:
    """The manifest at `path`, checked for its format version and required keys.

    `what` names the artifact ("kefu intent model"), `how_to_make` the command
    that makes one; both end up in the error a person reads.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise error(f"{what.capitalize()} directory not found: {path.parent}")
    if not path.exists():
        raise error(f"{path.parent} is not a {what} (no {path.name}); {how_to_make}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is corrupt: {exc}") from exc
    found = manifest.get(FORMAT_KEY) if isinstance(manifest, dict) else None
    if found != version:
        raise error(f"{path}: unsupported format version {found!r} (expected {version}); {how_to_make}")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise error(f"{path} is incomplete: no {', '.join(missing)}")
    return manifest
