"""Base models joined from archive parts on PyPI (kefu/core/split_models.py)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from kefu.core.base_model import resolve_base_model
from kefu.core.errors import ModelLoadError
from kefu.core.split_models import ALL_MPNET_BASE_V2, VERIFIED, SplitModel, installed_parts, materialise

FILES = {"model.safetensors": b"weights " * 5000, "config.json": b'{"model_type": "mpnet"}', "1_Pooling/config.json": b"{}"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MODEL = SplitModel("tiny", ("tiny-part-1", "tiny-part-2", "tiny-part-3"), "tiny", {name: sha(data) for name, data in FILES.items()})


def write_parts(folder: Path, files=FILES, count: int = 3) -> list:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(f"tiny/{name}", data)
        bundle.writestr("tiny/desktop.ini", b"[.ShellClassInfo]")
    data = buffer.getvalue()
    size = -(-len(data) // count)
    parts = []
    for i in range(count):
        part = folder / f"tiny.zip.{i + 1:03d}"
        part.write_bytes(data[i * size:(i + 1) * size])
        parts.append(part)
    return parts


def test_the_parts_are_joined_once_into_a_checked_model_directory(tmp_path):
    parts = write_parts(tmp_path)
    directory = materialise(MODEL, parts, tmp_path / "cache")
    assert {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()} == set(FILES) | {VERIFIED}
    assert (directory / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    # Later loads read the directory: the parts are not needed again.
    for part in parts:
        part.unlink()
    assert materialise(MODEL, parts, tmp_path / "cache") == directory


@pytest.mark.parametrize("damage", ["altered file", "missing part", "truncated part"])
def test_damaged_parts_are_a_clear_error_and_leave_nothing_in_the_cache(tmp_path, damage):
    if damage == "altered file":
        parts = write_parts(tmp_path, {**FILES, "config.json": b'{"model_type": "evil"}'})
        message = "config.json does not match its pinned SHA-256"
    else:
        parts = write_parts(tmp_path)
        message = "do not join into its model" if damage == "truncated part" else "Cannot read"
        if damage == "missing part":
            parts[1].unlink()
        else:
            parts[2].write_bytes(parts[2].read_bytes()[:10])
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError, match=message):
        materialise(MODEL, parts, cache)
    assert not (cache / MODEL.directory_name).exists()
    assert [p.name for p in cache.iterdir()] == [f".{MODEL.directory_name}.lock"]


def test_packages_not_installed_name_what_to_install():
    with pytest.raises(ModelLoadError, match="pip install tiny-part-1 tiny-part-2 tiny-part-3"):
        installed_parts(MODEL)


def _mpnet_installed() -> bool:
    try:
        return all(metadata.distribution(d) for d in ALL_MPNET_BASE_V2.distributions)
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _mpnet_installed(), reason="the all-mpnet-base-v2 part packages are not installed (requirements-models.txt has them)")
def test_all_mpnet_base_v2_resolves_offline_to_the_upstream_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_MODEL_CACHE", str(tmp_path))
    directory = Path(resolve_base_model("sentence-transformers/all-mpnet-base-v2"))
    assert directory.parent == tmp_path and resolve_base_model("all-mpnet-base-v2") == str(directory)
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(directory).model_type == "mpnet"
    assert AutoTokenizer.from_pretrained(directory)("where is my card")["input_ids"][0] == 0
