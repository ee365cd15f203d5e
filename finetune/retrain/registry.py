"""The models the bot has served: the champion in `models/`, the last N with their metrics, rollback.

Layout: `models/champion.tar.gz` is what `kefu run` serves (the newest archive
in `models/`); `<state>/registry/<version>/model.tar.gz` + `metrics.json` keep
the last `keep_models` versions; `<state>/registry/state.json` names the
champion and the promotion history. Every write is a temp file + rename, so a
crash leaves either the old or the new champion, never half of one. A running
Rasa server is told with `PUT /model` (Rasa's HTTP API, `--enable-api`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from finetune.retrain.config import RetrainConfig, RetrainError

logger = logging.getLogger(__name__)
CHAMPION = "champion.tar.gz"


def _atomic_copy(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.copyfile(source, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)


def _atomic_json(path: Path, values: Dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(values, indent=2, ensure_ascii=False))
    os.replace(tmp, path)


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
        return sorted(p.name for p in self.root.iterdir() if (p / "metrics.json").exists()) if self.root.exists() else []

    def metrics(self, version: str) -> Dict[str, Any]:
        return json.loads((self.root / version / "metrics.json").read_text())

    def save_metrics(self, version: str, values: Dict[str, Any]) -> None:
        _atomic_json(self.root / version / "metrics.json", values)

    def champion(self) -> Dict[str, Any]:
        """The serving model: {version, archive, metrics}. Registers an archive trained by hand on first use."""
        state = self.state()
        served = self.models_dir / CHAMPION
        version = state.get("champion")
        if version and (self.root / version / "model.tar.gz").exists():
            return {"version": version, "archive": self.root / version / "model.tar.gz", "metrics": self.metrics(version)}
        from kefu.run import newest_model

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
        version = self._new_version("v")
        self._store(version, candidate, dict(metrics, promoted_at=_now()))
        _atomic_copy(self.root / version / "model.tar.gz", self.models_dir / CHAMPION)
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
        """Leftovers of a crashed copy: temp files next to the champion and in the registry."""
        count = 0
        for folder in [self.models_dir, self.root, *([p for p in self.root.iterdir() if p.is_dir()] if self.root.exists() else [])]:
            if folder.exists():
                for tmp in folder.glob(".*.tmp-*"):
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
        token = os.environ.get(server.token_env) if server.token_env else None
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
        tmp = self.root / f".{version}.tmp-{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, tmp / "model.tar.gz")
        (tmp / "metrics.json").write_text(json.dumps(dict(metrics, version=version, sha256=sha256(tmp / "model.tar.gz")), indent=2, ensure_ascii=False))
        os.replace(tmp, self.root / version)

    def _set_state(self, champion: str, history: List[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_json(self.state_file, {"champion": champion, "history": history, "updated_at": _now()})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
