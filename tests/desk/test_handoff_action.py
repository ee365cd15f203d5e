"""The handoff action: queue row with its reason, what the customer is told, the pause; and the queue itself."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.handoff import ActionHandoffToHuman
from bot.actions.handoff_queue import ConflictError, HandoffQueue
from bot.actions.opening_hours import HoursError, OpeningHours

DOMAIN = {"slots": {}}


def tracker(intent="human_handoff", text="I want to talk to a person", sender="conv-1", channel="socketio"):
    events = [{"event": "user", "text": "hello", "input_channel": channel},
              {"event": "user", "text": text, "input_channel": channel}]
    return Tracker(sender, {"order_number": None}, {"text": text, "intent": {"name": intent, "confidence": 0.9}},
                   events, False, None, {}, "action_listen")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_ORDERS_DB", str(tmp_path / "orders.db"))
    config = tmp_path / "desk.yml"
    config.write_text("hours: {always: true}\npresence_timeout_s: 45\n")
    monkeypatch.setenv("KEFU_DESK_CONFIG", str(config))
    return config


async def run(t):
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffToHuman().run(dispatcher, t, DOMAIN)
    return dispatcher.messages, events


@pytest.mark.asyncio
async def test_queue_position_when_an_agent_is_online(env):
    HandoffQueue().heartbeat("alice")
    first, _ = await run(tracker(sender="a"))
    messages, events = await run(tracker(sender="b"))
    assert [m["response"] for m in messages] == ["utter_handoff", "utter_handoff_queue_position"]
    assert messages[1]["queue_position"] == 2
    assert events[-1]["event"] == "pause"
    [row_a, row_b] = HandoffQueue().open_rows()
    assert (row_b.conversation_id, row_b.reason, row_b.channel, row_b.mode) == ("b", "customer_asked", "socketio", "live")


@pytest.mark.asyncio
async def test_nobody_online_means_leave_a_message(env):
    messages, events = await run(tracker())
    assert messages[1]["response"] == "utter_handoff_no_agent" and events[-1]["event"] == "pause"


@pytest.mark.asyncio
async def test_outside_opening_hours(env):
    env.write_text("hours:\n  timezone: UTC\n  days: []\n  text: {en: 'Mon-Fri 8-20'}\n")
    messages, _ = await run(tracker())
    assert messages[1]["response"] == "utter_handoff_closed" and messages[1]["opening_hours"] == "Mon-Fri 8-20"
    assert HandoffQueue().open_rows()[0].mode == "closed"


@pytest.mark.asyncio
async def test_reasons_and_language_are_recorded(env):
    await run(tracker(intent="nlu_fallback", text="blorp", sender="f"))
    await run(tracker(intent="faq", text="do you gift wrap", sender="k"))
    await run(tracker(text="我要找人工客服", sender="z"))
    rows = {r.conversation_id: r for r in HandoffQueue().open_rows()}
    assert rows["f"].reason == "repeated_fallback" and rows["k"].reason == "kb_low"
    assert rows["z"].reason == "customer_asked" and rows["z"].language == "zh"


@pytest.mark.asyncio
async def test_asking_twice_queues_once(env):
    await run(tracker())
    await run(tracker())
    assert len(HandoffQueue().open_rows()) == 1


@pytest.mark.asyncio
async def test_no_queue_no_pause(tmp_path, monkeypatch, env):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("KEFU_ORDERS_DB", str(blocker / "orders.db"))
    messages, events = await run(tracker())
    assert [m["response"] for m in messages] == ["utter_handoff_unavailable"]
    assert not [e for e in events if e["event"] == "pause"]


def test_claims_are_atomic_across_threads(tmp_path):
    queue = HandoffQueue(tmp_path / "orders.db")
    row = queue.enqueue("c", "customer_asked")
    results = []

    def claim(agent):
        try:
            queue.claim(row.id, agent)
            results.append(agent)
        except ConflictError:
            results.append(None)

    threads = [threading.Thread(target=claim, args=(f"agent{i}",)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len([r for r in results if r]) == 1


def test_an_old_handoffs_table_is_migrated(tmp_path):
    path = tmp_path / "orders.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE handoffs (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, "
                     "requested_at TEXT NOT NULL, last_message TEXT, order_number TEXT)")
        conn.execute("INSERT INTO handoffs (conversation_id, requested_at) VALUES ('old', '2025-01-01')")
    queue = HandoffQueue(path)
    assert queue.open_rows() == []  # the old row was never served: closed, not queued
    assert queue.enqueue("new", "customer_asked").status == "waiting"


def test_opening_hours():
    hours = OpeningHours.from_config({"timezone": "Asia/Shanghai", "days": ["mon"], "open": "09:00", "close": "18:00"})
    monday_10_shanghai = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
    assert hours.is_open(monday_10_shanghai)
    assert not hours.is_open(datetime(2026, 11, 30, 11, 0, tzinfo=timezone.utc))
    with pytest.raises(HoursError):
        OpeningHours.from_config({"timezone": "Mars/Olympus"})
