"""bot.tracker_cache: the SQL tracker store with each worker's copy of its conversations reads and writes exactly
what Rasa's does, and never serves a copy the database has moved past (another worker, a purge)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered

from bot import tracker_cache

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, order_status, inform, thanks]
slots:
  order_number: {type: text, mappings: [{type: from_text}]}
responses:
  utter_greet: [{text: "Hi!"}]
""")
RASA_RETRIEVE, RASA_SAVE = SQLTrackerStore.retrieve, SQLTrackerStore.save
T0 = time.time() + 1000  # the turns' events come after the conversation's first action_listen (stamped now)


@pytest.fixture
def cached(monkeypatch):
    """SQLTrackerStore with the cache installed (restored after the test); counts Rasa's own full reads."""
    reads = []

    async def counted_retrieve(self, sender_id):
        reads.append(sender_id)
        return await RASA_RETRIEVE(self, sender_id)

    monkeypatch.setattr(SQLTrackerStore, "retrieve", tracker_cache._retrieve(counted_retrieve))
    monkeypatch.setattr(SQLTrackerStore, "save", tracker_cache._save(RASA_SAVE))
    monkeypatch.delenv("KEFU_TRACKER_CACHE", raising=False)
    return reads


def store(path) -> SQLTrackerStore:
    return SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(path))


def turn(n: int, intent: str, text: str, session_restart: bool = False):
    """One message's events with fixed timestamps (so two stores given the same turns write identical rows)."""
    t = T0 + 10 * n
    events = []
    if session_restart:
        events += [ActionExecuted("action_session_start", timestamp=t), SessionStarted(timestamp=t + 0.1),
                   ActionExecuted("action_listen", timestamp=t + 0.2)]
    events += [UserUttered(text, {"name": intent, "confidence": 0.93}, timestamp=t + 1),
               SlotSet("order_number", text, timestamp=t + 2) if intent == "inform" else None,
               ActionExecuted("utter_greet", timestamp=t + 3), BotUttered("Hi!", {"elements": None}, timestamp=t + 4),
               ActionExecuted("action_listen", timestamp=t + 5)]
    return [e for e in events if e is not None]


TURNS = [("greet", "hi"), ("order_status", "where is my order"), ("inform", "104233"),
         ("thanks", "thanks"), ("greet", "hello again")]


async def converse(s: SQLTrackerStore, sender: str, turns, restart_at=3):
    """As Rasa's processor: per message, retrieve (or create), add the message's events, save."""
    for n, (intent, text) in enumerate(turns):
        tracker = await s.get_or_create_tracker(sender)
        for event in turn(n, intent, text, session_restart=n == restart_at):
            tracker.update(event)
        await s.save(tracker)


def rows(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
                          "ORDER BY id").fetchall()


def as_dicts(tracker):
    return None if tracker is None else [e.as_dict() for e in tracker.events]


def test_the_store_writes_the_rows_rasas_writes_and_reads_back_what_rasas_reads(cached, tmp_path, monkeypatch):
    # Reference: Rasa's own store on another file, the same turns (a new session starts at the fourth message).
    with monkeypatch.context() as plain:
        plain.setattr(SQLTrackerStore, "retrieve", RASA_RETRIEVE)
        plain.setattr(SQLTrackerStore, "save", RASA_SAVE)
        reference = store(tmp_path / "rasa.db")
        asyncio.run(converse(reference, "customer-1", TURNS))
        rasa_view = asyncio.run(reference.retrieve("customer-1"))

    kefu = store(tmp_path / "kefu.db")
    asyncio.run(converse(kefu, "customer-1", TURNS))
    # The same rows; only the first (the action_listen a new conversation starts with) is stamped when created.
    assert rows(tmp_path / "kefu.db")[1:] == rows(tmp_path / "rasa.db")[1:]
    assert rows(tmp_path / "kefu.db")[0][4] == rows(tmp_path / "rasa.db")[0][4] == "action_listen"
    assert len(rows(tmp_path / "kefu.db")) == 1 + sum(len(turn(n, *t, n == 3)) for n, t in enumerate(TURNS))
    # Only the first message (a new conversation) was read Rasa's way; the other four came from the copy.
    assert cached == ["customer-1"]
    kept = asyncio.run(kefu.retrieve("customer-1"))
    assert as_dicts(kept) == as_dicts(rasa_view) == as_dicts(asyncio.run(RASA_RETRIEVE(kefu, "customer-1")))
    assert [type(e).__name__ for e in kept.events][:2] == ["SessionStarted", "ActionExecuted"]  # the new session only


def test_a_message_another_worker_saved_is_read_from_the_database_not_the_copy(cached, tmp_path):
    worker_a, worker_b = store(tmp_path / "t.db"), store(tmp_path / "t.db")
    asyncio.run(converse(worker_a, "customer-2", TURNS[:2]))
    # The next message lands on the other worker (its own copies, the same file).
    tracker = asyncio.run(worker_b.retrieve("customer-2"))
    for event in turn(2, "inform", "104233"):
        tracker.update(event)
    asyncio.run(worker_b.save(tracker))
    # Back on worker A: it sees the order number and saves its next message without losing or repeating a row.
    seen = asyncio.run(worker_a.retrieve("customer-2"))
    assert seen.get_slot("order_number") == "104233"
    for event in turn(3, "thanks", "thanks"):
        seen.update(event)
    asyncio.run(worker_a.save(seen))
    texts = [r[5] for r in rows(tmp_path / "t.db")]
    assert len(texts) == len(set(texts)) == 1 + sum(len(turn(n, *t)) for n, t in enumerate(TURNS[:4]))
    assert as_dicts(asyncio.run(worker_b.retrieve("customer-2"))) == as_dicts(asyncio.run(RASA_RETRIEVE(worker_b, "customer-2")))


def test_a_tracker_the_store_did_not_hand_out_is_saved_the_way_rasa_saves_it(cached, tmp_path):
    s = store(tmp_path / "t.db")
    asyncio.run(converse(s, "customer-6", TURNS[:2]))
    tracker = asyncio.run(RASA_RETRIEVE(s, "customer-6"))  # built elsewhere (Rasa's own read), same events
    for event in turn(2, "inform", "104233"):
        tracker.update(event)
    asyncio.run(s.save(tracker))
    texts = [r[5] for r in rows(tmp_path / "t.db")]
    assert len(texts) == len(set(texts)) == 1 + sum(len(turn(n, *t)) for n, t in enumerate(TURNS[:3]))
    assert asyncio.run(s.retrieve("customer-6")).get_slot("order_number") == "104233"


def test_events_added_but_not_saved_are_not_in_the_next_retrieval(cached, tmp_path):
    s = store(tmp_path / "t.db")
    asyncio.run(converse(s, "customer-3", TURNS[:2]))
    before = as_dicts(asyncio.run(s.retrieve("customer-3")))
    tracker = asyncio.run(s.retrieve("customer-3"))
    tracker.update(UserUttered("a message whose handling failed", {"name": "greet", "confidence": 0.5}))
    assert as_dicts(asyncio.run(s.retrieve("customer-3"))) == before


def test_a_conversation_deleted_from_the_database_is_gone_for_the_store_too(cached, tmp_path):
    s = store(tmp_path / "t.db")
    asyncio.run(converse(s, "customer-4", TURNS[:3]))
    assert asyncio.run(s.retrieve("customer-4")).get_slot("order_number") == "104233"
    with sqlite3.connect(tmp_path / "t.db") as db:
        db.execute("DELETE FROM events WHERE sender_id = 'customer-4'")
    assert asyncio.run(s.retrieve("customer-4")) is None
    fresh = asyncio.run(s.get_or_create_tracker("customer-4"))
    assert fresh.get_slot("order_number") is None


def test_with_the_cache_off_every_retrieval_is_rasas(cached, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_TRACKER_CACHE", "0")
    s = store(tmp_path / "t.db")
    asyncio.run(converse(s, "customer-5", TURNS[:3]))
    assert cached == ["customer-5"] * 3
    assert len(rows(tmp_path / "t.db")) == 1 + sum(len(turn(n, *t)) for n, t in enumerate(TURNS[:3]))


def test_the_copies_are_bounded_least_recently_used_first():
    kept = tracker_cache.KeptConversations(2)
    for sender in ("a", "b"):
        kept.put(sender, tracker_cache.Kept(1, 1, b""))
    kept.get("a")
    kept.put("c", tracker_cache.Kept(1, 2, b""))
    assert [s for s in "abc" if kept.get(s) is not None] == ["a", "c"]
