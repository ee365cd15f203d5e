"""Exported ONNX graphs kept on disk between loads, keyed by the module's weights.

Exporting a transformer to ONNX, fusing its layers and quantizing it took 12 of the 28 s
of loading a kefu model (cProfile, README: Throughput on one machine), at every server
start, reload, rollout and retrain probe. The graph depends only on the module's weights
and the export's settings, so it is kept in a cache directory (`runtime.onnx_cache_dir`,
KEFU_ONNX_CACHE) under the hash of both, next to nothing else: a cached graph is still
checked against torch on the sample inputs before it serves (`onnx_runtime.export_checked`),
so a damaged or stale file costs one export, never a wrong answer. Writes are atomic; the
directory keeps the `KEEP` most recently used graphs (a nightly retrain adds one per model).
A cache that cannot be read or written is skipped with one log line: loading never fails
for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from kefu.core import atomic, runtime

logger = logging.getLogger(__name__)

FORMAT = 1
KEEP = 8
SUFFIX = ".onnx"


@dataclass(frozen=True)
class CachedGraph:
    graph: bytes
    fused: bool
    precision: str  # "fp32" or "int8"


def key(module, settings: Any) -> str:
    """Hash of the module's weights (parameters and buffers, by name) and of `settings` (JSON-able)."""
    import onnxruntime
    import torch

    digest = hashlib.blake2b(digest_size=20)
    digest.update(json.dumps([FORMAT, torch.__version__, onnxruntime.__version__, settings], sort_keys=True, default=str).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _folder() -> Optional[Path]:
    return runtime.onnx_cache_dir()


def _name(cache_key: str, fused: bool, precision: str) -> str:
    return f"{cache_key}-{precision}-{'fused' if fused else 'plain'}{SUFFIX}"


def load(cache_key: str) -> Optional[CachedGraph]:
    """The graph stored under `cache_key`, or None (not there, no cache, unreadable)."""
    folder = _folder()
    if folder is None:
        return None
    try:
        found = sorted(folder.glob(f"{cache_key}-*{SUFFIX}"))
        if not found:
            return None
        path = found[0]
        _, precision, layout = path.name[: -len(SUFFIX)].rsplit("-", 2)
        graph = path.read_bytes()
        os.utime(path)  # most recently used: kept longest
        return CachedGraph(graph, layout == "fused", precision)
    except (OSError, ValueError) as e:
        logger.info("ONNX cache %s not read (%s): exporting", folder, e)
        return None


def store(cache_key: str, cached: CachedGraph) -> None:
    """Keeps `cached` under `cache_key` (replacing what was there) and the `KEEP` most recently used graphs."""
    folder = _folder()
    if folder is None:
        return
    try:
        discard(cache_key)
        atomic.write_bytes(folder / _name(cache_key, cached.fused, cached.precision), cached.graph)
        _prune(folder.glob(f"*{SUFFIX}"))
    except OSError as e:
        logger.info("ONNX cache %s not written (%s): the next load exports again", folder, e)


def discard(cache_key: str) -> None:
    """Removes what is stored under `cache_key` (a graph that failed its check)."""
    folder = _folder()
    if folder is None:
        return
    for path in folder.glob(f"{cache_key}-*{SUFFIX}"):
        try:
            path.unlink()
        except OSError:
            pass


def _prune(paths: Iterable[Path]) -> None:
    dated = []
    for path in paths:
        try:
            dated.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(dated, reverse=True)[KEEP:]:
        try:
            path.unlink()
        except OSError:
            pass
