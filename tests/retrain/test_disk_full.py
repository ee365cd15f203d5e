"""Disk full while the retrain saves a model: the champion keeps serving, the run says why in one line, nothing half-written stays, the next run works.

The models directory is a real tmpfs just big enough for the champion (the
test model, 180 MB); the new champion is written through the same
`Registry.promote` the nightly run uses, from `kefu retrain promote`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain.registry import sha256

KEFU = str(Path(sys.executable).with_name("kefu"))
ROOT = Path(__file__).resolve().parents[2]


def kefu(project: Path, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([KEFU, "retrain", "--config", str(project / "retrain.yml"), *args], cwd=project,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def project(tmp_path, model):
    root = tmp_path / "project"
    models = root / "models"
    models.mkdir(parents=True)
    size_kb = int(model.stat().st_size * 1.4) // 1024  # the champion fits, a second copy does not
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(models)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the models directory here (needs root): {mounted.stderr.strip()}")
    (root / "retrain.yml").write_text(yaml.safe_dump({"models_dir": "models", "server": {"url": None}}))
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(models)], capture_output=True)


def test_a_full_disk_keeps_the_champion_and_the_next_run_promotes(project, model):
    models = project / "models"
    champion = models / "champion.tar.gz"
    champion.write_bytes(model.read_bytes())
    before = sha256(champion)
    status = kefu(project, "status")
    assert status.returncode == 0, status.stderr
    state_file = project / "var/retrain/registry/state.json"

    failed = kefu(project, "promote", str(model))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert "no space left on device" in errors[0] and "keeps serving" in errors[0] and str(champion) in errors[0], errors[0]
    print("\nthe run said:", errors[0])
    # The champion is untouched (what kefu run and the cluster serve), nothing half-written anywhere.
    assert sha256(champion) == before
    assert sorted(p.name for p in models.iterdir()) == ["champion.tar.gz"]
    state = json.loads(state_file.read_text())
    assert state["history"] == [state["champion"]] and state["champion"].endswith("-initial")
    registry = project / "var/retrain/registry"
    assert sorted(p.name for p in registry.iterdir() if p.is_dir()) == [state["champion"]]

    # Space is back (the tmpfs grows): the same promotion works.
    grown = subprocess.run(["mount", "-o", f"remount,size={int(model.stat().st_size * 2.5) // 1024}k", str(models)],
                           capture_output=True, text=True)
    assert grown.returncode == 0, grown.stderr
    again = kefu(project, "promote", str(model))
    assert again.returncode == 0, again.stdout + again.stderr
    after = json.loads(state_file.read_text())
    assert after["champion"] != state["champion"] and after["history"] == [state["champion"], after["champion"]]
    assert sha256(champion) == sha256(model)
    assert sorted(p.name for p in models.iterdir()) == ["champion.tar.gz"]
