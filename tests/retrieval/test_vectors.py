"""The faiss layer on synthetic vectors: approximate recall, deletes, kind choice."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import IndexConfig
from retrieval.vectors import VectorIndex, choose_kind, ivf_nlist, ivf_nprobe
from tests.retrieval.conftest import clustered_vectors

N, DIM = 4000, 64


@pytest.fixture(scope="module")
def data():
    vectors = clustered_vectors(N, DIM, seed=1)
    queries = clustered_vectors(200, DIM, seed=2)
    ids = np.arange(1000, 1000 + N, dtype=np.int64)
    return vectors, ids, queries


@pytest.fixture(scope="module")
def exact(data):
    vectors, ids, queries = data
    return VectorIndex.build(vectors, ids, IndexConfig(), kind="flat").search(queries, 10)[1]


def recall_at_10(found, exact):
    return np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_recall_what_exact_search_finds(data, exact, kind):
    vectors, ids, queries = data
    index = VectorIndex.build(vectors, ids, IndexConfig(), kind=kind)
    scores, found = index.search(queries, 10)
    assert recall_at_10(found, exact) >= 0.9
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_flat_search_is_exact(data):
    vectors, ids, queries = data
    scores, found = VectorIndex.build(vectors, ids, IndexConfig(), kind="flat").search(queries[:5], 3)
    brute = queries[:5] @ vectors.T
    assert np.array_equal(found, ids[np.argsort(-brute, axis=1)[:, :3]])
    assert np.allclose(scores, np.sort(brute, axis=1)[:, ::-1][:, :3], atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_delete_removes_exactly_those_ids_and_keeps_the_others_right(data, kind):
    vectors, ids, _ = data
    index = VectorIndex.build(vectors, ids, IndexConfig(ivf_nprobe=64), kind=kind)
    doomed = ids[[0, 10, 500]]
    index.remove(doomed)
    assert len(index) == N - 3
    _, found = index.search(vectors[[0, 10, 500, 1, 11, 501]], 5)
    assert not set(found.ravel()) & set(doomed)
    # Every remaining vector still maps to its own id (IVF inside IndexIDMap2 would not).
    assert list(found[3:, 0]) == list(ids[[1, 11, 501]])
    assert np.allclose(index.reconstruct(ids[[1, 11]]), vectors[[1, 11]])
    assert set(index.ids()) == set(ids) - set(doomed)


def test_hnsw_deletes_are_tombstones_until_compacted(data):
    vectors, ids, _ = data
    config = IndexConfig()
    index = VectorIndex.build(vectors[:500], ids[:500], config, kind="hnsw")
    index.remove(ids[:100])
    assert index.index.ntotal == 500 and len(index) == 400
    compact = index.compacted(config)
    assert compact.index.ntotal == 400 and not compact.tombstones
    assert set(compact.ids()) == set(ids[100:500])
    assert compact.search(vectors[200:201], 1)[1][0, 0] == ids[200]


def test_kind_choice_and_ivf_list_count():
    config = IndexConfig(flat_max=100)
    assert [choose_kind(config, n) for n in (10, 100, 101)] == ["flat", "flat", "ivf"]
    assert choose_kind(IndexConfig(kind="ivf"), 10) == "ivf"
    assert ivf_nlist(IndexConfig(), 1_000_000) == 4000
    assert ivf_nlist(IndexConfig(), 100) == 2  # at least 39 training vectors per list
    assert ivf_nlist(IndexConfig(ivf_nlist=50), 10) == 10
    assert [ivf_nprobe(IndexConfig(), nlist) for nlist in (4000, 100, 10)] == [400, 64, 10]
    assert ivf_nprobe(IndexConfig(ivf_nprobe=7), 100) == 7
