"""The faiss structure behind a Q&A index: exact (flat), HNSW or IVF, with stable int64 ids.

Flat and HNSW indexes are wrapped in `IndexIDMap2`. IVF keeps the ids itself
(`IndexIVFFlat.add_with_ids`, hashtable direct map for `reconstruct`):
`IndexIDMap2.remove_ids` assumes the sub-index renumbers its rows the way a
flat index does, which IVF does not, so an IVF inside an IDMap2 returns wrong
ids after a delete.

Deletes: flat and IVF remove vectors for real. HNSW cannot remove (faiss has
no `remove_ids` for it): deleted ids become tombstones that the graph search
skips (an `IDSelector` in the search parameters), and `compacted()` - called
on save - rebuilds the graph from the stored vectors without them, so a saved
index never carries tombstones.

The CPU index is the source of truth. With a GPU (`faiss.get_num_gpus() > 0`)
flat and IVF searches run on a GPU copy made on first search after a change;
HNSW has no GPU implementation and stays on the CPU.
"""

from __future__ import annotations

import logging
import math
from typing import Iterable, Optional, Set, Tuple

import numpy as np

from kefu.core import runtime
from retrieval.config import IndexConfig

logger = logging.getLogger(__name__)

# Add vectors in chunks this size (progress bar steps, bounded temporary memory).
ADD_CHUNK = 10_000
# OpenMP threads are set once when an index is loaded to serve (kefu.core.runtime:
# one thread per serving process): waiting for idle threads at the end of a parallel
# region cost ~20 ms per query on a busy CPU (p50 0.2-1 ms with one thread).
PROGRESS_MIN_VECTORS = 50_000
_gpu_resources = None


def choose_kind(config: IndexConfig, count: int) -> str:
    if config.kind != "auto":
        return config.kind
    return "flat" if count <= config.flat_max else "ivf"


def ivf_nlist(config: IndexConfig, count: int) -> int:
    """About 4 * sqrt(n) lists, but at least 39 training vectors per list (faiss' own minimum)."""
    if config.ivf_nlist:
        return max(1, min(config.ivf_nlist, count))
    return max(1, min(round(4 * math.sqrt(count)), count // 39))


def ivf_nprobe(config: IndexConfig, nlist: int) -> int:
    """A tenth of the lists, at least 64: recall@10 ~0.96-0.97 from 10k to 100k entries."""
    return min(nlist, config.ivf_nprobe or max(64, nlist // 10))


class VectorIndex:
    def __init__(self, index, kind: str, params: dict):
        self.index = index
        self.kind = kind
        self.params = dict(params)
        # HNSW only: deleted ids still in the graph (see the module docstring).
        self.tombstones: Set[int] = set()
        # What searches run on: the GPU copy, or the CPU index itself; None after a change.
        self._searcher: Optional[object] = None

    # ------------------------------------------------------------ construction
    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, config: IndexConfig, kind: Optional[str] = None, progress: bool = True) -> "VectorIndex":
        """Creates an index of `kind` (default: chosen by size) and adds the vectors (trains IVF on them)."""
        import faiss

        kind = kind or choose_kind(config, len(vectors))
        dimension = vectors.shape[1]
        if kind == "flat":
            index, params = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), {}
        elif kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = config.hnsw_ef_construction
            index = faiss.IndexIDMap2(hnsw)
            params = {"m": config.hnsw_m, "ef_construction": config.hnsw_ef_construction, "ef_search": config.hnsw_ef_search}
        elif kind == "ivf":
            nlist = ivf_nlist(config, len(vectors))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            # k-means on 64 sampled vectors per list (faiss default: up to 256). At 300k entries:
            # half the training time, recall@10 0.966 instead of 0.973.
            index.cp.max_points_per_centroid = 64
            index.train(vectors)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            index.nprobe = ivf_nprobe(config, nlist)
            params = {"nlist": nlist, "nprobe": index.nprobe}
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        built = cls(index, kind, params)
        built.add(vectors, ids, progress=progress)
        return built

    def rebuilt(self, kind: str, config: IndexConfig, progress: bool = True) -> "VectorIndex":
        """The same live vectors in a new structure (no re-embedding)."""
        ids = self.ids()
        return VectorIndex.build(self.reconstruct(ids), ids, config, kind=kind, progress=progress)

    def compacted(self, config: IndexConfig) -> "VectorIndex":
        """Without tombstones: HNSW with deletes is rebuilt, anything else is returned as is."""
        return self.rebuilt(self.kind, config) if self.tombstones else self

    # ----------------------------------------------------------------- changes
    def add(self, vectors: np.ndarray, ids: np.ndarray, progress: bool = True) -> None:
        from tqdm.auto import tqdm

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        show = runtime.show_progress(progress and len(vectors) >= PROGRESS_MIN_VECTORS)
        with tqdm(total=len(vectors), desc=f"indexing ({self.kind})", unit="vec", disable=not show, dynamic_ncols=True) as bar:
            for start in range(0, len(vectors), ADD_CHUNK):
                self.index.add_with_ids(vectors[start : start + ADD_CHUNK], ids[start : start + ADD_CHUNK])
                bar.update(min(ADD_CHUNK, len(vectors) - start))
        self._searcher = None

    def remove(self, ids: Iterable[int]) -> None:
        import faiss

        ids = np.asarray(sorted(set(int(i) for i in ids)), dtype=np.int64)
        if not len(ids):
            return
        if self.kind == "hnsw":
            self.tombstones.update(ids.tolist())
        else:
            # IDSelectorArray: the only selector IVF's hashtable direct map accepts.
            self.index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
        self._searcher = None

    def set_search_params(self, ef_search: Optional[int], nprobe: Optional[int]) -> None:
        if self.kind == "hnsw" and ef_search:
            self.params["ef_search"] = int(ef_search)
        if self.kind == "ivf" and nprobe:
            self.params["nprobe"] = int(nprobe)
            self.index.nprobe = int(nprobe)
        self._searcher = None

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def stored_ids(self) -> np.ndarray:
        """Every id in the faiss structure, tombstoned ones included."""
        import faiss

        if self.kind != "ivf":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(self.index.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def ids(self) -> np.ndarray:
        ids = self.stored_ids()
        if self.tombstones:
            ids = ids[~np.isin(ids, np.fromiter(self.tombstones, dtype=np.int64))]
        return ids

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.index.reconstruct_batch(ids)

    def search(self, vectors: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the k nearest live vectors per row; id -1 where there are fewer."""

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            return np.full((len(vectors), 1), -np.inf, dtype=np.float32), np.full((len(vectors), 1), -1, dtype=np.int64)
        return self._search(vectors, k)

    def _search(self, vectors: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        import faiss

        if self.kind == "hnsw":
            # The selectors are kept in locals: faiss holds raw pointers to them during the search.
            dead = faiss.IDSelectorBatch(len(self.tombstones), faiss.swig_ptr(np.fromiter(self.tombstones, dtype=np.int64)))
            alive = faiss.IDSelectorNot(dead) if self.tombstones else None
            params = faiss.SearchParametersHNSW(efSearch=max(self.params["ef_search"], k), sel=alive)
            return self.index.search(vectors, k, params=params)
        if self._searcher is None:
            self._searcher = self._gpu_copy()
        return self._searcher.search(vectors, k)

    def _gpu_copy(self):
        """A GPU copy of this flat or IVF index when faiss sees a GPU, else the CPU index itself."""
        import faiss

        global _gpu_resources
        if faiss.get_num_gpus() == 0 or not hasattr(faiss, "index_cpu_to_gpu"):
            return self.index
        try:
            _gpu_resources = _gpu_resources or faiss.StandardGpuResources()
            return faiss.index_cpu_to_gpu(_gpu_resources, 0, self.index)
        except (RuntimeError, AttributeError) as exc:
            logger.warning("Searching on the CPU: cannot copy the %s index to the GPU (%s)", self.kind, exc)
            return self.index
