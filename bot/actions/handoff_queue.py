"""The handoff queue: the `handoffs` table of the orders database, shared by the action server and the desk.

The handoff action (action server) adds a row when a conversation is paused for
a person; the desk (another process) lists, claims and closes rows. SQLite in
WAL mode with short transactions keeps both safe: a claim is one conditional
UPDATE, so of two agents claiming at once exactly one wins. One open row per
conversation (a partial unique index), so a repeated handoff never queues twice.

Agents' presence lives here too (the desk writes a heartbeat while an agent has
the queue open), because the action must tell the customer whether anyone is
there to answer.

The table predates the desk (conversation_id, requested_at, last_message,
order_number); the columns the desk needs are added in place on first use.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Set, Union

from bot.actions.orders_db import OrdersDB

# Row states: waiting for an agent -> claimed by one -> returned to the bot or closed.
WAITING, CLAIMED, RETURNED, CLOSED = "waiting", "claimed", "returned", "closed"
OPEN_STATES = (WAITING, CLAIMED)

# Why the conversation was handed over.
CUSTOMER_ASKED, REPEATED_FALLBACK, KB_LOW, BOT_DECISION = "customer_asked", "repeated_fallback", "kb_low", "bot_decision"

# What the customer was told: an agent will answer live, or (nobody online / closed) leave a message.
MODE_LIVE, MODE_NO_AGENT, MODE_CLOSED = "live", "no_agent", "closed"

NEW_COLUMNS = {
    "reason": "TEXT",
    "channel": "TEXT",
    "language": "TEXT",
    "mode": "TEXT",
    "status": "TEXT NOT NULL DEFAULT 'waiting'",
    "claimed_by": "TEXT",
    "claimed_at": "TEXT",
    "closed_at": "TEXT",
    "closed_by": "TEXT",
    "updated_at": "TEXT",
}

EXTRA_SCHEMA = """
CREATE UNIQUE INDEX IF NOT EXISTS handoffs_one_open
    ON handoffs(conversation_id) WHERE status IN ('waiting', 'claimed');
CREATE INDEX IF NOT EXISTS handoffs_status ON handoffs(status, id);
CREATE TABLE IF NOT EXISTS agent_presence (
    agent_id  TEXT PRIMARY KEY,
    seen_at   REAL NOT NULL
);
"""

_migrated: Set[str] = set()
_migrate_lock = threading.Lock()


class ConflictError(Exception):
    """The row is not in a state that allows the change (claimed by someone else, already closed)."""


class NotFoundError(Exception):
    """No such handoff."""


@dataclass(frozen=True)
class Handoff:
    id: int
    conversation_id: str
    requested_at: str
    last_message: Optional[str]
    order_number: Optional[str]
    reason: Optional[str]
    channel: Optional[str]
    language: Optional[str]
    mode: Optional[str]
    status: str
    claimed_by: Optional[str]
    claimed_at: Optional[str]
    closed_at: Optional[str]
    closed_by: Optional[str]
    updated_at: Optional[str]

    @property
    def waiting_s(self) -> float:
        """Seconds since the handoff was requested."""
        try:
            started = datetime.fromisoformat(self.requested_at)
        except (TypeError, ValueError):
            return 0.0
        return max(0.0, (datetime.now(timezone.utc) - started).total_seconds())

    def to_dict(self) -> Dict[str, object]:
        data = dict(self.__dict__)
        data["waiting_s"] = round(self.waiting_s, 1)
        return data


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class HandoffQueue:
    """The queue over one orders database file (default: the action server's, `KEFU_ORDERS_DB`)."""

    def __init__(self, path: Union[str, Path, None] = None):
        self.orders = OrdersDB(path)
        self.path = self.orders.path

    # ------------------------------------------------------------------ plumbing
    def _open(self) -> "closing[sqlite3.Connection]":
        fresh = not self.path.exists()
        connection = self.orders._open()  # creates and seeds the database on first use
        key = str(self.path.resolve())
        if fresh or key not in _migrated:
            with _migrate_lock:
                self._migrate(connection.thing)  # the sqlite3 connection inside `closing`
                _migrated.add(key)
        return connection

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            have = {row[1] for row in conn.execute("PRAGMA table_info(handoffs)")}
            for name, kind in NEW_COLUMNS.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE handoffs ADD COLUMN {name} {kind}")
            # Rows written before the desk existed were never served: close them.
            if "status" not in have:
                conn.execute("UPDATE handoffs SET status = ?", (CLOSED,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.executescript(EXTRA_SCHEMA)  # idempotent

    @staticmethod
    def _row(row: Optional[sqlite3.Row]) -> Optional[Handoff]:
        if row is None:
            return None
        return Handoff(**{k: row[k] for k in Handoff.__dataclass_fields__})

    # ------------------------------------------------------------ action server
    def enqueue(self, conversation_id: str, reason: str, channel: Optional[str] = None,
                language: Optional[str] = None, mode: str = MODE_LIVE, last_message: Optional[str] = None,
                order_number: Optional[str] = None) -> Handoff:
        """Adds a waiting row, or returns the conversation's open one (a handoff asked for twice)."""
        with self._open() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                existing = conn.execute(
                    "SELECT * FROM handoffs WHERE conversation_id = ? AND status IN (?, ?)",
                    (conversation_id, *OPEN_STATES)).fetchone()
                if existing is None:
                    now = _now()
                    conn.execute(
                        "INSERT INTO handoffs (conversation_id, requested_at, last_message, order_number, reason, "
                        "channel, language, mode, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (conversation_id, now, last_message, order_number, reason, channel, language, mode,
                         WAITING, now))
                    existing = conn.execute("SELECT * FROM handoffs WHERE id = last_insert_rowid()").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return self._row(existing)

    def position(self, handoff_id: int) -> int:
        """1 for the first waiting conversation; 0 when the row is not waiting."""
        with self._open() as conn:
            row = conn.execute("SELECT status FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
            if row is None or row["status"] != WAITING:
                return 0
            return int(conn.execute("SELECT COUNT(*) FROM handoffs WHERE status = ? AND id <= ?",
                                    (WAITING, handoff_id)).fetchone()[0])

    def agents_online(self, within_s: float) -> int:
        with self._open() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM agent_presence WHERE seen_at >= ?",
                                    (time.time() - within_s,)).fetchone()[0])

    # ------------------------------------------------------------------- desk
    def heartbeat(self, agent_id: str) -> None:
        with self._open() as conn:
            conn.execute("INSERT INTO agent_presence (agent_id, seen_at) VALUES (?, ?) "
                         "ON CONFLICT(agent_id) DO UPDATE SET seen_at = excluded.seen_at", (agent_id, time.time()))

    def gone(self, agent_id: str) -> None:
        with self._open() as conn:
            conn.execute("DELETE FROM agent_presence WHERE agent_id = ?", (agent_id,))

    def get(self, handoff_id: int) -> Handoff:
        with self._open() as conn:
            row = self._row(conn.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone())
        if row is None:
            raise NotFoundError(f"no handoff {handoff_id}")
        return row

    def open_rows(self) -> List[Handoff]:
        """Waiting and claimed rows, oldest first."""
        with self._open() as conn:
            return [self._row(r) for r in conn.execute(
                "SELECT * FROM handoffs WHERE status IN (?, ?) ORDER BY id", OPEN_STATES)]

    def recent(self, limit: int = 50) -> List[Handoff]:
        with self._open() as conn:
            return [self._row(r) for r in conn.execute("SELECT * FROM handoffs ORDER BY id DESC LIMIT ?", (limit,))]

    def _change(self, handoff_id: int, sql: str, params: tuple, allowed: str) -> Handoff:
        """Runs one conditional UPDATE; raises NotFoundError / ConflictError when it changed nothing."""
        with self._open() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = conn.execute(sql, params).rowcount
                row = self._row(conn.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if row is None:
            raise NotFoundError(f"no handoff {handoff_id}")
        if changed != 1:
            owner = f" by {row.claimed_by}" if row.status == CLAIMED else ""
            raise ConflictError(f"handoff {handoff_id} is {row.status}{owner}; {allowed}")
        return row

    def claim(self, handoff_id: int, agent_id: str) -> Handoff:
        now = _now()
        return self._change(
            handoff_id,
            "UPDATE handoffs SET status = ?, claimed_by = ?, claimed_at = ?, updated_at = ? WHERE id = ? AND status = ?",
            (CLAIMED, agent_id, now, now, handoff_id, WAITING), "only a waiting conversation can be claimed")

    def transfer(self, handoff_id: int, from_agent: Optional[str], to_agent: str) -> Handoff:
        """To another agent; `from_agent` None: whoever holds it (a lead's override)."""
        now = _now()
        if from_agent is None:
            return self._change(handoff_id,
                                "UPDATE handoffs SET status = ?, claimed_by = ?, claimed_at = ?, updated_at = ? "
                                "WHERE id = ? AND status IN (?, ?)",
                                (CLAIMED, to_agent, now, now, handoff_id, *OPEN_STATES),
                                "closed conversations cannot be transferred")
        return self._change(handoff_id,
                            "UPDATE handoffs SET claimed_by = ?, claimed_at = ?, updated_at = ? "
                            "WHERE id = ? AND status = ? AND claimed_by = ?",
                            (to_agent, now, now, handoff_id, CLAIMED, from_agent),
                            "only the agent holding a conversation can transfer it")

    def finish(self, handoff_id: int, agent_id: str, status: str, any_agent: bool = False) -> Handoff:
        """Hand back (RETURNED) or close (CLOSED) a claimed conversation held by `agent_id` (any agent for a lead)."""
        now = _now()
        owner = "" if any_agent else " AND claimed_by = ?"
        params = (status, now, agent_id, now, handoff_id, CLAIMED) + (() if any_agent else (agent_id,))
        return self._change(handoff_id,
                            "UPDATE handoffs SET status = ?, closed_at = ?, closed_by = ?, updated_at = ? "
                            f"WHERE id = ? AND status = ?{owner}", params,
                            "only the agent holding a conversation can hand it back or close it")

    def note_message(self, handoff_id: int, text: str) -> None:
        """The customer's latest message (the desk sees it in the tracker)."""
        with self._open() as conn:
            conn.execute("UPDATE handoffs SET last_message = ? WHERE id = ?", (text, handoff_id))
