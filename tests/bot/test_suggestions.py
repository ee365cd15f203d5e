""""Did you mean": where the bot has no answer, the knowledge base's likely questions as buttons, and the pick answered."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import ActionAnswerKBPick
from bot.nlg import BilingualNLG

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DOMAIN = Domain.load(str(ROOT / "domain.yml"))

CANDIDATES = [
    {"answer": "Open Settings > Security and turn on two-step sign-in.", "question": "how do I turn on two-factor login",
     "source": "https://help.example/2fa", "id": "account-2fa-01-a", "score": 0.47},
    {"answer": "Your wishlist is under Account > Wishlist.", "question": "where is my wishlist", "source": None,
     "id": "wishlist-01-a", "score": 0.39},
    {"answer": "We never store your card number.", "question": "do you keep my card details", "source": None,
     "id": "pay-security-01-a", "score": 0.37},
]


def kb_payload(suggest: int) -> dict:
    return {"match": "none", "route": "none", "p_answer": 0.35, "intent_before": "nlu_fallback", "top_k": CANDIDATES,
            "suggest": suggest}


def say(text: str, response: str, suggest: int, loop: str = None) -> dict:
    events = [UserUttered(text, {"name": "nlu_fallback", "confidence": 0.45}, parse_data={
        "text": text, "intent": {"name": "nlu_fallback", "confidence": 0.45}, "kb": kb_payload(suggest)})]
    if loop:
        events.insert(0, ActiveLoop(loop))
    tracker = DialogueStateTracker.from_events("customer", events, slots=PROJECT_DOMAIN.slots)
    nlg = BilingualNLG(EndpointConfig(responses_zh=str(ROOT / "data/responses_zh.yml")), None)
    nlg.responses = PROJECT_DOMAIN.responses
    return asyncio.run(nlg.generate(response, tracker, "rest"))


def test_no_answer_offers_the_likely_questions_before_a_person():
    reply = say("can I add an extra security code when logging in", "utter_please_rephrase", suggest=2)
    assert reply["text"].startswith("Sorry, I didn't quite get that.") and reply["text"].endswith("Or did you mean one of these?")
    assert reply["buttons"] == [
        {"title": "how do I turn on two-factor login", "payload": '/kb_pick{"kb_id": "account-2fa-01-a"}'},
        {"title": "where is my wishlist", "payload": '/kb_pick{"kb_id": "wishlist-01-a"}'},
        {"title": "Talk to a human", "payload": "/human_handoff"},
    ]


def test_chinese_customers_get_the_offer_in_chinese_and_their_script():
    CANDIDATES.append({"answer": "登录时可以开启两步验证。", "question": "怎么开启两步验证", "source": None, "id": "zh-2fa", "score": 0.5})
    try:
        reply = say("登錄的時候可以加驗證碼嗎", "utter_kb_no_answer", suggest=4)
    finally:
        CANDIDATES.pop()
    assert reply["text"].endswith("或者，您想問的是以下問題嗎？")
    assert reply["buttons"][3] == {"title": "怎麼開啓兩步驗證", "payload": '/kb_pick{"kb_id": "zh-2fa"}'}


def test_nothing_is_offered_without_likely_questions_in_a_form_or_with_other_responses():
    plain = say("what is 17 times 23", "utter_out_of_scope", suggest=0)
    assert "buttons" not in plain and "did you mean" not in plain["text"]
    assert say("can I add an extra security code", "utter_please_rephrase", suggest=3, loop="order_status_form")["buttons"] == [
        {"title": "Talk to a human", "payload": "/human_handoff"}]
    assert "did you mean" not in say("hello", "utter_greet", suggest=3)["text"]


def pick_tracker(entry_id: str, suggest: int = 2) -> Tracker:
    payload = "/kb_pick" + json.dumps({"kb_id": entry_id})
    events = [{"event": "user", "text": "can I add an extra security code when logging in",
               "parse_data": {"intent": {"name": "nlu_fallback"}, "kb": kb_payload(suggest)}},
              {"event": "bot", "text": "Sorry, I didn't quite get that."},
              {"event": "user", "text": payload, "parse_data": {"intent": {"name": "kb_pick"}, "kb": {"match": "none"}}}]
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    return Tracker("customer", {name: None for name in domain["slots"]},
                   {"text": payload, "intent": {"name": "kb_pick", "confidence": 1.0},
                    "entities": [{"entity": "kb_id", "value": entry_id}]}, events, False, None, {}, "action_listen")


def test_the_picked_question_is_answered_with_its_source():
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAnswerKBPick().run(dispatcher, pick_tracker("account-2fa-01-a"), {}))
    assert dispatcher.messages[0]["text"] == "Open Settings > Security and turn on two-step sign-in.\n\nSource: https://help.example/2fa"
    assert dispatcher.messages[0]["custom"]["kb"]["id"] == "account-2fa-01-a" and dispatcher.messages[0]["custom"]["kb"]["picked"]


def test_a_pick_that_was_never_offered_gets_the_no_answer_response():
    for entry_id in ("pay-security-01-a", "size-guide-01-a"):  # a candidate past the offered two; an entry never shown
        dispatcher = CollectingDispatcher()
        asyncio.run(ActionAnswerKBPick().run(dispatcher, pick_tracker(entry_id), {}))
        assert len(dispatcher.messages) == 1
        assert dispatcher.messages[0]["response"] == "utter_kb_no_answer" and not dispatcher.messages[0]["text"]


def test_on_wechat_the_suggestions_are_numbered_and_a_number_picks_one():
    from bot.channels.wechat.render import render

    reply = say("can I add an extra security code when logging in", "utter_kb_no_answer", suggest=2)
    text, choices = render([reply])
    assert "1. how do I turn on two-factor login\n2. where is my wishlist\n3. Talk to a human" in text
    assert choices["1"] == '/kb_pick{"kb_id": "account-2fa-01-a"}' and choices["3"] == "/human_handoff"
