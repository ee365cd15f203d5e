"""Desk accounts (agents and leads) in SQLite, passwords hashed with argon2id (argon2-cffi).

The desk is one process, but `kefu desk adduser` writes from another: every call
opens its own short connection, and WAL mode lets them overlap.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import List, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from desk.sqlite_store import SqliteStore
from kefu.core.errors import KefuError

AGENT, LEAD = "agent", "lead"
ROLES = (AGENT, LEAD)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")
MIN_PASSWORD = 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'lead')),
    password_hash TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL
);
"""

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password."""
    return _hasher.hash("not a real password")


class AccountError(KefuError):
    """A bad user name, role or password when creating an account."""


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    active: bool

    @property
    def is_lead(self) -> bool:
        return self.role == LEAD


class Accounts(SqliteStore):
    schema = SCHEMA

    def add(self, username: str, password: str, role: str = AGENT, display_name: Optional[str] = None,
            replace: bool = False) -> User:
        username = username.strip().lower()
        if not USERNAME.match(username):
            raise AccountError("user names are 2-40 characters: lower-case letters, digits, '.', '_', '-'")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"passwords need at least {MIN_PASSWORD} characters")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self._connect() as conn:
            try:
                conn.execute(f"{verb} INTO users (username, display_name, role, password_hash, active, created_at) "
                             "VALUES (?, ?, ?, ?, 1, ?)",
                             (username, display_name or username, role, _hasher.hash(password), now))
            except sqlite3.IntegrityError:
                raise AccountError(f"user {username} exists (use --replace to reset the password)") from None
        return User(username, display_name or username, role, True)

    def get(self, username: str) -> Optional[User]:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM users WHERE username = ?", (username.strip().lower(),)).fetchone()
        return User(row["username"], row["display_name"], row["role"], bool(row["active"])) if row else None

    def list(self) -> List[User]:
        with self._connect() as conn:
            return [User(r["username"], r["display_name"], r["role"], bool(r["active"]))
                    for r in conn.execute("SELECT * FROM users ORDER BY username")]

    def set_active(self, username: str, active: bool) -> bool:
        with self._connect() as conn:
            return conn.execute("UPDATE users SET active = ? WHERE username = ?",
                                (int(active), username.strip().lower())).rowcount == 1

    def verify(self, username: str, password: str) -> Optional[User]:
        """The user when the password matches and the account is active; rehashes outdated hashes."""
        username = (username or "").strip().lower()
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
            stored = row["password_hash"] if row else _dummy_hash()
            try:
                _hasher.verify(stored, password or "")
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return None
            if row is None or not row["active"]:
                return None
            if _hasher.check_needs_rehash(stored):
                conn.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                             (_hasher.hash(password), username))
        return User(row["username"], row["display_name"], row["role"], True)
