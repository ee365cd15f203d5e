"""The desk's small SQLite tables (accounts, proposed answers): WAL mode, schema created on first use."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import ClassVar, Dict


class SqliteStore:
    """One SQLite file; `connect()` yields an autocommit connection with rows by column name."""

    schema: ClassVar[str] = ""
    # Columns added after a table's first release: {table: {column: declaration}}, added to older files on first use.
    added_columns: ClassVar[Dict[str, Dict[str, str]]] = {}

    def __init__(self, path: Path):
        self.path = Path(path)
        self._ready = False

    def _connect(self) -> "closing[sqlite3.Connection]":
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(str(self.path), timeout=10)) as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(self.schema)
                for table, columns in self.added_columns.items():
                    have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                    for column, declaration in columns.items():
                        if column not in have:
                            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            self._ready = True
        conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return closing(conn)
