from __future__ import annotations

import copy
import json

import pytest
import torch

from retrieval import Embedder, IndexConfig, ModelLoadError, QAIndex, RetrievalError, build


def top_answers(index, question="where is my parcel right now"):
    return [(a.answer, round(a.score, 5)) for a in index.search(question, k=5)[0].answers]


def test_save_and_load_round_trip(small_index, embedder, tmp_path):
    small_index.save(tmp_path / "kb")
    assert sorted(p.name for p in (tmp_path / "kb").iterdir()) == ["index.faiss", "manifest.json", "pairs.jsonl"]
    manifest = json.loads((tmp_path / "kb" / "manifest.json").read_text())
    assert manifest["questions"] == 30 and manifest["count"] == 30 + 14 and manifest["dimension"] == 384 and manifest["index"]["kind"] == "flat"
    assert manifest["embedding_model"]["name"] == "default" and len(manifest["embedding_model"]["fingerprint"]) == 16
    loaded = QAIndex.load(tmp_path / "kb", embedder=embedder)
    assert top_answers(loaded) == top_answers(small_index)
    assert loaded.pairs[0] == small_index.pairs[0]


def test_hnsw_index_is_compacted_on_save(small_pairs, embedder, tmp_path):
    index = build(small_pairs, IndexConfig(kind="hnsw"), embedder=embedder, progress=False)
    index.delete(["ship-1"])
    assert index.vectors.tombstones
    index.save(tmp_path / "kb")
    loaded = QAIndex.load(tmp_path / "kb", embedder=embedder)
    assert loaded.kind == "hnsw" and len(loaded) == 29 and loaded.vectors.index.ntotal == loaded.entries == 29 + 14
    assert top_answers(loaded) == top_answers(index)


def test_crash_mid_save_keeps_the_previous_index(small_index, embedder, tmp_path, monkeypatch):
    import faiss

    small_index.save(tmp_path / "kb")
    small_index.delete(["track-1"])

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(OSError, match="disk full"):
        small_index.save(tmp_path / "kb")
    assert [p.name for p in tmp_path.iterdir()] == ["kb"]  # no temporary directory left behind
    loaded = QAIndex.load(tmp_path / "kb", embedder=embedder)
    assert len(loaded) == 30 and any(p.id == "track-1" for p in loaded.pairs.values())


def test_saving_over_an_existing_index_replaces_it(small_index, embedder, tmp_path):
    small_index.save(tmp_path / "kb")
    small_index.delete(["track-1"])
    small_index.save(tmp_path / "kb")
    assert len(QAIndex.load(tmp_path / "kb", embedder=embedder)) == 29
    assert [p.name for p in tmp_path.iterdir()] == ["kb"]


def test_refuses_to_overwrite_a_directory_that_is_not_an_index(small_index, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(RetrievalError, match="exists and is not a kefu Q&A index"):
        small_index.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


@pytest.fixture()
def saved(small_index, tmp_path):
    return small_index.save(tmp_path / "kb")


def edit_manifest(directory, **changes):
    path = directory / "manifest.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))


def test_missing_directory_or_files(saved, embedder, tmp_path):
    with pytest.raises(ModelLoadError, match="Index directory not found"):
        QAIndex.load(tmp_path / "nowhere", embedder=embedder)
    (saved / "index.faiss").unlink()
    with pytest.raises(ModelLoadError, match="incomplete: index.faiss is missing"):
        QAIndex.load(saved, embedder=embedder)
    (saved / "manifest.json").unlink()
    with pytest.raises(ModelLoadError, match="not a kefu Q&A index"):
        QAIndex.load(saved, embedder=embedder)


def test_corrupt_faiss_file(saved, embedder):
    (saved / "index.faiss").write_bytes((saved / "index.faiss").read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="index.faiss is corrupt"):
        QAIndex.load(saved, embedder=embedder)


def test_corrupt_manifest_and_pairs(saved, embedder):
    lines = (saved / "pairs.jsonl").read_text().splitlines()
    (saved / "pairs.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ModelLoadError, match="manifest count 44, 43 pairs in pairs.jsonl, 44 vectors"):
        QAIndex.load(saved, embedder=embedder)
    (saved / "pairs.jsonl").write_text("\n".join(lines[:-1] + ["{oops"]) + "\n")
    with pytest.raises(ModelLoadError, match="pairs.jsonl, line 44 is corrupt"):
        QAIndex.load(saved, embedder=embedder)
    (saved / "manifest.json").write_text("{")
    with pytest.raises(ModelLoadError, match="manifest.json is corrupt"):
        QAIndex.load(saved, embedder=embedder)


def test_dimension_and_kind_mismatch(saved, embedder):
    edit_manifest(saved, dimension=768)
    with pytest.raises(ModelLoadError, match="index.faiss has dimension 384, the manifest 768"):
        QAIndex.load(saved, embedder=embedder)
    edit_manifest(saved, dimension=384, index={"kind": "hnsw", "params": {}})
    with pytest.raises(ModelLoadError, match="not the hnsw index the manifest describes"):
        QAIndex.load(saved, embedder=embedder)


def test_loading_with_another_model_is_refused(saved, embedder):
    other = copy.deepcopy(embedder.model)
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    with pytest.raises(ModelLoadError, match=r"built with embedding model default \(fingerprint \w+\), but is being loaded with my-model"):
        QAIndex.load(saved, embedder=Embedder(other, "my-model", None))


def test_loads_its_own_model_by_name(saved):
    loaded = QAIndex.load(saved)
    assert loaded.embedder.name == "default" and len(loaded) == 30


def test_adapted_model_travels_inside_the_index(small_pairs, embedder, tmp_path):
    adapted = copy.deepcopy(embedder.model)
    with torch.no_grad():
        next(adapted.parameters()).mul_(1.01)
    index = build(small_pairs, embedder=Embedder(adapted, "default (adapted)", None, bundled=True), progress=False)
    index.save(tmp_path / "kb")
    assert (tmp_path / "kb" / "model" / "config.json").exists()
    loaded = QAIndex.load(tmp_path / "kb")
    assert loaded.embedder.bundled and loaded.embedder.name == "default (adapted)"
    assert loaded.embedder.fingerprint == index.embedder.fingerprint != embedder.fingerprint
    with pytest.raises(ModelLoadError, match="built with embedding model default \\(adapted\\)"):
        QAIndex.load(tmp_path / "kb", embedder=embedder)
