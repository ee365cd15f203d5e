"""The index directory: `index.faiss`, `pairs.jsonl`, `manifest.json` (and `model/` when adapted).

Saving writes a complete new directory next to the target, fsyncs it and
swaps it in with one atomic rename exchange (Linux `renameat2`; elsewhere two
renames), so a crash mid-save leaves the previous index in place. Loading
checks that the three files agree with each other and with the embedding
model before anything is searched.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterator, Optional

import numpy as np

from retrieval.config import IndexConfig
from retrieval.embedder import Embedder
from retrieval.lexical import LEXICAL_FILE, LexicalScorer
from retrieval.errors import ModelLoadError, RetrievalError
from retrieval.qa import QAPair
from retrieval.vectors import VectorIndex

INDEX_FILE = "index.faiss"
PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.json"
MODEL_DIR = "model"
FORMAT_VERSION = 1


def save_index(index, directory: Path) -> Path:
    """Writes `index` (a QAIndex) to `directory` atomically; HNSW tombstones are compacted first."""
    import faiss

    index.vectors = index.vectors.compacted(index.config)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    index.created_at = index.created_at or now
    embedder = index.embedder
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": index.created_at,
        "updated_at": now,
        "embedding_model": {
            "name": embedder.name,
            "path": MODEL_DIR if embedder.bundled else embedder.path,
            "bundled": embedder.bundled,
            "fingerprint": embedder.fingerprint,
            "dimension": embedder.dimension,
        },
        "dimension": index.vectors.dimension,
        "index": {"kind": index.vectors.kind, "params": index.vectors.params},
        "count": index.entries,
        "questions": len(index),
        "next_id": index.next_id,
        "config": index.config.to_dict(),
        "build_stats": index.stats,
    }
    with atomic_directory(directory) as tmp:
        faiss.write_index(index.vectors.index, str(tmp / INDEX_FILE))
        with open(tmp / PAIRS_FILE, "w", encoding="utf-8") as out:
            for vector_id in sorted(index.pairs):
                out.write(json.dumps({"vector_id": vector_id, **index.pairs[vector_id].to_dict()}, ensure_ascii=False) + "\n")
        if embedder.bundled:
            embedder.save(tmp / MODEL_DIR)
        if index.lexical is not None:
            index.lexical.save(tmp)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return directory


def load_index(directory: Path, model: Optional[str] = None, embedder: Optional[Embedder] = None, device: str = "auto"):
    """Reads and cross-checks an index directory; `model`/`embedder` override the manifest's model."""
    import faiss

    from retrieval.index import QAIndex

    manifest = read_manifest(directory)
    for name in (INDEX_FILE, PAIRS_FILE):
        if not (directory / name).is_file():
            raise ModelLoadError(f"Index {directory} is incomplete: {name} is missing")
    try:
        faiss_index = faiss.read_index(str(directory / INDEX_FILE))
    except RuntimeError as exc:
        raise ModelLoadError(f"Index {directory}: {INDEX_FILE} is corrupt ({str(exc).splitlines()[0]})") from exc
    kind = manifest["index"]["kind"]
    if not _is_kind(faiss_index, kind):
        raise ModelLoadError(f"Index {directory}: {INDEX_FILE} holds a {type(faiss_index).__name__}, not the {kind} index the manifest describes")
    vectors = VectorIndex(faiss_index, kind, manifest["index"]["params"])
    pairs = _read_pairs(directory / PAIRS_FILE)

    if not len(pairs) == manifest["count"] == faiss_index.ntotal:
        raise ModelLoadError(
            f"Index {directory} is inconsistent: manifest count {manifest['count']}, {len(pairs)} pairs in {PAIRS_FILE}, "
            f"{faiss_index.ntotal} vectors in {INDEX_FILE}; rebuild it with `kefu kb build`"
        )
    if not np.array_equal(np.sort(vectors.stored_ids()), np.fromiter(sorted(pairs), dtype=np.int64, count=len(pairs))):
        raise ModelLoadError(f"Index {directory} is inconsistent: the ids in {INDEX_FILE} and {PAIRS_FILE} differ")
    if faiss_index.d != manifest["dimension"]:
        raise ModelLoadError(f"Index {directory}: {INDEX_FILE} has dimension {faiss_index.d}, the manifest {manifest['dimension']}")

    embedder = embedder or _load_embedder(directory, manifest, model, device)
    check_model(manifest, embedder, directory)
    config = IndexConfig.from_dict(dict(manifest["config"], model=manifest["embedding_model"]["name"]))
    lexical = None
    if (manifest.get("build_stats") or {}).get("lexical"):
        try:
            lexical = LexicalScorer.load(directory)
        except Exception as exc:  # joblib/pickle raise many types for a damaged file
            raise ModelLoadError(f"Index {directory}: {LEXICAL_FILE} is missing or corrupt ({exc}); rebuild it with `kefu kb build`") from exc
    return QAIndex(embedder, vectors, pairs, config, manifest["next_id"], manifest.get("build_stats"), manifest["created_at"], lexical=lexical)


def _is_kind(faiss_index, kind: str) -> bool:
    import faiss

    if kind == "ivf":
        return isinstance(faiss_index, faiss.IndexIVFFlat)
    if not isinstance(faiss_index, faiss.IndexIDMap2):
        return False
    inner = faiss.downcast_index(faiss_index.index)
    return isinstance(inner, faiss.IndexHNSWFlat if kind == "hnsw" else faiss.IndexFlatIP)


def read_manifest(directory: Path) -> Dict:
    if not directory.is_dir():
        raise ModelLoadError(f"Index directory not found: {directory}")
    path = directory / MANIFEST_FILE
    if not path.exists():
        raise ModelLoadError(f"{directory} is not a kefu Q&A index (no {MANIFEST_FILE}); build one with `kefu kb build`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is corrupt: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise ModelLoadError(f"{path}: unsupported format version {version!r} (expected {FORMAT_VERSION})")
    required = ("embedding_model", "dimension", "index", "count", "next_id", "config", "created_at")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise ModelLoadError(f"{path} is incomplete: no {', '.join(missing)}")
    return manifest


def check_model(manifest: Dict, embedder: Embedder, directory: Path) -> None:
    """The query model must be the one the stored vectors were made with."""
    built = manifest["embedding_model"]
    if embedder.dimension != manifest["dimension"]:
        raise ModelLoadError(
            f"Index {directory} has {manifest['dimension']}-dimensional vectors (built with {built['name']}), "
            f"but {embedder.name} makes {embedder.dimension}-dimensional ones"
        )
    if embedder.fingerprint != built["fingerprint"]:
        raise ModelLoadError(
            f"Index {directory} was built with embedding model {built['name']} (fingerprint {built['fingerprint']}), "
            f"but is being loaded with {embedder.name} (fingerprint {embedder.fingerprint}); "
            "load it with the model it was built with, or rebuild it with `kefu kb build --model ...`"
        )


def _load_embedder(directory: Path, manifest: Dict, model: Optional[str], device: str) -> Embedder:
    built = manifest["embedding_model"]
    if model:
        return Embedder.load(model, device)
    if built.get("bundled"):
        embedder = Embedder.load(str(directory / MODEL_DIR), device, bundled=True)
        embedder.name = built["name"]
        return embedder
    try:
        return Embedder.load(built["name"], device)
    except ModelLoadError as exc:
        raise ModelLoadError(f"Index {directory} needs its embedding model {built['name']}: {exc} Pass --model PATH.") from exc


def _read_pairs(path: Path) -> Dict[int, QAPair]:
    pairs: Dict[int, QAPair] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                values = json.loads(line)
                pairs[int(values["vector_id"])] = QAPair.from_dict(values)
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelLoadError(f"{path}, line {number} is corrupt: {exc}") from exc
    return pairs


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yields an empty temporary directory that replaces `target` only if the block succeeds."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MANIFEST_FILE).exists())):
        raise RetrievalError(f"{target} exists and is not a kefu Q&A index; choose another directory or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if target.exists():
            if not _exchange(tmp, target):
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                tmp = old
        else:
            os.replace(tmp, target)
        _fsync(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync(Path(folder))


def _fsync(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
