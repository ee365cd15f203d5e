"""The run report: JSON for machines, a few lines for people, both under `<state>/reports/`; and the status.

Nothing here loads a model or an ML library: `kefu retrain status` starts light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from kefu.core import atomic
from retrain.config import RetrainConfig
from retrain.registry import CHAMPION, Registry, sha256


def summary(report: Dict[str, Any]) -> str:
    lines: List[str] = [f"kefu retrain {report['run_id']}{' (dry run)' if report.get('dry_run') else ''}: "
                        f"{report.get('decision', 'unfinished')} in {report.get('seconds', 0):.0f} s"]
    if report.get("error"):
        lines.append(f"  error: {report['error']}")
    if report.get("recovered_crashed_runs"):
        lines.append(f"  cleaned up after crashed run(s): {', '.join(report['recovered_crashed_runs'])}")
    intake = report.get("intake")
    if intake:
        sources = "; ".join(f"{s}: {v['conversations']} conversations, {v['new_user_messages']} new messages"
                            for s, v in intake["per_source"].items()) or "no new conversations"
        lines.append(f"  intake: {sources}; redacted {intake['redacted'] or 'nothing'}")
    added = report.get("added")
    if added:
        lines.append("  added: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in added.items() if not isinstance(v, dict)))
    training = report.get("training")
    if training:
        took = f" in {training['seconds']:.0f} s" if "seconds" in training else ""
        lines.append(f"  training: {training['mode']} ({training['why']}){took}")
    metrics = report.get("metrics")
    if metrics:
        lines.extend(f"  {line}" for line in metrics["comparison"])
        alone = metrics.get("knowledge_base_only") or {}
        if alone.get("tried"):
            lines.append(f"  the night's knowledge base with the champion's intent classifier: "
                         f"{'passed' if alone['passed'] else 'refused too'}")
            lines.extend(f"    {line}" for line in alone["comparison"])
        elif alone:
            lines.append(f"  the night's knowledge base alone was not tried: {alone['why']}")
    elif report.get("refused_because"):  # refused before training (the reviewed labels)
        lines.extend(f"  {line}" for line in report["refused_because"])
    if report.get("new_champion"):
        server = report.get("server", {})
        part = " (knowledge base only)" if report.get("promoted_part") == "knowledge base only" else ""
        lines.append(f"  new champion {report['new_champion']}{part}; server: "
                     f"{'reloaded' if server.get('notified') else server.get('reason', 'not told')}")
    return "\n".join(lines)


def write_report(config: RetrainConfig, report: Dict[str, Any]) -> Path:
    folder = config.state / "reports"
    path = atomic.write_json(folder / f"{report['run_id']}.json", report)
    atomic.write_text(folder / f"{report['run_id']}.txt", summary(report) + "\n")
    atomic.write_json(folder / "latest.json", report)
    return path


def status(config: RetrainConfig) -> Dict[str, Any]:
    """The champion, the kept versions with their metrics, the last run (`kefu retrain status`)."""
    registry = Registry(config)
    state = registry.state()
    latest = config.state / "reports" / "latest.json"
    served = registry.models_dir / CHAMPION
    return {
        "champion": state.get("champion"),
        "history": state.get("history", []),
        "versions": {v: registry.metrics(v).get("evaluation", {}).get("metrics") for v in registry.versions()},
        "last_run": json.loads(latest.read_text()) if latest.exists() else None,
        "champion_sha256": sha256(served) if served.exists() else None,
    }
