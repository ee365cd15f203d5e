"""The orders database: SQLite, created and seeded from `data/orders.csv` on first use.

The action server runs actions concurrently, so every call opens its own short-lived
connection; WAL mode lets readers proceed while a cancel or a handoff is written.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Set, Union

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = PROJECT_ROOT / "var" / "orders.db"
SEED_CSV = PROJECT_ROOT / "data" / "orders.csv"

# Order statuses used in data/orders.csv.
PROCESSING, SHIPPED, DELIVERED, CANCELLED = "processing", "shipped", "delivered", "cancelled"

FIELDS = ("order_number", "customer_name", "email", "status", "item",
          "placed_at", "eta", "carrier", "tracking_number")

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_number    TEXT PRIMARY KEY,
    customer_name   TEXT NOT NULL,
    email           TEXT NOT NULL,
    status          TEXT NOT NULL,
    item            TEXT NOT NULL,
    placed_at       TEXT NOT NULL,
    eta             TEXT,
    carrier         TEXT,
    tracking_number TEXT,
    updated_at      TEXT
);
CREATE TABLE IF NOT EXISTS handoffs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    requested_at    TEXT NOT NULL,
    last_message    TEXT,
    order_number    TEXT
);
"""

# Databases already created by this process (creation is idempotent, this only saves work).
_initialised: Set[str] = set()
_init_lock = threading.Lock()


@dataclass(frozen=True)
class Order:
    order_number: str
    customer_name: str
    email: str
    status: str
    item: str
    placed_at: str
    eta: Optional[str]
    carrier: Optional[str]
    tracking_number: Optional[str]


class CancelResult(NamedTuple):
    """`cancelled` is True only when this call cancelled the order; `status` is the
    order's status afterwards (None: no such order)."""

    cancelled: bool
    status: Optional[str]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class OrdersDB:
    """Orders and handoffs. Cheap to construct: nothing is opened until a call."""

    def __init__(self, path: Union[str, Path, None] = None, seed_csv: Union[str, Path, None] = None):
        self.path = Path(path or os.environ.get("KEFU_ORDERS_DB") or DEFAULT_DB)
        self.seed_csv = Path(seed_csv or SEED_CSV)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: explicit BEGIN IMMEDIATE where we write.
        conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn

    def _open(self) -> "closing[sqlite3.Connection]":
        key = str(self.path.resolve())
        if key not in _initialised or not self.path.exists():
            with _init_lock:
                self._initialise()
                _initialised.add(key)
        return closing(self._connect())

    def _initialise(self) -> None:
        with closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            # Another process may be seeding too: the write lock and INSERT OR IGNORE
            # make that harmless.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0:
                    conn.executemany(
                        f"INSERT OR IGNORE INTO orders ({', '.join(FIELDS)}) "
                        f"VALUES ({', '.join('?' for _ in FIELDS)})",
                        (tuple(row[f] or None for f in FIELDS) for row in self._seed_rows()),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _seed_rows(self) -> Iterator[dict]:
        with open(self.seed_csv, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                yield {k: (v or "").strip() for k, v in row.items()}

    def get(self, order_number: str) -> Optional[Order]:
        with self._open() as conn:
            row = conn.execute(
                f"SELECT {', '.join(FIELDS)} FROM orders WHERE order_number = ?", (order_number,)
            ).fetchone()
        return Order(**dict(row)) if row else None

    def cancel(self, order_number: str) -> CancelResult:
        """Cancel an order that is still processing, atomically (two cancels: one wins)."""
        with self._open() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = conn.execute(
                    "UPDATE orders SET status = ?, updated_at = ? WHERE order_number = ? AND status = ?",
                    (CANCELLED, _now(), order_number, PROCESSING),
                ).rowcount
                row = conn.execute("SELECT status FROM orders WHERE order_number = ?", (order_number,)).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return CancelResult(cancelled=changed == 1, status=row["status"] if row else None)

    def record_handoff(self, conversation_id: str, last_message: Optional[str] = None,
                       order_number: Optional[str] = None) -> int:
        """Store a request for a human agent; returns the handoff's id."""
        with self._open() as conn:
            cur = conn.execute(
                "INSERT INTO handoffs (conversation_id, requested_at, last_message, order_number) VALUES (?, ?, ?, ?)",
                (conversation_id, _now(), last_message, order_number),
            )
            return int(cur.lastrowid)

    def handoffs(self) -> list:
        """All recorded handoffs, oldest first (for agents' tools and tests)."""
        with self._open() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM handoffs ORDER BY id")]
