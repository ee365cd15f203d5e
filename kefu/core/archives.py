"""Rasa model archives on disk (models/*.tar.gz) and the `rasa` command that makes and serves them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional


def newest_model(models_dir: Path) -> Optional[Path]:
    """The most recently written archive in `models_dir`, or None."""
    archives = sorted(Path(models_dir).glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return archives[-1] if archives else None


def rasa_executable() -> str:
    """The `rasa` command of the environment kefu runs in (next to this Python), for subprocesses."""
    return str(Path(sys.executable).with_name("rasa"))
