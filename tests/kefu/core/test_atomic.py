"""Atomic writes: a crash or a full disk mid-write leaves the previous version, and no stray files."""

from __future__ import annotations

import json

import pytest

from kefu.core import atomic, manifest
from kefu.core.errors import ModelLoadError


def test_file_write_failure_keeps_the_old_file(tmp_path):
    target = atomic.write_json(tmp_path / "report.json", {"run": 1})
    with pytest.raises(RuntimeError):
        with atomic.writing(target) as handle:
            handle.write('{"run": 2, "half')
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_directory_is_swapped_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    with atomic.directory(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(OSError):
        with atomic.directory(target) as tmp:
            (tmp / "weights").write_text("v2, half written")
            raise OSError(28, "No space left on device")
    assert (target / "weights").read_text() == "v1"
    with atomic.directory(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_foreign_directory_is_never_replaced(tmp_path):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "cat.jpg").write_text("precious")
    with pytest.raises(FileExistsError):
        with atomic.directory(target, may_replace=lambda d: (d / "manifest.json").exists()):
            pass
    assert (target / "cat.jpg").read_text() == "precious"


def test_manifest_version_and_corruption_are_clear_errors(tmp_path):
    manifest.write(tmp_path / "m.json", {"labels": ["a", "b"]}, version=2)
    assert manifest.read(tmp_path / "m.json", 2, "kefu thing", "build one")["labels"] == ["a", "b"]
    with pytest.raises(ModelLoadError, match="unsupported format version 2 .*build one"):
        manifest.read(tmp_path / "m.json", 3, "kefu thing", "build one")
    (tmp_path / "m.json").write_text("{broken")
    with pytest.raises(ModelLoadError, match="corrupt"):
        manifest.read(tmp_path / "m.json", 2, "kefu thing", "build one")
    with pytest.raises(ModelLoadError, match="not a kefu thing"):
        manifest.read(tmp_path / "other.json", 2, "kefu thing", "build one")
