"""The review file: a CSV a support lead edits in any spreadsheet.

Rows of kind `message` are customer messages the bot was unsure about, most
useful first (priority = how often it was said x how unsure the model is x
whether the model and the live bot disagreed). Write an intent name in `label`
to teach it (used by every later run while the row stays), or `-` to dismiss.
Rows of kind `candidate_intent` are clusters of messages that fit no intent:
their `examples` show representative messages; adding an intent needs a
domain change by a person, so these are proposals only.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, Iterable, List

from kefu.core import atomic
from kefu.core.text import normalize_text
from retrain.config import RetrainError

MESSAGE, CANDIDATE = "message", "candidate_intent"
DISMISS = "-"


@dataclass
class ReviewRow:
    kind: str
    text: str
    label: str = ""
    predicted: str = ""
    confidence: float = 0.0
    count: int = 1
    priority: float = 0.0
    reason: str = ""
    examples: str = ""
    first_seen: str = ""
    last_seen: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{normalize_text(self.text)}"

    @property
    def open(self) -> bool:
        return not self.label.strip()


COLUMNS = [f.name for f in fields(ReviewRow)]


def read_review(path: Path) -> List[ReviewRow]:
    if not path.exists():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"kind", "text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise RetrainError(f"review file {path} lacks column(s) {sorted(missing)}; expected {', '.join(COLUMNS)}")
        for number, raw in enumerate(reader, 2):
            try:
                values = {k: (raw.get(k) or "").strip() for k in COLUMNS}
                rows.append(ReviewRow(
                    **{**values, "confidence": float(values["confidence"] or 0), "count": int(float(values["count"] or 1)),
                       "priority": float(values["priority"] or 0)}))
            except ValueError as exc:
                raise RetrainError(f"review file {path}, line {number}: {exc}") from exc
    return rows


def write_review(path: Path, rows: Iterable[ReviewRow]) -> None:
    with atomic.writing(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))


def merge_queue(existing: List[ReviewRow], new_messages: List[ReviewRow], candidates: List[ReviewRow], max_open: int) -> List[ReviewRow]:
    """Adds this run's items: known messages get their counts and scores updated (labels kept);
    open candidate intents are replaced by this run's; open rows beyond `max_open` (lowest priority) drop out."""
    by_key: Dict[str, ReviewRow] = {}
    for row in existing:
        if row.kind == CANDIDATE and row.open:
            continue
        by_key[row.key] = row
    for row in new_messages + candidates:
        old = by_key.get(row.key)
        if old is None:
            by_key[row.key] = row
            continue
        old.count += row.count
        old.predicted, old.confidence, old.reason, old.last_seen = row.predicted, row.confidence, row.reason, row.last_seen
        old.priority = round(row.priority / max(1, row.count) * old.count, 4)
        if row.examples:
            old.examples = row.examples
    rows = list(by_key.values())
    open_rows = sorted((r for r in rows if r.open), key=lambda r: -r.priority)[:max_open]
    done = [r for r in rows if not r.open]
    return open_rows + done


def reviewed_labels(rows: List[ReviewRow], known_intents: Iterable[str]) -> tuple:
    """(text, intent) pairs a person labelled, and the labels that name no known intent."""
    known = set(known_intents)
    labelled, unknown = [], []
    for row in rows:
        if row.kind != MESSAGE or row.open or row.label == DISMISS:
            continue
        (labelled if row.label in known else unknown).append((row.text, row.label))
    return labelled, unknown
