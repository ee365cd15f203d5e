"""The index directory: `index.faiss`, `pairs.jsonl`, `manifest.json` (and `model/` when adapted).

Saving writes a complete new directory next to the target, fsyncs it and
swaps it in atomically (kefu.core.atomic), so a crash mid-save leaves the
previous index in place. This module knows the files, not `QAIndex`: it reads
and writes a `StoredIndex`, and the index builds itself from one. Loading
checks that the three files agree with each other and with the embedding
model before anything is searched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from kefu.core import atomic
from kefu.core import manifest as manifests
from retrieval.config import IndexConfig
from retrieval.embedder import Embedder
from retrieval.errors import ModelLoadError, RetrievalError
from retrieval.joint_head import JointHead
from retrieval.lexical import LexicalScorer
from retrieval.multilingual import MultilingualView
from retrieval.qa import QAPair, is_answer_text
from retrieval.vectors import VectorIndex

INDEX_FILE = "index.faiss"
PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.json"
MODEL_DIR = "model"
ARRAY_SUFFIX = ".npy"
# 2: n-gram rows stored with skops + npz (was a joblib pickle); optional extra JSON files (the decision).
FORMAT_VERSION = 2


@dataclass
class StoredIndex:
    """Everything an index directory holds; `QAIndex` is built from it and saved as it."""

    embedder: Embedder
    vectors: VectorIndex
    pairs: Dict[int, QAPair]
    config: IndexConfig
    next_id: int
    stats: Dict[str, Any] = field(default_factory=dict)
    created_at: Optional[str] = None
    lexical: Optional[LexicalScorer] = None
    multilingual: Optional[MultilingualView] = None
    # Other documents kept with the index (file name -> value), e.g. the knowledge base's decision: JSON, or a
    # numpy array where the name ends in `.npy`.
    extras: Dict[str, Any] = field(default_factory=dict)
    joint: Optional[JointHead] = None


def save_index(stored: StoredIndex, directory: Path) -> str:
    """Writes `stored` to `directory` atomically; returns the creation time written."""
    import faiss

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    created_at = stored.created_at or now
    embedder = stored.embedder
    questions = sum(1 for pair in stored.pairs.values() if not is_answer_text(pair))
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": created_at,
        "updated_at": now,
        "embedding_model": {
            "name": embedder.name,
            "path": MODEL_DIR if embedder.bundled else embedder.path,
            "bundled": embedder.bundled,
            "fingerprint": embedder.fingerprint,
            "dimension": embedder.dimension,
        },
        "dimension": stored.vectors.dimension,
        "index": {"kind": stored.vectors.kind, "params": stored.vectors.params},
        "count": len(stored.pairs),
        "questions": questions,
        "next_id": stored.next_id,
        "config": stored.config.to_dict(),
        "build_stats": stored.stats,
        "extras": sorted(stored.extras),
    }
    try:
        with atomic.directory(directory, may_replace=_is_index_or_empty) as tmp:
            faiss.write_index(stored.vectors.index, str(tmp / INDEX_FILE))
            with open(tmp / PAIRS_FILE, "w", encoding="utf-8") as out:
                for vector_id in sorted(stored.pairs):
                    out.write(json.dumps({"vector_id": vector_id, **stored.pairs[vector_id].to_dict()}, ensure_ascii=False) + "\n")
            if embedder.bundled:
                embedder.save(tmp / MODEL_DIR)
            if stored.lexical is not None:
                stored.lexical.save(tmp)
            if stored.multilingual is not None:
                stored.multilingual.save(tmp)
            if stored.joint is not None:
                stored.joint.save(tmp)
            for name, value in stored.extras.items():
                if name.endswith(ARRAY_SUFFIX):
                    np.save(tmp / name, np.asarray(value), allow_pickle=False)
                else:
                    (tmp / name).write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    except FileExistsError:
        raise RetrievalError(f"{directory} exists and is not a kefu Q&A index; choose another directory or remove it") from None
    return created_at


def _is_index_or_empty(directory: Path) -> bool:
    return directory.is_dir() and ((directory / MANIFEST_FILE).exists() or not any(directory.iterdir()))


def load_index(directory: Path, model: Optional[str] = None, embedder: Optional[Embedder] = None, device: str = "auto") -> StoredIndex:
    """Reads and cross-checks an index directory; `model`/`embedder` override the manifest's model."""
    import faiss

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

    if embedder is None:
        embedder = _load_embedder(directory, manifest, model, device)
        check_model(manifest, embedder, directory)
        embedder.prepare_queries()  # the per-message pass in ONNX Runtime when the backend says so
    else:
        check_model(manifest, embedder, directory)
    # Indexes saved before `answer_text_weight` existed were calibrated on the larger of question and answer-text score.
    config = IndexConfig.from_dict({"answer_text_weight": 0.0, **manifest["config"], "model": manifest["embedding_model"]["name"]})
    lexical = LexicalScorer.load(directory) if (manifest.get("build_stats") or {}).get("lexical") else None
    encoder_name = (manifest.get("build_stats") or {}).get("multilingual")
    head = bool((manifest.get("build_stats") or {}).get("multilingual_head"))
    multilingual = MultilingualView.load(directory, encoder_name, config.multilingual_head, head) if encoder_name else None
    if multilingual is not None and len(multilingual.vectors) != faiss_index.ntotal:
        raise ModelLoadError(f"Index {directory} is inconsistent: {len(multilingual.vectors)} multilingual vectors for "
                             f"{faiss_index.ntotal} entries; rebuild it with `kefu kb build`")
    joint_encoder = (manifest.get("build_stats") or {}).get("joint_head")
    joint = JointHead.load(directory, joint_encoder, faiss_index.d) if joint_encoder else None
    if joint is not None and len(joint.vectors) != faiss_index.ntotal:
        raise ModelLoadError(f"Index {directory} is inconsistent: {len(joint.vectors)} joint-head vectors for {faiss_index.ntotal} "
                             "entries; rebuild it with `kefu kb build`")
    extras = {}
    for name in manifest.get("extras") or []:
        try:
            extras[name] = (np.load(directory / name, allow_pickle=False) if name.endswith(ARRAY_SUFFIX)
                            else json.loads((directory / name).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Index {directory}: {name} is missing or corrupt ({exc}); rebuild it with `kefu kb build`") from exc
    return StoredIndex(embedder, vectors, pairs, config, manifest["next_id"], manifest.get("build_stats") or {},
                       manifest["created_at"], lexical, multilingual, extras, joint)


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
    required = ("embedding_model", "dimension", "index", "count", "next_id", "config", "created_at")
    return manifests.read(directory / MANIFEST_FILE, FORMAT_VERSION, "kefu Q&A index", "build one with `kefu kb build`", required)


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
