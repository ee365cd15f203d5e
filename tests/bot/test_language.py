"""Answering in the customer's language: detection, Chinese responses, Chinese order texts."""

import asyncio

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from bot.actions.order_texts import cancel_outcome, describe_order
from bot.actions.orders_db import Order
from bot.nlg import BilingualNLG
from kefu.core.text import conversation_language, detect_language


@pytest.mark.parametrize("text, language", [
    ("我的订单到哪了", "zh"), ("订单104233在哪", "zh"), ("where is my order", "en"),
    ("my 订单 please", "zh"), ("Hi, 我想退货", "zh"), ("104233", None), ("/affirm", None), ("👍", None), ("", None),
])
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_conversation_language_skips_payloads_and_numbers():
    assert conversation_language(["/affirm", "104233", "我想取消订单", "hello"]) == "zh"
    assert conversation_language(["/affirm"]) == "en"


DOMAIN = Domain.from_dict({
    "slots": {"order_number": {"type": "text", "mappings": [{"type": "custom"}]}},
    "responses": {
        "utter_greet": [{"text": "Hi! How can I help?", "buttons": [{"title": "Track my order", "payload": "/order_status"}]}],
        "utter_order_not_found": [{"text": "I can't find order {order_number}."}],
        "utter_goodbye": [{"text": "Bye!"}],
        "utter_handoff": [{"text": "Connecting you to a person.", "custom": {"handoff": True}}],
    },
})


def _nlg(tmp_path, text):
    path = tmp_path / "responses_zh.yml"
    path.write_text(text, encoding="utf-8")
    return BilingualNLG(EndpointConfig(responses_zh=str(path)), DOMAIN)


def _say(nlg, user_text, response, **kwargs):
    tracker = DialogueStateTracker.from_events("c", [UserUttered(user_text)], slots=DOMAIN.slots)
    return asyncio.run(nlg.generate(response, tracker, "rest", **kwargs))


def test_chinese_customers_get_chinese_responses_with_buttons_and_slots(tmp_path):
    nlg = _nlg(tmp_path, "utter_greet:\n  text: 您好！有什么可以帮您？\n  buttons:\n    - title: 查订单\n      payload: /order_status\n"
                         "utter_order_not_found: 没有找到订单 {order_number}。\nutter_unknown: 忽略\n"
                         "utter_handoff: 正在为您转接人工客服。\n")
    zh = _say(nlg, "你好", "utter_greet")
    assert zh["text"] == "您好！有什么可以帮您？" and zh["buttons"] == [{"title": "查订单", "payload": "/order_status"}]
    assert _say(nlg, "订单在哪", "utter_order_not_found", order_number="999999")["text"] == "没有找到订单 999999。"
    assert _say(nlg, "hello", "utter_greet")["text"] == "Hi! How can I help?"
    assert _say(nlg, "再见", "utter_goodbye")["text"] == "Bye!"  # no translation: English, not silence
    handoff = _say(nlg, "转人工", "utter_handoff")
    assert handoff["text"] == "正在为您转接人工客服。" and handoff["custom"] == {"handoff": True}


def test_chinese_responses_work_when_the_domain_arrives_after_the_nlg(tmp_path):
    """Rasa's Agent builds the NLG without a domain and sets `responses` once the model is loaded."""
    path = tmp_path / "responses_zh.yml"
    path.write_text("utter_goodbye: 再见！\n", encoding="utf-8")
    nlg = BilingualNLG(EndpointConfig(responses_zh=str(path)), None)
    nlg.responses = DOMAIN.responses
    assert _say(nlg, "拜拜", "utter_goodbye")["text"] == "再见！"


def test_broken_translation_file_is_a_clear_error(tmp_path):
    with pytest.raises(RasaException, match="responses_zh.yml"):
        _nlg(tmp_path, "utter_greet: [unclosed\n")


def test_order_texts_in_chinese():
    shipped = Order("104233", "Ada", "ada@example.com", "shipped", "Merino sweater", "2025-03-01", "2025-03-07", "UPS", "1Z999")
    assert describe_order(shipped, "zh") == "好消息：您的订单 104233（Merino sweater）已经发货，承运商 UPS，物流单号 1Z999。预计送达：3月7日。"
    assert describe_order(shipped).startswith("Good news: your order 104233 (Merino sweater) has shipped with UPS")
    assert "无法再取消" in cancel_outcome("104233", False, shipped, "zh")


@pytest.mark.parametrize("history, language", [
    (["ok", "我想查一下订单"], "zh"),            # "ok" after Chinese keeps Chinese
    (["👍", "104233", "订单到哪了"], "zh"),       # emoji and a bare number carry no language
    (["好的", "where is my order"], "zh"),        # a Chinese reply switches to Chinese
    (["thx", "yes", "where is my parcel"], "en"),
    (["yes please", "你好"], "zh"),
    (["where is 订单 104233"], "zh"),
])
def test_short_and_mixed_messages_keep_the_conversation_language(history, language):
    assert conversation_language(history) == language


def test_traditional_customers_get_traditional_replies(tmp_path):
    nlg = _nlg(tmp_path, "utter_greet:\n  text: 您好！有什么可以帮您？\n  buttons:\n    - title: 查订单\n      payload: /order_status\n")
    hant = _say(nlg, "請問訂單在哪裡", "utter_greet")
    assert hant["text"] == "您好！有什麼可以幫您？" and hant["buttons"][0]["title"] == "查訂單"
    assert _say(nlg, "请问订单在哪里", "utter_greet")["text"] == "您好！有什么可以帮您？"
