"""Agents' answers proposed as knowledge-base entries, and what a lead decided about each.

Each agent reply long enough to be an answer is stored with the customer
message it answers. A lead accepts (optionally edited) or rejects it; accepted
entries are appended to a Q&A CSV in the knowledge base's own format
(id,question,answer,source,tags,timestamp; retrieval/loaders.py), by default
data/qa/desk_answers.csv, which `rasa train` and `kefu retrain` read through
config.yml's `qa_files: [data/qa]`.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from desk.sqlite_store import SqliteStore
from kefu.core import atomic

PROPOSED, ACCEPTED, REJECTED = "proposed", "accepted", "rejected"
MIN_ANSWER_CHARS = 20
QA_COLUMNS = ["id", "question", "answer", "source", "tags", "timestamp"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_proposals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    question        TEXT NOT NULL,
    answer          TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'proposed',
    decided_by      TEXT,
    decided_at      TEXT,
    entry_id        TEXT
);
"""


class Proposals(SqliteStore):
    schema = SCHEMA

    def propose(self, conversation_id: str, question: Optional[str], answer: str, agent_id: str) -> Optional[int]:
        if not question or len(answer.strip()) < MIN_ANSWER_CHARS:
            return None
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._connect() as conn:
            return int(conn.execute(
                "INSERT INTO kb_proposals (conversation_id, question, answer, agent_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)", (conversation_id, question.strip(), answer.strip(), agent_id, now)).lastrowid)

    def list(self, status: Optional[str] = PROPOSED, limit: int = 200) -> List[Dict[str, Any]]:
        with self._connect() as conn:
            if status:
                rows = conn.execute("SELECT * FROM kb_proposals WHERE status = ? ORDER BY id LIMIT ?", (status, limit))
            else:
                rows = conn.execute("SELECT * FROM kb_proposals ORDER BY id DESC LIMIT ?", (limit,))
            return [dict(r) for r in rows]

    def decide(self, proposal_id: int, lead: str, accept: bool, kb_file: Path, question: Optional[str] = None,
               answer: Optional[str] = None) -> Dict[str, Any]:
        """Accept (appending the entry to `kb_file`) or reject; a decided proposal cannot be decided again."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT * FROM kb_proposals WHERE id = ?", (proposal_id,)).fetchone()
                if row is None:
                    raise KeyError(proposal_id)
                if row["status"] != PROPOSED:
                    raise ValueError(f"proposal {proposal_id} is already {row['status']}")
                entry_id = None
                if accept:
                    q = (question or row["question"]).strip()
                    a = (answer or row["answer"]).strip()
                    if not q or len(a) < MIN_ANSWER_CHARS:
                        raise ValueError(f"an entry needs a question and an answer of {MIN_ANSWER_CHARS}+ characters")
                    entry_id = "desk-" + hashlib.sha256(f"{proposal_id}\n{q}".encode()).hexdigest()[:12]
                    append_entry(kb_file, {"id": entry_id, "question": q, "answer": a, "source": "human agent",
                                           "tags": "handoff;desk", "timestamp": now})
                conn.execute("UPDATE kb_proposals SET status = ?, decided_by = ?, decided_at = ?, entry_id = ? "
                             "WHERE id = ?", (ACCEPTED if accept else REJECTED, lead, now, entry_id, proposal_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return dict(conn.execute("SELECT * FROM kb_proposals WHERE id = ?", (proposal_id,)).fetchone())


def append_entry(path: Path, entry: Dict[str, str]) -> None:
    """Rewrites the CSV atomically with one more row (header written for a new file)."""
    rows: List[Dict[str, str]] = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [{k: (r.get(k) or "") for k in QA_COLUMNS} for r in csv.DictReader(handle)]
    rows.append(entry)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=QA_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buffer.getvalue())
