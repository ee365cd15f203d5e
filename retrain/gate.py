"""Champion vs challenger on the same frozen tests: the held-out NLU set and the `rasa test` story suite.

Both models are evaluated by `rasa test` (the full pipeline, fallback
included, and the dialogue policies), so the gate judges what customers get.
A champion's figures are cached in its registry entry, keyed by the test
files' fingerprint, so each night evaluates only the challenger.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from kefu.core.archives import rasa_executable
from retrain.config import GateConfig, RetrainConfig, RetrainError

METRICS = ("intent_accuracy", "intent_macro_f1", "story_accuracy", "action_accuracy")


def tests_fingerprint(config: RetrainConfig) -> str:
    digest = hashlib.sha256()
    for path in (config.gate.heldout_nlu, config.gate.stories):
        if path:
            digest.update(config.path(path).read_bytes())
    return digest.hexdigest()[:16]


def evaluate_archive(config: RetrainConfig, archive: Path, out: Path) -> Dict[str, float]:
    """Runs `rasa test` on `archive` and returns the gate's metrics."""
    gate = config.gate
    rasa = rasa_executable()
    command = [rasa, "test", "--model", str(archive), "--out", str(out), "--endpoints", str(config.path(config.endpoints))]
    heldout = config.path(gate.heldout_nlu)
    if not heldout.exists():
        raise RetrainError(f"gate.heldout_nlu not found: {heldout}")
    command += ["--nlu", str(heldout)]
    if gate.stories:
        stories = config.path(gate.stories)
        if not stories.exists():
            raise RetrainError(f"gate.stories not found: {stories}")
        if not stories.name.startswith("test_"):
            raise RetrainError(f"gate.stories: Rasa evaluates only files named test_*.yml, got {stories.name}")
        command += ["--stories", str(stories)]
    else:
        command = [command[0], "test", "nlu", *command[2:]]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out / "rasa_test.log", "wb") as log:
        try:
            code = subprocess.call(command, cwd=config.project, stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=gate.timeout_minutes * 60)
        except subprocess.TimeoutExpired as exc:
            raise RetrainError(f"`rasa test` of {archive.name} took longer than {gate.timeout_minutes} min") from exc
    if code != 0:
        tail = (out / "rasa_test.log").read_text(errors="replace")[-1500:]
        raise RetrainError(f"`rasa test` of {archive} failed (exit {code}); see {out / 'rasa_test.log'}:\n{tail}")
    return read_results(out, with_stories=bool(gate.stories)) | {"seconds": round(time.perf_counter() - started, 1)}


def read_results(out: Path, with_stories: bool = True) -> Dict[str, float]:
    try:
        intent = json.loads((out / "intent_report.json").read_text())
        metrics = {"intent_accuracy": _accuracy(intent),
                   "intent_macro_f1": round(float(intent["macro avg"]["f1-score"]), 4)}
        if with_stories:
            story = json.loads((out / "story_report.json").read_text())
            if not story:
                raise RetrainError(f"`rasa test` evaluated no test stories (see {out / 'rasa_test.log'})")
            metrics["action_accuracy"] = _accuracy(story)
            conv = story.get("conversation_accuracy") or {}
            metrics["story_accuracy"] = round(float(conv.get("accuracy", 1.0)), 4)
    except (OSError, KeyError, ValueError) as exc:
        raise RetrainError(f"`rasa test` results in {out} are incomplete: {exc}") from exc
    return metrics


def _accuracy(report: Dict) -> float:
    """sklearn's report has `accuracy` only when the predictions use no label outside the truth;
    otherwise micro-averaged recall over the true labels is the same figure."""
    if "accuracy" in report:
        return round(float(report["accuracy"]), 4)
    return round(float(report["micro avg"]["recall"]), 4)


def decide(champion: Dict[str, float], challenger: Dict[str, float], gate: GateConfig) -> Tuple[bool, List[str]]:
    """Promote only if no metric drops by more than its tolerance; the reasons name every metric."""
    ok, reasons = True, []
    for metric in METRICS:
        if metric not in champion or metric not in challenger:
            continue
        before, after = champion[metric], challenger[metric]
        allowed = float(gate.tolerance.get(metric, 0.0))
        worse = after < before - allowed - 1e-9
        ok = ok and not worse
        reasons.append(f"{metric} {before:.4f} -> {after:.4f} ({after - before:+.4f}, tolerance {allowed})"
                       + (" WORSE" if worse else ""))
    return ok, reasons


def champion_metrics(cached: Optional[Dict], fingerprint: str) -> Optional[Dict[str, float]]:
    if cached and cached.get("tests_fingerprint") == fingerprint:
        return cached.get("metrics")
    return None
