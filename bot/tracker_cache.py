"""Rasa's SQL tracker store, with each Rasa worker's copy of the conversations it served last.

For every message Rasa's `SQLTrackerStore` reads the conversation's latest session
back from the database (a query, `json.loads` of every event, every event rebuilt and
replayed onto a new tracker) and, to save, counts the rows it already has with a
second query before inserting the new ones, each session on a new SQLite
connection: with kefu's inference caches on, the largest share of the Rasa server's
CPU per message (16 of 33 ms under py-spy, bench/throughput.py --profile).

Installed by `bot.speedups.install()` in the Rasa server (so PostgreSQL replicas get
it too): the store keeps, per conversation it read or wrote (`KEFU_TRACKER_CACHE`
conversations per worker, default 1024, 0 for none), the events its retrieval gives
and the conversation's row count and newest row id as the store had them. Before
using the copy it asks the store for that count and id (one indexed query); any row
written since, by another worker, replica, the desk or a purge, changes them, and
the conversation is then read the way Rasa reads it. So a retrieval returns exactly
the events Rasa's would, and a save inserts exactly the events Rasa's would. A
SQLite file's connections are kept open between messages (`keep_sqlite_connections`).

`flock /tmp/kefu-cpu.lock .venv/bin/python bench/tracker_store.py` (the order-status
conversation, 1,000 messages, SQLite in WAL mode, one process): per message p50
Rasa 1.9-2.2 ms to retrieve and 2.5-3.0 ms to save, here 0.17 and 0.44-0.45 ms.
A kept conversation is pickled: about 6 KB for that conversation (30 MB a worker for
1,024 longer ones), none of it walked by the garbage collector.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

_KEPT = "_kefu_kept_conversations"
DEFAULT_SIZE = 1024
LENT = 256  # trackers handed out and not saved yet (a message being handled), per worker


@dataclass(frozen=True)
class Kept:
    rows: int  # the conversation's rows in the store, every session
    last_id: Optional[int]  # its newest row's id
    events: bytes  # what the store's retrieval gives, the latest session's events, pickled (see `keep`)


def keep(rows: Tuple[int, Optional[int]], events: Sequence[Any]) -> Optional[Kept]:
    """The copy kept: pickled, so the garbage collector never walks it (a thousand conversations as objects
    made each full collection 70 ms longer) and every retrieval unpickles its own events (0.04 ms)."""
    try:
        return Kept(rows[0], rows[1], pickle.dumps(tuple(events), protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as e:  # noqa: BLE001 - an event that does not pickle: that conversation is read Rasa's way
        logger.debug("conversation not kept: %s", e)
        return None


def cache_size() -> int:
    raw = os.environ.get("KEFU_TRACKER_CACHE", "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_SIZE
    except ValueError:
        logger.warning("KEFU_TRACKER_CACHE=%r is not a number of conversations; using %d", raw, DEFAULT_SIZE)
        return DEFAULT_SIZE


class KeptConversations:
    """The last `size` conversations' copies, least recently used dropped first."""

    def __init__(self, size: int):
        self.size = size
        self._kept: "OrderedDict[str, Kept]" = OrderedDict()
        # The events of each tracker handed out, until it is saved: a save checks it got the same objects back.
        self.lent: "OrderedDict[str, Tuple[Any, ...]]" = OrderedDict()

    def lend(self, sender_id: str, events: Tuple[Any, ...]) -> None:
        self.lent[sender_id] = events
        self.lent.move_to_end(sender_id)
        while len(self.lent) > LENT:
            self.lent.popitem(last=False)

    def get(self, sender_id: str) -> Optional[Kept]:
        kept = self._kept.get(sender_id)
        if kept is not None:
            self._kept.move_to_end(sender_id)
        return kept

    def put(self, sender_id: str, kept: Optional[Kept]) -> None:
        if not self.size:
            return
        if kept is None:
            self.drop(sender_id)
            return
        self._kept[sender_id] = kept
        self._kept.move_to_end(sender_id)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def drop(self, sender_id: str) -> None:
        self._kept.pop(sender_id, None)


def kept_conversations(store: Any) -> KeptConversations:
    """The store's copies, made on its first use; that first use also pools its SQLite connections (the methods
    are patched on Rasa's class, so there is no constructor of ours to do it in)."""
    kept = store.__dict__.get(_KEPT)
    if kept is None:
        keep_sqlite_connections(store)
        kept = store.__dict__[_KEPT] = KeptConversations(cache_size())
    return kept


def keep_sqlite_connections(store: Any) -> None:
    """SQLite: a pool of open connections instead of a new connection for every session.

    SQLAlchemy 1.4 gives a file database a NullPool, so each of Rasa's sessions (two
    a message) connected anew and read the schema and the write-ahead log's index
    again: 0.3 ms of a 0.5 ms retrieval. SQLAlchemy 2.0 pools them by default, as
    here (a connection returned to the pool is rolled back, so it holds no snapshot).
    """
    import sqlalchemy as sa
    from sqlalchemy.orm import sessionmaker
    from sqlalchemy.pool import NullPool, QueuePool

    engine = store.engine
    if engine.dialect.name != "sqlite" or not isinstance(engine.pool, NullPool) or engine.url.database in (None, "", ":memory:"):
        return
    store.engine = sa.create_engine(engine.url, poolclass=QueuePool, pool_size=2,
                                    connect_args={"check_same_thread": False})
    store.sessionmaker = sessionmaker(bind=store.engine)
    engine.dispose()


_ROWS_QUERIES: dict = {}


def conversation_rows(store: Any, session: Any, sender_id: str) -> Tuple[int, Optional[int]]:
    """How many rows the conversation has in the store and its newest row's id (one query on the sender index;
    a Core statement built once: the ORM's query took 7 times as long to build and run)."""
    table = store.SQLEvent.__table__
    query = _ROWS_QUERIES.get(table)
    if query is None:
        import sqlalchemy as sa

        query = _ROWS_QUERIES[table] = sa.select(sa.func.count(table.c.id), sa.func.max(table.c.id)).where(
            table.c.sender_id == sa.bindparam("sender_id"))
    count, last_id = session.execute(query, {"sender_id": sender_id}).one()
    return int(count), last_id


def latest_session(events: Sequence[Any]) -> Tuple[Any, ...]:
    """The events Rasa's retrieval gives back from these: those stamped at or after the newest session start
    (its SQL: timestamp >= the latest `session_started` row's), or all of them when no session started."""
    from rasa.shared.core.events import SessionStarted

    starts = [e.timestamp for e in events if isinstance(e, SessionStarted)]
    if not starts:
        return tuple(events)
    start = max(starts)
    return tuple(e for e in events if e.timestamp is not None and e.timestamp >= start)


def _retrieve(original):
    async def retrieve(self, sender_id):
        kept_all = kept_conversations(self)
        if not kept_all.size or not self.domain:
            return await original(self, sender_id)
        with self.session_scope() as session:
            rows = conversation_rows(self, session, sender_id)
        kept = kept_all.get(sender_id)
        if kept is not None and (kept.rows, kept.last_id) == rows:
            from rasa.shared.core.trackers import DialogueStateTracker

            events = pickle.loads(kept.events)
            kept_all.lend(sender_id, events)
            return DialogueStateTracker.from_events(sender_id, list(events), self.domain.slots)
        tracker = await original(self, sender_id)
        with self.session_scope() as session:
            unchanged = conversation_rows(self, session, sender_id) == rows
        if tracker is not None and unchanged:  # nothing written between the two counts: the copy is what was read
            events = tuple(tracker.events)
            kept_all.put(sender_id, keep(rows, events))
            kept_all.lend(sender_id, events)
        else:
            kept_all.drop(sender_id)
        return tracker

    retrieve.__wrapped__ = original
    return retrieve


def _save(original):
    async def save(self, tracker):
        kept_all = kept_conversations(self)
        if not kept_all.size:
            return await original(self, tracker)
        sender_id = tracker.sender_id
        events = list(tracker.events)
        await self.stream_events(tracker)
        with self.session_scope() as session:
            rows = conversation_rows(self, session, sender_id)
            kept = kept_all.get(sender_id)
            lent = kept_all.lent.pop(sender_id, None)
            known = None
            if rows == (0, None):
                known = 0  # a new conversation: every event is new
            elif (kept is not None and lent is not None and (kept.rows, kept.last_id) == rows
                  and len(events) >= len(lent) and all(a is b for a, b in zip(events, lent))):
                known = len(lent)  # the store holds what this tracker was built from, nothing since
            new = (events[known:] if known is not None
                   else list(self._additional_events(session, tracker)))  # Rasa's count of what is stored
            if new:  # one multi-row INSERT (the ORM's unit of work took twice as long for the same rows)
                session.execute(self.SQLEvent.__table__.insert(), [_columns(sender_id, event) for event in new])
                rows = conversation_rows(self, session, sender_id)  # inside the write: what this save left
            session.commit()
        if known is None:
            kept_all.drop(sender_id)
        else:
            kept_all.put(sender_id, keep(rows, latest_session(events)))
            kept_all.lend(sender_id, tuple(events))  # all stored now: the caller may go on with this tracker
        logger.debug("Tracker with sender_id '%s' stored to database", sender_id)

    save.__wrapped__ = original
    return save


def _columns(sender_id: str, event: Any) -> dict:
    """The row Rasa's SQLTrackerStore.save writes for an event (rasa/core/tracker_store.py)."""
    import json

    from rasa.shared.nlu.constants import INTENT_NAME_KEY

    data = event.as_dict()
    return dict(sender_id=sender_id, type_name=event.type_name, timestamp=data.get("timestamp"),
                intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                action_name=data.get("name"), data=json.dumps(data))


def install() -> None:
    """Idempotent: SQLTrackerStore.retrieve and .save keep and use each conversation's copy."""
    from rasa.core.tracker_store import SQLTrackerStore

    if hasattr(SQLTrackerStore.retrieve, "__wrapped__"):
        return
    SQLTrackerStore.retrieve = _retrieve(SQLTrackerStore.retrieve)
    SQLTrackerStore.save = _save(SQLTrackerStore.save)
