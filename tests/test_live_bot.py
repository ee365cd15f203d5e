"""The running bot, as a customer and an operator see it: real Rasa server, action server, SQLite stores.

Needs a trained model: `make test` trains one and sets KEFU_TEST_MODEL.
"""

import json
import os
import sqlite3
import uuid
from pathlib import Path

import pytest

from tests.live_bot import LiveBot

MODEL = os.environ.get("KEFU_TEST_MODEL")
pytestmark = pytest.mark.skipif(not MODEL, reason="needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    live = LiveBot(Path(MODEL), tmp_path_factory.mktemp("live")).start()
    yield live
    live.stop()


def new_user() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_order_status_with_number_in_the_first_message(bot):
    reply = bot.texts(new_user(), "hi, where is my order 104233? it's been a week")
    assert "104233" in reply and "UPS" in reply


def test_order_status_form_rejects_unknown_then_accepts_valid(bot):
    user = new_user()
    assert "order number" in bot.texts(user, "I want to know the status of my order").lower()
    assert "999999" in bot.texts(user, "999999")
    assert "583920" in bot.texts(user, "583920")


def test_cancel_changes_the_orders_database(bot):
    user = new_user()
    bot.texts(user, "please cancel my order 104234")
    bot.texts(user, "yes")
    with sqlite3.connect(bot.orders_db) as db:
        (status,) = db.execute("select status from orders where order_number = '104234'").fetchone()
    assert status == "cancelled"


def test_handoff_is_recorded(bot):
    user = new_user()
    reply = bot.texts(user, "I want to talk to a real person")
    assert reply
    with sqlite3.connect(bot.orders_db) as db:
        rows = db.execute("select count(*) from handoffs where conversation_id = ?", (user,)).fetchone()[0]
    assert rows == 1


def test_conversations_are_kept_in_the_sqlite_tracker_store(bot):
    user = new_user()
    bot.texts(user, "hello")
    with sqlite3.connect(bot.tracker_db) as db:
        texts = [r[0] for r in db.execute("select data from events where sender_id = ? and type_name = 'user'", (user,))]
    assert any('"hello"' in t for t in texts)


@pytest.mark.parametrize("message", ["", "   ", "où est ma commande \udcff", "我的訂單 \udcff 在哪"], ids=["empty", "blank", "surrogate", "surrogate-zh"])
def test_odd_messages_get_an_answer_and_the_server_stays_up(bot, message):
    user = new_user()
    bot.say(user, message)
    assert bot.alive()
    assert "104233" in bot.texts(user, "where is order 104233")


def test_a_huge_message_is_refused_clearly_and_the_conversation_goes_on(bot):
    user = new_user()
    status, body = bot.request("POST", "/webhooks/rest/webhook", json.dumps({"sender": user, "message": "x" * 50_000}),
                               {"Content-Type": "application/json"})
    assert status == 413 and "longer than" in body
    assert "104233" in bot.texts(user, "where is order 104233")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]", b'{"sender": "a"}', b'{"sender": "a", "message": 42}', b'{"sender": "a", "message": "' + b"x" * 200_000 + b'"}'],
    ids=["malformed", "non-utf8", "not-an-object", "no-message", "message-not-text", "200kB"],
)
def test_malformed_requests_are_client_errors(bot, body):
    status, _ = bot.request("POST", "/webhooks/rest/webhook", body, {"Content-Type": "application/json"})
    assert 400 <= status < 500
    assert bot.alive()


def test_chinese_customers_are_answered_in_chinese(bot):
    """WeChat users write Chinese: responses and order texts come back in Chinese."""
    user = new_user()
    assert "欢迎来到 Maple Market" in bot.texts(user, "你好")
    status = bot.texts(user, "帮我查一下订单104233到哪了")
    assert "104233" in status and "已经发货" in status and "UPS" in status
    handoff = bot.say(user, "转人工客服")
    assert any("正在为您转接" in (m.get("text") or "") for m in handoff)
    assert any((m.get("custom") or {}).get("handoff") for m in handoff)


def test_chinese_knowledge_base_question_gets_the_chinese_answer_with_its_source(bot):
    """A Chinese question from the historical Q&A is answered in Chinese, citing the source in Chinese; Traditional too."""
    answer = bot.texts(new_user(), "你们能帮忙把礼物包起来吗")
    assert "礼品包装每件 $4.95" in answer and "来源：https://" in answer and "Source:" not in answer
    traditional = bot.texts(new_user(), "你們能幫忙把禮物包起來嗎")
    assert "禮品包裝每件 $4.95" in traditional and "來源：https://" in traditional
