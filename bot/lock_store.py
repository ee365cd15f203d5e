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
(TICKET_LOCK_LIFETIME, default 60 s) as in Rasa, and each ticket also records
the process that took it (host, pid and the process's start time, so a reused
pid is not mistaken for it): a ticket whose process on this host has died is
given back at once. So a Rasa server killed mid-message (`kill -9`, the OOM
killer) and started again does not leave that customer waiting for the lock
lifetime (with Rasa's rule their next messages waited up to 60 s). Processes of
another host (a container sharing the file) are judged by the lifetime alone.

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
import socket
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
_SCHEMA = ("CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, lock TEXT NOT NULL, expires REAL NOT NULL, "
           "owners TEXT NOT NULL DEFAULT '{}')")


def _start_time(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # fields after the command name, which may hold spaces


def process_id(pid: int) -> str:
    """host:pid:start time of a process on this host."""
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def is_dead(owner: str) -> bool:
    """True when `owner` (a `process_id`) was a process of this host that is no longer running."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's process: only its tickets' lifetime says
    if started == "None":  # no /proc (not Linux): whether the pid exists at all
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return _start_time(int(pid)) != started


class SQLiteLockStore(LockStore):
    """Rasa's `LockStore` over a SQLite file shared by the processes of one machine."""

    def __init__(self, endpoint_config: Any = None, db: Optional[str] = None, busy_timeout_s: float = 30.0) -> None:
        kwargs = dict(getattr(endpoint_config, "kwargs", None) or {})
        self.path = Path(db or kwargs.get("db") or getattr(endpoint_config, "url", None) or DEFAULT_DB)
        self.busy_timeout_s = float(kwargs.get("busy_timeout_s", busy_timeout_s))
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = -1
        self._me = ""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db_:
            db_.execute("DELETE FROM locks WHERE expires < ?", (time.time(),))  # left by killed processes
            for conversation_id, in db_.execute("SELECT conversation_id FROM locks").fetchall():
                lock = self._read(db_, conversation_id)  # gives back the tickets of dead processes
                if lock is not None and not lock.is_someone_waiting():
                    db_.execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,))
                elif lock is not None:
                    self._write(db_, lock)
        super().__init__()

    # -- storage --------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        # One connection per process: Sanic forks its workers, and a SQLite connection must not cross a fork.
        if self._connection is None or self._pid != os.getpid():
            self._connection, self._pid, self._me = self._open(), os.getpid(), process_id(os.getpid())
        return self._connection

    def _open(self) -> sqlite3.Connection:
        """A connection with the file in WAL mode and the table made, retried while other processes set it up.

        Switching a new file to WAL takes an exclusive lock and SQLite does not wait for it with the busy
        timeout: workers that start together saw 'database is locked' (one start in about thirty).
        """
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            connection = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=OFF")  # locks live for seconds; nothing to keep over a power cut
                columns = {row[1] for row in connection.execute("PRAGMA table_info(locks)")}
                if columns and "owners" not in columns:  # a file of an earlier kefu: locks live for seconds, start afresh
                    connection.execute("DROP TABLE locks")
                connection.execute(_SCHEMA)
                return connection
            except sqlite3.OperationalError as e:
                connection.close()
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

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

    def _read(self, db: sqlite3.Connection, conversation_id: str) -> Optional[TicketLock]:
        """The lock without the tickets of dead processes; its `owners` (ticket number -> process) kept on it."""
        row = db.execute("SELECT lock, owners FROM locks WHERE conversation_id = ?", (conversation_id,)).fetchone()
        if not row:
            return None
        lock = TicketLock.from_dict(json.loads(row[0]))
        owners = {int(n): owner for n, owner in json.loads(row[1] or "{}").items()}
        for ticket in list(lock.tickets):
            if ticket.number in owners and is_dead(owners[ticket.number]):
                lock.tickets.remove(ticket)
                logger.warning("lock store: gave back a ticket of process %s, which has died", owners[ticket.number])
        lock.owners = {n: o for n, o in owners.items() if any(t.number == n for t in lock.tickets)}
        return lock

    @staticmethod
    def _write(db: sqlite3.Connection, lock: TicketLock) -> None:
        expires = max((t.expires for t in lock.tickets), default=0.0)
        owners = {n: o for n, o in getattr(lock, "owners", {}).items() if any(t.number == n for t in lock.tickets)}
        db.execute("INSERT INTO locks (conversation_id, lock, expires, owners) VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) "
                    "DO UPDATE SET lock = excluded.lock, expires = excluded.expires, owners = excluded.owners",
                    (lock.conversation_id, lock.dumps(), expires, json.dumps(owners)))

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
                lock.owners = {**getattr(lock, "owners", {}), ticket: self._me}
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
