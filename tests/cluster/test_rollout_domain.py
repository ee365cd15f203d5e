"""`kefu cluster rollout` refuses a model trained with another domain before any replica sees it; the served model stays.

The action servers' address (nginx's upstream in a cluster) is a real kefu
action server here; the archives are the test model and the same model with a
domain that names an action no kefu action server serves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain.registry import sha256
from tests.model_archives import FOREIGN_ACTION, ActionServer, with_foreign_domain

KEFU = str(Path(sys.executable).with_name("kefu"))
ROOT = Path(__file__).resolve().parents[2]


def test_rollout_refuses_a_model_of_another_domain_and_keeps_the_served_one(tmp_path):
    model = os.environ.get("KEFU_TEST_MODEL")
    if not model:
        pytest.skip("needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")
    model = Path(model)
    served = tmp_path / "models" / "champion.tar.gz"
    served.parent.mkdir()
    shutil.copy(model, served)
    foreign = with_foreign_domain(model, tmp_path / "other-domain.tar.gz")
    actions = ActionServer(tmp_path).wait()
    try:
        config = tmp_path / "cluster.yml"
        config.write_text(yaml.safe_dump({"models_dir": str(served.parent), "state_dir": str(tmp_path / "state"),
                                          "actions_port": actions.port}))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        before = sha256(served)

        refused = subprocess.run([KEFU, "cluster", "rollout", str(foreign), "--config", str(config)], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=120, env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "another domain" in refused.stderr and FOREIGN_ACTION in refused.stderr and "keep serving" in refused.stderr
        assert sha256(served) == before
        assert sorted(p.name for p in served.parent.iterdir()) == ["champion.tar.gz"]

        accepted = subprocess.run([KEFU, "cluster", "rollout", str(model), "--config", str(config)], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120, env=env)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    finally:
        actions.stop()
