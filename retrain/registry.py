"""The models the bot has served: the champion in `models/`, the last N with their metrics, rollback.

Layout: `models/champion.tar.gz` is what `kefu run` serves (the newest archive
in `models/`); `<state>/registry/<version>/model.tar.gz` + `metrics.json` keep
the last `keep_models` versions; `<state>/registry/state.json` names the
champion and the promotion history. Every write goes through kefu.core.atomic
(a temporary sibling renamed over the target), so a crash leaves either the old
or the new champion, never half of one. A running
Rasa server is told with `PUT /model` (Rasa's HTTP API, `--enable-api`).

A promotion that cannot be written (a full disk) removes what it stored and
raises a one-line RetrainError: the champion keeps serving, nothing half-written
is left, and the next run promotes once there is space. A candidate whose domain
needs custom actions the running action server does not serve (a model trained
with another domain) is refused before anything is written (bot/model_domain.py).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from bot import model_domain
from kefu.core import atomic
from kefu.core.archives import newest_model
from kefu.core.secrets import read_api_token
from retrain.config import RetrainConfig, RetrainError

logger = logging.getLogger(__name__)
CHAMPION = "champion.tar.gz"
# What kefu.core.atomic leaves behind when a process dies mid-write: temporary files
# (.<name>.<random>.tmp), temporary directories (.<name>.tmp-<random>) and replaced ones (.<name>.old-<pid>).
LEFTOVERS = (".*.tmp", ".*.tmp-*", ".*.old-*")


def _atomic_copy(source: Path, target: Path) -> None:
    with open(source, "rb") as src, atomic.writing(target, "wb") as handle:
        shutil.copyfileobj(src, handle, 1 << 20)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Registry:
    def __init__(self, config: RetrainConfig):
        self.config = config
        self.models_dir = config.path(config.models_dir)
        self.root = config.state / "registry"
        self.state_file = self.root / "state.json"

    # ------------------------------------------------------------------ state
    def state(self) -> Dict[str, Any]:
        if self.state_file.exists():
            try:
                return json.loads(self.state_file.read_text())
            except ValueError as exc:
                raise RetrainError(f"{self.state_file} is corrupt: {exc}") from exc
        return {"champion": None, "history": []}

    def versions(self) -> List[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / "metrics.json").exists())

    def metrics(self, version: str) -> Dict[str, Any]:
        return json.loads((self.root / version / "metrics.json").read_text())

    def save_metrics(self, version: str, values: Dict[str, Any]) -> None:
        atomic.write_json(self.root / version / "metrics.json", values)

    def champion(self) -> Dict[str, Any]:
        """The serving model: {version, archive, metrics}. Registers an archive trained by hand on first use."""
        state = self.state()
        served = self.models_dir / CHAMPION
        version = state.get("champion")
        if version and (self.root / version / "model.tar.gz").exists():
            return {"version": version, "archive": self.root / version / "model.tar.gz", "metrics": self.metrics(version)}
        archive = newest_model(self.models_dir) if self.models_dir.exists() else None
        if archive is None:
            raise RetrainError(f"no model to improve in {self.models_dir}: train one first (`rasa train`)")
        version = self._new_version("initial")
        self._store(version, archive, {"origin": str(archive), "promoted_at": None})
        if archive != served:
            _atomic_copy(archive, served)
        self._set_state(version, [version])
        return {"version": version, "archive": self.root / version / "model.tar.gz", "metrics": self.metrics(version)}

    # -------------------------------------------------------------- changes
    def promote(self, candidate: Path, metrics: Dict[str, Any]) -> str:
        champion = self.state().get("champion") or "the current model"
        self.check_domain(candidate, champion)
        version = self._new_version("v")
        target = self.root / version
        try:
            self._store(version, candidate, dict(metrics, promoted_at=_now()))
            target = self.models_dir / CHAMPION
            _atomic_copy(self.root / version / "model.tar.gz", target)
        except OSError as exc:
            shutil.rmtree(self.root / version, ignore_errors=True)  # never a stored version that was not promoted
            raise RetrainError(self._write_failure(exc, Path(candidate), target, champion)) from exc
        history = self.state().get("history", []) + [version]
        self._set_state(version, history)
        self.prune()
        return version

    def rollback(self) -> str:
        state = self.state()
        history = [v for v in state.get("history", []) if (self.root / v / "model.tar.gz").exists()]
        if len(history) < 2:
            raise RetrainError("no earlier model to roll back to (the registry keeps the last "
                               f"{self.config.keep_models}; history: {history or 'empty'})")
        previous = history[-2]
        _atomic_copy(self.root / previous / "model.tar.gz", self.models_dir / CHAMPION)
        self._set_state(previous, history[:-1])
        return previous

    def check_domain(self, candidate: Path, champion: str = "the current model") -> model_domain.DomainCheck:
        """Refuses (RetrainError) a candidate that needs custom actions the project's action server does not serve."""
        fit = model_domain.check(Path(candidate), self.action_endpoint_url())
        if fit.missing:
            raise RetrainError(f"refused: {fit.reason()}; {champion} keeps serving")
        if not fit.checked:
            logger.info("model domain: %s", fit.reason())
        return fit

    def action_endpoint_url(self) -> Optional[str]:
        """The action server the served models call (`action_endpoint` of the project's endpoints.yml)."""
        path = self.config.path(self.config.endpoints)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        except (OSError, yaml.YAMLError):
            return None
        url = ((values or {}).get("action_endpoint") or {}).get("url") if isinstance(values, dict) else None
        return str(url) if url else None

    @staticmethod
    def _write_failure(exc: OSError, candidate: Path, where: Path, champion: str) -> str:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            size = candidate.stat().st_size if candidate.exists() else 0
            free = shutil.disk_usage(where.parent).free if where.parent.exists() else 0
            return (f"no space left on device while saving the new model to {where} (it needs {size / 1e6:.0f} MB, "
                    f"{free / 1e6:.0f} MB free); {champion} keeps serving and nothing of the new model was kept: "
                    "free some space and run again")
        return (f"could not save the new model to {where} ({exc.strerror or exc}); {champion} keeps serving "
                "and nothing of the new model was kept")

    def prune(self) -> List[str]:
        state = self.state()
        keep = set(state.get("history", [])[-self.config.keep_models:]) | {state.get("champion")}
        removed = []
        for version in self.versions():
            if version not in keep:
                shutil.rmtree(self.root / version, ignore_errors=True)
                removed.append(version)
        return removed

    def clean_temporaries(self) -> int:
        """Leftovers of a crashed write: temporaries next to the champion and in the registry, half-stored versions."""
        # In models/ only the champion's: other tools (`kefu kb build`) may be writing there right now.
        found = list(self.models_dir.glob(f".{CHAMPION}.*.tmp")) if self.models_dir.exists() else []
        if self.root.exists():
            for folder in [self.root, *(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
                found += [tmp for pattern in LEFTOVERS for tmp in folder.glob(pattern)]
        count = 0
        for tmp in found:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            count += 1
        if self.root.exists():
            for half in [p for p in self.root.iterdir() if p.is_dir() and not (p / "metrics.json").exists()]:
                shutil.rmtree(half, ignore_errors=True)
                count += 1
        return count

    # ---------------------------------------------------------------- server
    def notify_server(self) -> Dict[str, Any]:
        """Asks a running Rasa server to load the champion (`PUT /model`); the old model serves until the new one is ready."""
        server = self.config.server
        if not server.url:
            return {"notified": False, "reason": "no server configured"}
        url = server.url.rstrip("/") + "/model"
        # The API token: the environment variable, else the file `kefu run` keeps in the project's var/.
        token = read_api_token(self.config.path("var"), server.token_env)
        if token:
            url += "?" + urllib.parse.urlencode({"token": token})
        body = json.dumps({"model_file": str((self.models_dir / CHAMPION).resolve())}).encode()
        request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=server.timeout_s) as response:
                return {"notified": True, "status": response.status, "url": server.url}
        except urllib.error.HTTPError as exc:
            return {"notified": False, "url": server.url, "reason": f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"}
        except (urllib.error.URLError, OSError) as exc:
            return {"notified": False, "url": server.url,
                    "reason": f"no server reachable ({getattr(exc, 'reason', exc)}); it loads the champion when it next starts"}

    # --------------------------------------------------------------- helpers
    def _new_version(self, prefix: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        version, n = f"{stamp}-{prefix}", 1
        while (self.root / version).exists():
            n += 1
            version = f"{stamp}-{prefix}{n}"
        return version

    def _store(self, version: str, archive: Path, metrics: Dict[str, Any]) -> None:
        with atomic.directory(self.root / version) as tmp:
            shutil.copyfile(archive, tmp / "model.tar.gz")
            values = dict(metrics, version=version, sha256=sha256(tmp / "model.tar.gz"))
            (tmp / "metrics.json").write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n")

    def _set_state(self, champion: str, history: List[str]) -> None:
        atomic.write_json(self.state_file, {"champion": champion, "history": history, "updated_at": _now()})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
