"""Custom actions against a throwaway orders database: what the customer would notice."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import (
    ActionCancelOrder,
    ActionHandoffToHuman,
    ActionOrderStatus,
    ValidateCancelOrderForm,
    ValidateOrderStatusForm,
)
from bot.actions.order_actions import normalise_order_number
from bot.actions.orders_db import OrdersDB

ROOT = Path(__file__).resolve().parents[2]
DOMAIN: Dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def orders_db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "orders.db"
    monkeypatch.setenv("KEFU_ORDERS_DB", str(path))
    return path


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    text: str = "",
    intent: str = "inform_order_number",
    active_loop: Optional[str] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    sender_id: str = "customer-1",
) -> Tracker:
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots.update(slots or {})
    return Tracker(
        sender_id=sender_id,
        slots=all_slots,
        latest_message={"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []},
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def responses(dispatcher: CollectingDispatcher) -> List[Optional[str]]:
    return [m.get("response") for m in dispatcher.messages]


def texts(dispatcher: CollectingDispatcher) -> str:
    return "\n".join(m.get("text") or "" for m in dispatcher.messages)


def slot_events(events) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def validate(value: Any, form=ValidateOrderStatusForm):
    dispatcher = CollectingDispatcher()
    result = form().validate_order_number(value, dispatcher, make_tracker(text=str(value)), DOMAIN)
    return result, dispatcher


# --- order number validation ---------------------------------------------------


def test_valid_order_number_is_accepted():
    result, dispatcher = validate("104233")
    assert result["order_number"] == "104233"
    assert result["order_item"]
    assert dispatcher.messages == []


@pytest.mark.parametrize("written", ["#104233", "order 104233", "it's 104 233", "my order is #104233, placed on the 3rd"])
def test_order_number_is_normalised(written):
    result, dispatcher = validate(written)
    assert result["order_number"] == "104233"
    assert dispatcher.messages == []


@pytest.mark.parametrize("written", ["12345", "it is 12345", "1042339", "no idea", ""])
def test_wrong_format_is_rejected_with_the_format_message(written):
    result, dispatcher = validate(written)
    assert result == {"order_number": None}
    assert responses(dispatcher) == ["utter_invalid_order_number"]


def test_unknown_order_is_rejected_with_not_found_naming_the_number():
    result, dispatcher = validate("#999999")
    assert result == {"order_number": None}
    [message] = dispatcher.messages
    assert message["response"] == "utter_order_not_found"
    # The slot is cleared, so the response needs the number as a variable.
    assert message["order_number"] == "999999"


def test_cancel_form_validates_the_same_way():
    result, _ = validate("#583920", form=ValidateCancelOrderForm)
    assert result["order_number"] == "583920"
    result, dispatcher = validate("5839", form=ValidateCancelOrderForm)
    assert result == {"order_number": None}
    assert responses(dispatcher) == ["utter_invalid_order_number"]


def test_normalise_handles_lists_and_none():
    assert normalise_order_number(["111111", "104233"]) == "104233"
    assert normalise_order_number(None) is None
    assert normalise_order_number(104233) == "104233"


@pytest.mark.asyncio
async def test_form_validation_run_sets_slots_like_the_action_server_would():
    """Through `run`, as Rasa calls it: the slot candidate is the last event."""
    tracker = make_tracker(
        slots={"order_number": "#104234", "requested_slot": "order_number"},
        text="#104234",
        active_loop="cancel_order_form",
        events=[{"event": "user", "text": "#104234"}, {"event": "slot", "name": "order_number", "value": "#104234"}],
    )
    dispatcher = CollectingDispatcher()
    events = await ValidateCancelOrderForm().run(dispatcher, tracker, DOMAIN)
    slots = slot_events(events)
    assert slots["order_number"] == "104234"
    assert "Stoneware" in slots["order_item"]
    assert dispatcher.messages == []


@pytest.mark.asyncio
async def test_form_validation_run_rejects_a_bad_number():
    tracker = make_tracker(
        slots={"order_number": "it is 12345", "requested_slot": "order_number"},
        text="it is 12345",
        active_loop="order_status_form",
        events=[{"event": "user", "text": "it is 12345"},
                {"event": "slot", "name": "order_number", "value": "it is 12345"}],
    )
    dispatcher = CollectingDispatcher()
    events = await ValidateOrderStatusForm().run(dispatcher, tracker, DOMAIN)
    assert slot_events(events)["order_number"] is None
    assert responses(dispatcher) == ["utter_invalid_order_number"]


# --- order status ----------------------------------------------------------------


async def run_action(action, **slots):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, make_tracker(slots=slots, text="..."), DOMAIN)
    return events, dispatcher


@pytest.mark.asyncio
async def test_status_of_a_shipped_order_names_carrier_and_tracking():
    events, dispatcher = await run_action(ActionOrderStatus(), order_number="104233")
    said = texts(dispatcher)
    assert "104233" in said and "shipped" in said
    assert "UPS" in said
    assert "1Z999AA10123456784" in said
    assert slot_events(events)["order_number"] is None


@pytest.mark.asyncio
async def test_status_of_a_processing_order_says_it_has_not_shipped():
    _, dispatcher = await run_action(ActionOrderStatus(), order_number="104234")
    assert "hasn't shipped" in texts(dispatcher)


# --- cancelling --------------------------------------------------------------------


def status_in_db(path: Path, order_number: str) -> str:
    OrdersDB(path).get(order_number)  # creates and seeds the database if no action did
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT status FROM orders WHERE order_number = ?", (order_number,)).fetchone()[0]


@pytest.mark.asyncio
async def test_cancelling_a_processing_order_then_cancelling_again(orders_db):
    assert OrdersDB().get("104234").status == "processing"

    events, dispatcher = await run_action(ActionCancelOrder(), order_number="104234", cancel_confirmed=True)
    assert "is cancelled" in texts(dispatcher)
    assert status_in_db(orders_db, "104234") == "cancelled"
    assert slot_events(events) == {"order_number": None, "order_item": None, "cancel_confirmed": None}

    _, dispatcher = await run_action(ActionCancelOrder(), order_number="104234", cancel_confirmed=True)
    assert "already cancelled" in texts(dispatcher)


@pytest.mark.asyncio
async def test_a_shipped_order_cannot_be_cancelled(orders_db):
    _, dispatcher = await run_action(ActionCancelOrder(), order_number="104233", cancel_confirmed=True)
    said = texts(dispatcher)
    assert "already shipped" in said and "can't cancel" in said
    assert "return" in said  # suggests a return instead
    assert status_in_db(orders_db, "104233") == "shipped"


@pytest.mark.asyncio
async def test_a_delivered_order_cannot_be_cancelled(orders_db):
    _, dispatcher = await run_action(ActionCancelOrder(), order_number="104235", cancel_confirmed=True)
    assert "delivered" in texts(dispatcher)
    assert status_in_db(orders_db, "104235") == "delivered"


@pytest.mark.asyncio
async def test_denied_cancellation_changes_nothing(orders_db):
    _, dispatcher = await run_action(ActionCancelOrder(), order_number="583920", cancel_confirmed=False)
    assert "stays as it is" in texts(dispatcher)
    assert status_in_db(orders_db, "583920") == "processing"


def test_database_is_seeded_with_the_known_orders():
    db = OrdersDB()
    expected = {"104233": "shipped", "104234": "processing", "104235": "delivered",
                "104236": "cancelled", "583920": "processing", "771204": "shipped"}
    assert {n: db.get(n).status for n in expected} == expected
    assert db.get("104233").carrier == "UPS"
    assert db.get("999999") is None


def test_only_one_of_two_cancels_wins():
    db = OrdersDB()
    first, second = db.cancel("583920"), db.cancel("583920")
    assert first.cancelled and first.status == "cancelled"
    assert not second.cancelled and second.status == "cancelled"
    assert db.cancel("999999") == (False, None)


# --- handoff -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_handoff_records_a_row_and_tells_the_customer(orders_db):
    tracker = make_tracker(text="I want to talk to a real person", intent="human_handoff", sender_id="conv-42",
                           slots={"order_number": "104233"})
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffToHuman().run(dispatcher, tracker, DOMAIN)

    # Then what happens next (nobody online in this test: leave a message, or closed by desk.yml's hours),
    # and the bot pauses.
    assert responses(dispatcher)[0] == "utter_handoff"
    assert responses(dispatcher)[1:] in (["utter_handoff_no_agent"], ["utter_handoff_closed"])
    assert slot_events(events)["handoff_requested"] is True
    assert events[-1]["event"] == "pause"
    [row] = OrdersDB().handoffs()
    assert row["conversation_id"] == "conv-42"
    assert row["last_message"] == "I want to talk to a real person"
    assert row["order_number"] == "104233"
    assert row["requested_at"]
    with sqlite3.connect(orders_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.asyncio
async def test_handoff_still_answers_when_the_database_is_unavailable(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("KEFU_ORDERS_DB", str(blocker / "orders.db"))
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffToHuman().run(dispatcher, make_tracker(text="agent please"), DOMAIN)
    # Nobody could see the conversation: the customer gets the contacts and the bot stays on.
    assert responses(dispatcher) == ["utter_handoff_unavailable"]
    assert slot_events(events)["handoff_requested"] is True
    assert not [e for e in events if e["event"] == "pause"]


# --- knowledge-base answers in the customer's language and script ---------------------
def _kb_tracker(text: str) -> Tracker:
    tracker = make_tracker(text=text, intent="faq", events=[{"event": "user", "text": text}])
    tracker.latest_message["kb"] = {"match": "high", "route": "answer", "p_answer": 0.97, "answer": "收货后30天内可以免费退货。",
                                    "source": "https://help.example/returns", "id": "ret-zh", "score": 0.9}
    return tracker


@pytest.mark.parametrize("question, expected", [
    ("可以退货吗", "收货后30天内可以免费退货。\n\n来源：https://help.example/returns"),
    ("可以退貨嗎", "收貨後30天內可以免費退貨。\n\n來源：https://help.example/returns"),
])
def test_kb_answer_cites_its_source_in_the_customers_language_and_script(question, expected):
    import asyncio

    from bot.actions import ActionAnswerFromKB, ActionSearchKB

    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAnswerFromKB().run(dispatcher, _kb_tracker(question), DOMAIN))
    assert texts(dispatcher) == expected
    assert asyncio.run(ActionSearchKB().run(dispatcher, _kb_tracker(question), DOMAIN)) == [
        {"event": "slot", "timestamp": None, "name": "kb_match", "value": "high"}]
