"""Shared fixtures: the packaged embedding model (loaded once) and the small Q&A fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="session")
def embedder():
    from retrieval import Embedder

    return Embedder.load("default", device="cpu")


@pytest.fixture(scope="session")
def small_csv() -> Path:
    return FIXTURES / "qa_small.csv"


@pytest.fixture(scope="session")
def paraphrases_csv() -> Path:
    return FIXTURES / "qa_small_paraphrases.csv"


@pytest.fixture()
def small_pairs(small_csv):
    from retrieval import load_qa

    return load_qa([small_csv])


@pytest.fixture(scope="session")
def paraphrases(paraphrases_csv):
    from retrieval import load_qa

    return load_qa([paraphrases_csv])


@pytest.fixture()
def small_index(small_pairs, embedder):
    """A fresh flat index of the 30 fixture pairs (cheap: 30 embeddings)."""
    from retrieval import IndexConfig, build

    return build(small_pairs, IndexConfig(kind="flat"), embedder=embedder, progress=False)


def clustered_vectors(n: int, dimension: int, seed: int = 0, clusters: int = 50) -> np.ndarray:
    """Unit vectors around random centres: structured like sentence embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dimension))
    vectors = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)
