"""A model trained with another domain is refused where it enters through the retrain (`kefu retrain promote`): the champion stays."""

from __future__ import annotations

import json
import shutil

import yaml

from retrain.registry import sha256
from tests.model_archives import FOREIGN_ACTION, ActionServer, with_foreign_domain
from tests.retrain.test_disk_full import kefu


def test_promote_refuses_a_model_whose_actions_the_action_server_does_not_serve(tmp_path, model):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    shutil.copy(model, project / "models" / "champion.tar.gz")
    foreign = with_foreign_domain(model, tmp_path / "other-domain.tar.gz")
    actions = ActionServer(tmp_path).wait()
    try:
        (project / "endpoints.yml").write_text(yaml.safe_dump({"action_endpoint": {"url": actions.url}}))
        (project / "retrain.yml").write_text(yaml.safe_dump({"models_dir": "models", "server": {"url": None}}))
        before = sha256(project / "models" / "champion.tar.gz")

        refused = kefu(project, "promote", str(foreign))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        error = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "another domain" in error[0] and FOREIGN_ACTION in error[0] and "keeps serving" in error[0], refused.stderr
        assert sha256(project / "models" / "champion.tar.gz") == before
        state = json.loads((project / "var/retrain/registry/state.json").read_text())
        assert len(state["history"]) == 1

        accepted = kefu(project, "promote", str(model))  # this project's domain: every action is served
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        assert len(json.loads((project / "var/retrain/registry/state.json").read_text())["history"]) == 2
    finally:
        actions.stop()
