"""The run report: JSON for machines, a few lines for people, both under `<state>/reports/`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List

from finetune.retrain.config import RetrainConfig


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
    if report.get("new_champion"):
        server = report.get("server", {})
        lines.append(f"  new champion {report['new_champion']}; server: "
                     f"{'reloaded' if server.get('notified') else server.get('reason', 'not told')}")
    return "\n".join(lines)


def write_report(config: RetrainConfig, report: Dict[str, Any]) -> Path:
    folder = config.state / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report['run_id']}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (folder / f"{report['run_id']}.txt").write_text(summary(report) + "\n")
    tmp = folder / f".latest.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    os.replace(tmp, folder / "latest.json")
    return path
