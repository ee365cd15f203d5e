"""Retrain outcomes as Prometheus metrics, read from the retrain's own reports at scrape time.

`kefu retrain` writes `<state>/reports/<run_id>.json` and `latest.json`
(retrain/report.py); this collector turns them into gauges, so the retrain needs
no Prometheus code and no push gateway: every replica that can read the state
directory (KEFU_RETRAIN_STATE, default var/retrain) exports them.
"""

from __future__ import annotations

import json
import os
from collections import Counter as Tally
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

DECISIONS = {"promoted": "promoted", "refused": "refused", "failed": "failed", "nothing new to learn": "nothing_new"}


def decision_label(decision: Optional[str]) -> str:
    decision = decision or "unknown"
    return DECISIONS.get(decision, "dry_run" if decision.startswith("dry run") else "other")


class RetrainCollector(Collector):
    def __init__(self, state: Optional[Path] = None) -> None:
        self.state = Path(state or os.environ.get("KEFU_RETRAIN_STATE", "var/retrain"))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs = GaugeMetricFamily("kefu_retrain_runs", "Retrain runs whose report is kept, by decision", labels=["decision"])
        last = GaugeMetricFamily("kefu_retrain_last_run_timestamp_seconds", "Start of the latest retrain run", labels=["decision"])
        seconds = GaugeMetricFamily("kefu_retrain_last_run_duration_seconds", "Duration of the latest retrain run")
        reports = self.state / "reports"
        tally: Tally = Tally()
        for path in sorted(reports.glob("*.json")) if reports.is_dir() else []:
            report = _read(path)
            if report is not None and path.name != "latest.json":
                tally[decision_label(report.get("decision"))] += 1
        for decision in sorted(set(DECISIONS.values()) | set(tally)):
            runs.add_metric([decision], tally.get(decision, 0))
        latest = _read(reports / "latest.json")
        if latest is not None:
            try:
                started = datetime.fromisoformat(str(latest.get("started_at"))).timestamp()
            except ValueError:
                started = 0.0
            last.add_metric([decision_label(latest.get("decision"))], started)
            seconds.add_metric([], float(latest.get("seconds") or 0.0))
        yield runs
        yield last
        yield seconds


def _read(path: Path) -> Optional[dict]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
