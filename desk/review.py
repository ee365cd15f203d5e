"""The retrain's review file (var/retrain/review.csv), read and labelled from the lead's review page.

The format is the retrain's (retrain/review.py, which the desk must not import:
both sit on the orchestration floor): the same columns in the same order, every
value kept as written, only `label` changed, written atomically. Message rows
get an intent name or `-` (dismiss); accepting a proposed new intent writes its
name on the candidate row and adds its member messages as labelled message rows
(the retrain reports labels that are not yet in the domain until a person adds
the intent there).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Dict, List, Set

import yaml

from kefu.core import atomic
from kefu.core.payloads import KB_PICK_INTENT
from kefu.core.text import normalize_text

MESSAGE, CANDIDATE, DISMISS = "message", "candidate_intent", "-"
COLUMNS = ["kind", "text", "label", "predicted", "confidence", "count", "priority", "reason", "examples",
           "first_seen", "last_seen"]
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class ReviewError(ValueError):
    pass


def read_rows(path: Path) -> List[Dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"kind", "text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ReviewError(f"{path} lacks column(s) {sorted(missing)}; expected {', '.join(COLUMNS)}")
        return [{k: (row.get(k) or "") for k in COLUMNS} for row in reader]


def write_rows(path: Path, rows: List[Dict[str, str]]) -> None:
    with atomic.writing(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in COLUMNS})


def domain_intents(domain: Path) -> List[str]:
    data = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}
    names = []
    for item in data.get("intents") or []:
        names.append(next(iter(item)) if isinstance(item, dict) else str(item))
    # A button's intent (the "did you mean" pick) is no label for a customer's words.
    return sorted(n for n in names if n != KB_PICK_INTENT)


def check_label(label: str, intents: Set[str], allow_new: bool) -> str:
    label = (label or "").strip()
    if label == DISMISS or label in intents:
        return label
    if allow_new and INTENT_NAME.match(label):
        return label
    raise ReviewError(f"{label!r} is not an intent of the domain" +
                      (" nor a valid new intent name (lower_case_with_underscores)" if allow_new else ""))


def label_message(path: Path, index: int, label: str, intents: Set[str]) -> Dict[str, str]:
    rows = read_rows(path)
    if not 0 <= index < len(rows) or rows[index]["kind"] != MESSAGE:
        raise KeyError(index)
    rows[index]["label"] = check_label(label, intents, allow_new=True)
    write_rows(path, rows)
    return rows[index]


def accept_candidate(path: Path, index: int, name: str, intents: Set[str]) -> int:
    """Names a proposed intent (or `-` to dismiss it); returns how many member messages were labelled."""
    rows = read_rows(path)
    if not 0 <= index < len(rows) or rows[index]["kind"] != CANDIDATE:
        raise KeyError(index)
    name = check_label(name, intents, allow_new=True)
    row = rows[index]
    row["label"] = name
    added = 0
    if name != DISMISS:
        have: Set[str] = {normalize_text(r["text"]) for r in rows if r["kind"] == MESSAGE}
        for example in [e.strip() for e in row["examples"].split(" | ") if e.strip()] or [row["text"]]:
            key = normalize_text(example)
            if key in have:
                for other in rows:
                    if other["kind"] == MESSAGE and normalize_text(other["text"]) == key and not other["label"]:
                        other["label"] = name
                        added += 1
                continue
            have.add(key)
            rows.append({**{k: "" for k in COLUMNS}, "kind": MESSAGE, "text": example, "label": name,
                         "predicted": row["predicted"], "count": "1", "confidence": "0", "priority": "0",
                         "reason": "member of an accepted new intent", "first_seen": row["first_seen"],
                         "last_seen": row["last_seen"]})
            added += 1
    write_rows(path, rows)
    return added


def import_csv(path: Path, data: bytes) -> int:
    """Replaces the review file with an uploaded one (checked first); returns its row count."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReviewError("the file is not UTF-8 text") from None
    reader = csv.DictReader(text.splitlines())
    missing = {"kind", "text", "label"} - set(reader.fieldnames or [])
    if missing:
        raise ReviewError(f"the file lacks column(s) {sorted(missing)}")
    rows = [{k: (row.get(k) or "") for k in COLUMNS} for row in reader]
    bad = [i + 2 for i, r in enumerate(rows) if r["kind"] not in (MESSAGE, CANDIDATE)]
    if bad:
        raise ReviewError(f"unknown `kind` on line(s) {bad[:5]}")
    write_rows(path, rows)
    return len(rows)
