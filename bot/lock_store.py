"""A Rasa lock store in a SQLite file: one conversation at a time across every Rasa worker on this machine.

Rasa serialises the messages of one conversation with a ticket lock
(rasa/core/lock.py `TicketLock`) kept in a lock store. Its in-memory store is
private to one process, so Rasa refuses SANIC_WORKERS > 1 with it; Redis is the
stock answer for a cluster. On one machine this store keeps the same tickets
(Rasa's own `TicketLock`, serialised as Rasa's Redis store does) in a SQLite
file that every worker process opens, and does each read-modify-write (issue a
ticket, finish serving, clean up) inside one `BEGIN IMMEDIATE` transaction, so
two processes never hand out the same ticket (Rasa's Redis store reads and
writes without a transaction). Tickets expire after Rasa's lock lifetime
(TICKET_LOCK_LIFETIME, default 60 s) exactly as in Rasa: a worker killed while
it holds a conversation blocks it for at most that long. Rows left behind by a
killed worker are deleted once all their tickets have expired.

endpoints.yml:

    lock_store:
      type: bot.lock_store.SQLiteLockStore
      db: var/locks.db        # relative to the working directory (the project root)

The file is a scratch file (locks live for seconds): WAL journal, no fsync.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, AsyncContextManager, Iterator, Optional

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore

logger = logging.getLogger(__name__)

DEFAULT_DB = "var/locks.db"
# Rasa polls a busy conversation's lock every second; a local file is cheap to poll more often.
DEFAULT_WAIT_S = 0.05
_SCHEMA = "CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, lock TEXT NOT NULL, expires REAL NOT NULL)"


class SQLiteLockStore(LockStore):
    """Rasa's `LockStore` over a SQLite file shared by the processes of one machine."""

    def __init__(self, endpoint_config: Any = None, db: Optional[str] = None, busy_timeout_s: float = 30.0) -> None:
        kwargs = dict(getattr(endpoint_config, "kwargs", None) or {})
        self.path = Path(db or kwargs.get("db") or getattr(endpoint_config, "url", None) or DEFAULT_DB)
        self.busy_timeout_s = float(kwargs.get("busy_timeout_s", busy_timeout_s))
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = -1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db_:
            db_.execute("DELETE FROM locks WHERE expires < ?", (time.time(),))  # left by killed processes
        super().__init__()

    # -- storage --------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        # One connection per process: Sanic forks its workers, and a SQLite connection must not cross a fork.
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")  # locks live for seconds; nothing to keep over a power cut
            connection.execute(_SCHEMA)
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: no other process reads-then-writes the table meanwhile."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _read(db: sqlite3.Connection, conversation_id: str) -> Optional[TicketLock]:
        row = db.execute("SELECT lock FROM locks WHERE conversation_id = ?", (conversation_id,)).fetchone()
        return TicketLock.from_dict(json.loads(row[0])) if row else None

    @staticmethod
    def _write(db: sqlite3.Connection, lock: TicketLock) -> None:
        expires = max((t.expires for t in lock.tickets), default=0.0)
        db.execute("INSERT INTO locks (conversation_id, lock, expires) VALUES (?, ?, ?) ON CONFLICT (conversation_id) "
                    "DO UPDATE SET lock = excluded.lock, expires = excluded.expires",
                    (lock.conversation_id, lock.dumps(), expires))

    # -- Rasa's LockStore interface -------------------------------------------------------------

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        return self._read(self._db(), conversation_id)

    def delete_lock(self, conversation_id: str) -> None:
        deleted = self._db().execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,)).rowcount
        self._log_deletion(conversation_id, deleted > 0)

    def save_lock(self, lock: TicketLock) -> None:
        self._write(self._db(), lock)

    # The read-modify-write steps of the base class, each in one transaction.

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            with self._transaction() as db:
                lock = self._read(db, conversation_id) or self.create_lock(conversation_id)
                ticket = lock.issue_ticket(lock_lifetime)
                self._write(db, lock)
                return ticket
        except sqlite3.Error as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def update_lock(self, conversation_id: str) -> None:
        with self._transaction() as db:
            lock = self._read(db, conversation_id)
            if lock:
                lock.remove_expired_tickets()
                self._write(db, lock)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        with self._transaction() as db:
            lock = self._read(db, conversation_id)
            if lock:
                lock.remove_ticket_for(ticket_number)
                self._write(db, lock)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish serving `ticket_number`; delete the lock when no one else waits (one transaction)."""
        with self._transaction() as db:
            lock = self._read(db, conversation_id)
            if lock is None:
                return
            lock.remove_ticket_for(ticket_number)
            if lock.is_someone_waiting():
                self._write(db, lock)
            else:
                db.execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,))

    def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
             wait_time_in_seconds: float = DEFAULT_WAIT_S) -> AsyncContextManager[TicketLock]:
        """Rasa's ticket lock, polled every `wait_time_in_seconds` (Rasa's default: 1 s) while another holds it."""
        return super().lock(conversation_id, lock_lifetime, wait_time_in_seconds)
