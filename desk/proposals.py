"""Agents' answers proposed as knowledge-base entries, and what a lead decided about each.

Each agent reply long enough to be an answer is stored with the customer's
questions it answers (desk.transcript.questions_for_answer: the question asked
before the handoff and those sent while waiting). Proposals whose answers are
the same text (compared as the knowledge base compares answers: normalised
case, spacing and punctuation, retrieval.dedupe) are shown to the lead as one
entry with every customer's question as a variant: several customers asking
about the same missing answer, answered alike, make one entry whose variants
match the next customers' paraphrases. A lead accepts (optionally edited: one
question per line) or rejects the entry; accepting writes one row per question,
all under one id, to a Q&A CSV in the knowledge base's own format
(id,question,answer,source,tags,timestamp; retrieval/loaders.py), by default
data/qa/desk_answers.csv, which `rasa train` and `kefu retrain` read through
config.yml's `qa_files: [data/qa]`. Questions the file already has with the same
answer are not written twice (retrieval's duplicate merging).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from desk.sqlite_store import SqliteStore
from kefu.core import atomic
from kefu.core.payloads import ACCEPTED_QA_TAG
from kefu.core.text import normalize_text
from retrieval.dedupe import find_duplicates
from retrieval.qa import QAPair

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
    entry_id        TEXT,
    questions       TEXT
);
"""


def _questions(row) -> List[str]:
    """The proposal's questions (the `questions` JSON list; rows from before it: `question` alone)."""
    stored = row["questions"] if "questions" in row.keys() else None
    return [q for q in json.loads(stored) if q.strip()] if stored else [row["question"]]


def distinct(questions: Sequence[str]) -> List[str]:
    found: Dict[str, str] = {}
    for q in questions:
        if q and q.strip() and normalize_text(q):
            found.setdefault(normalize_text(q), q.strip())
    return list(found.values())


class Proposals(SqliteStore):
    schema = SCHEMA
    added_columns = {"kb_proposals": {"questions": "TEXT"}}

    def propose(self, conversation_id: str, questions: Union[None, str, Sequence[str]], answer: str, agent_id: str) -> Optional[int]:
        """Stores an agent's answer with the customer's questions; None when there is no question or the reply
        is too short to be an answer."""
        questions = distinct([questions] if isinstance(questions, str) else list(questions or []))
        if not questions or len(answer.strip()) < MIN_ANSWER_CHARS:
            return None
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._connect() as conn:
            return int(conn.execute(
                "INSERT INTO kb_proposals (conversation_id, question, questions, answer, agent_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, questions[0], json.dumps(questions, ensure_ascii=False), answer.strip(), agent_id, now)).lastrowid)

    def list(self, status: Optional[str] = PROPOSED, limit: int = 200) -> List[Dict[str, Any]]:
        """Open proposals (status `proposed`) as the lead sees them: one item per answer, its questions from every
        conversation, `id` the first proposal's (accepting or rejecting it decides them all), `members` all ids.
        Other statuses: the rows themselves, newest first."""
        with self._connect() as conn:
            if status != PROPOSED:
                rows = (conn.execute("SELECT * FROM kb_proposals WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit))
                        if status else conn.execute("SELECT * FROM kb_proposals ORDER BY id DESC LIMIT ?", (limit,)))
                return [dict(r, questions=_questions(r)) for r in rows]
            rows = list(conn.execute("SELECT * FROM kb_proposals WHERE status = ? ORDER BY id", (PROPOSED,)))
        groups: Dict[str, Dict[str, Any]] = {}
        for row in rows:
            group = groups.get(normalize_text(row["answer"]))
            if group is None:
                group = groups[normalize_text(row["answer"])] = dict(row, members=[], conversations=[], agents=[], questions=[])
            group["members"].append(row["id"])
            group["conversations"] += [row["conversation_id"]] if row["conversation_id"] not in group["conversations"] else []
            group["agents"] += [row["agent_id"]] if row["agent_id"] not in group["agents"] else []
            group["questions"] = distinct(group["questions"] + _questions(row))
        items = list(groups.values())[:limit]
        for item in items:
            item["question"] = "\n".join(item["questions"])
            item["agent_id"] = ", ".join(item["agents"])
        return items

    def decide(self, proposal_id: int, lead: str, accept: bool, kb_file: Path, question: Optional[str] = None,
               answer: Optional[str] = None) -> Dict[str, Any]:
        """Accept (writing the entry to `kb_file`) or reject a proposal and every open proposal with the same answer;
        `question`: the lead's edit, one question per line. A decided proposal cannot be decided again."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT * FROM kb_proposals WHERE id = ?", (proposal_id,)).fetchone()
                if row is None:
                    raise KeyError(proposal_id)
                if row["status"] != PROPOSED:
                    raise ValueError(f"proposal {proposal_id} is already {row['status']}")
                key = normalize_text(row["answer"])
                members = [r for r in conn.execute("SELECT * FROM kb_proposals WHERE status = ? ORDER BY id", (PROPOSED,))
                           if normalize_text(r["answer"]) == key]
                entry_id = None
                if accept:
                    questions = distinct(question.splitlines() if question is not None else
                                         [q for r in members for q in _questions(r)])
                    a = (answer or row["answer"]).strip()
                    if not questions or len(a) < MIN_ANSWER_CHARS:
                        raise ValueError(f"an entry needs a question and an answer of {MIN_ANSWER_CHARS}+ characters")
                    entry_id = "desk-" + hashlib.sha256(f"{proposal_id}\n{normalize_text(a)}".encode()).hexdigest()[:12]
                    add_entries(kb_file, [{"id": entry_id, "question": q, "answer": a, "source": "human agent",
                                           "tags": f"handoff;{ACCEPTED_QA_TAG}", "timestamp": now} for q in questions])
                conn.executemany("UPDATE kb_proposals SET status = ?, decided_by = ?, decided_at = ?, entry_id = ? WHERE id = ?",
                                 [(ACCEPTED if accept else REJECTED, lead, now, entry_id, r["id"]) for r in members])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            decided = conn.execute("SELECT * FROM kb_proposals WHERE id = ?", (proposal_id,)).fetchone()
            return dict(decided, questions=_questions(decided), members=[r["id"] for r in members])


def read_entries(path: Path) -> List[Dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: (r.get(k) or "") for k in QA_COLUMNS} for r in csv.DictReader(handle)]


def add_entries(path: Path, entries: List[Dict[str, str]]) -> int:
    """Adds rows to the CSV (rewritten atomically, header written for a new file); returns how many were written.
    Duplicates go through the knowledge base's own merging on text (retrieval.dedupe.find_duplicates, no
    embeddings here): a question already in the file with the same answer is not written again, and when an
    accepted answer replaces an older one for the same question, the older row goes (the newest answer wins,
    as it would when the knowledge base loads the file)."""
    rows = read_entries(path)
    pairs = [QAPair(r["id"], r["question"], r["answer"], r["source"], [t for t in r["tags"].split(";") if t], r["timestamp"] or None)
             for r in rows + entries]
    kept = find_duplicates(pairs, np.zeros((len(pairs), 1), dtype=np.float32), locked=[True] * len(rows) + [False] * len(entries),
                           readable=[False] * len(pairs)).keep
    out = [(rows + entries)[i] for i in kept]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=QA_COLUMNS)
    writer.writeheader()
    writer.writerows(out)
    atomic.write_text(path, buffer.getvalue())
    return sum(1 for i in kept if i >= len(rows))
