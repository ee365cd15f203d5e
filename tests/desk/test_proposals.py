"""What a lead sees on the review page for an agent's answer: the customer's real questions, merged across customers.

The conversations are built from Rasa's own events (rasa.shared.core.events) and served as Rasa's HTTP API
serves a tracker (`current_state`), the way the desk reads them; agents answer through the desk's API.
"""

from __future__ import annotations

import csv
import time
from typing import List

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationPaused, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from desk.transcript import questions_for_answer
from kefu.core.payloads import AGENT_HUMAN, AGENT_KEY, HANDOFF_ACTION
from retrain.config import HandoffQAConfig
from retrain.intake import Conversation, turns_from_events
from retrain.signals import handoff_pairs
from retrieval.loaders import load_qa
from tests.desk.conftest import post

pytestmark = pytest.mark.asyncio

GIFT_CARD_ANSWER = ("Yes: gift cards from $10 to $500 are on the Gift cards page; they arrive by email within "
                    "minutes and never expire.")


class Talk:
    """A conversation as Rasa records it, one event at a time."""

    def __init__(self) -> None:
        self.t = time.time() - 600
        self.events: List[Event] = [ActionExecuted("action_session_start", timestamp=self._tick()),
                                    SessionStarted(timestamp=self._tick()), ActionExecuted("action_listen", timestamp=self._tick())]

    def _tick(self) -> float:
        self.t += 1
        return self.t

    def customer(self, text: str, intent: str, confidence: float = 0.9, kb: str | None = None) -> "Talk":
        parse = {"intent": {"name": intent, "confidence": confidence},
                 "intent_ranking": [{"name": intent, "confidence": confidence}]}
        if kb:
            parse["kb"] = {"match": kb, "p_answer": 0.6 if kb == "low" else 0.1, "question": None}
        self.events.append(UserUttered(text, intent=parse["intent"], parse_data=parse, timestamp=self._tick(),
                                       input_channel="socketio"))
        return self

    def bot(self, action: str, text: str) -> "Talk":
        self.events += [ActionExecuted(action, timestamp=self._tick()), BotUttered(text, timestamp=self._tick()),
                        ActionExecuted("action_listen", timestamp=self._tick())]
        return self

    def handoff(self) -> "Talk":
        """What action_handoff_to_human records (bot/actions/handoff.py): slot, messages, pause."""
        self.events += [ActionExecuted(HANDOFF_ACTION, timestamp=self._tick()),
                        SlotSet("handoff_requested", True, timestamp=self._tick()),
                        BotUttered("I'm passing you to a member of our support team.", data={"custom": {"handoff": True}},
                                   timestamp=self._tick()),
                        BotUttered("You are number 1 in the queue.", timestamp=self._tick()),
                        ConversationPaused(timestamp=self._tick())]
        return self

    def while_paused(self, text: str) -> "Talk":
        """Paused: Rasa records the message with its parse and predicts nothing."""
        return self.customer(text, "faq", 0.41)

    def tracker(self, sender: str) -> dict:
        return DialogueStateTracker.from_events(sender, self.events).current_state(EventVerbosity.AFTER_RESTART)


def asked_for_a_person() -> Talk:
    """Greets, asks a question the bot cannot answer, asks for a person, gives an order number and nudges while
    waiting, then asks the question again in other words."""
    return (Talk().customer("hi", "greet").bot("utter_greet", "Hi! How can I help?")
            .customer("do you sell gift cards?", "faq", 0.62, kb="low")
            .bot("action_search_kb", "I'm not sure I found the right answer; could you rephrase?")
            .customer("I want to talk to a person", "human_handoff", 0.97).handoff()
            .while_paused("104233").while_paused("hello??")
            .while_paused("can I buy one as a birthday present for my mum"))


def fell_back_twice() -> Talk:
    """Two fallbacks in a row (the same question rephrased) and the bot hands off by itself."""
    return (Talk().customer("where is my parcel", "order_status", 0.95).bot("utter_ask_order_number", "Your order number?")
            .customer("104233", "inform", 0.9).bot("action_order_status", "Order 104233 was delivered yesterday.")
            .customer("can I pay in instalments with klarna", "nlu_fallback", 0.31).bot("utter_default", "Sorry, I didn't get that.")
            .customer("klarna pay later possible?", "nlu_fallback", 0.28).handoff())


async def _agent_answers(fake_rasa, queue, agent, cid: str, talk: Talk, answer: str) -> None:
    fake_rasa.trackers[cid] = talk.tracker(cid)
    row = queue.enqueue(cid, "customer_asked", "socketio")
    assert (await post(agent, f"/api/handoffs/{row.id}/claim")).status == 200
    response = await post(agent, f"/api/handoffs/{row.id}/reply", {"text": answer})
    assert response.status == 200, await response.text()
    assert (await post(agent, f"/api/handoffs/{row.id}/close")).status == 200


async def test_the_lead_sees_the_question_asked_before_the_handoff_and_while_waiting(desk, desk_config, queue, fake_rasa):
    make_client, _ = desk
    alice = await make_client("alice")
    await _agent_answers(fake_rasa, queue, alice, "web-7", asked_for_a_person(), GIFT_CARD_ANSWER)
    lead = await make_client("lena")
    [proposal] = (await (await lead.get("/api/proposals")).json())["proposals"]
    # Not "I want to talk to a person", not "104233", not "hello??", not "hi".
    assert proposal["questions"] == ["do you sell gift cards?", "can I buy one as a birthday present for my mum"]
    assert proposal["answer"] == GIFT_CARD_ANSWER and proposal["agent_id"] == "alice"
    # Accepted as shown: one knowledge-base row per question, under one id.
    assert (await post(lead, f"/api/proposals/{proposal['id']}/accept")).status == 200
    entries = load_qa([desk_config.path(desk_config.kb_file)])
    assert [(e.question, e.answer) for e in entries] == [(q, GIFT_CARD_ANSWER) for q in proposal["questions"]]
    assert len({e.id for e in entries}) == 1


async def test_a_handoff_after_two_fallbacks_pairs_both_rephrasings(desk, queue, fake_rasa):
    make_client, _ = desk
    bob = await make_client("bob")
    answer = "Yes, choose Klarna at checkout to pay in 3 interest-free instalments on orders over $35."
    await _agent_answers(fake_rasa, queue, bob, "web-8", fell_back_twice(), answer)
    lead = await make_client("lena")
    [proposal] = (await (await lead.get("/api/proposals")).json())["proposals"]
    # The order question the bot answered earlier is not part of it.
    assert proposal["questions"] == ["can I pay in instalments with klarna", "klarna pay later possible?"]


async def test_customers_asking_the_same_thing_answered_alike_make_one_entry_with_every_question(desk, desk_config, queue, fake_rasa):
    make_client, _ = desk
    alice, bob = await make_client("alice"), await make_client("bob")
    asks = [("g1", "do you sell gift cards?"), ("g2", "can I buy a gift voucher for a friend"), ("g3", "gift card available?"),
            ("g4", "do you sell gift cards?")]  # the same words as g1
    for i, (cid, question) in enumerate(asks):
        talk = Talk().customer(question, "faq", 0.5, kb="low").bot("action_search_kb", "Could you rephrase?")
        talk.customer("human please", "human_handoff", 0.96).handoff()
        # Agents paste the same answer (one with other spacing and case): alike for the knowledge base.
        answer = GIFT_CARD_ANSWER if i % 2 == 0 else "  " + GIFT_CARD_ANSWER.upper() + " "
        await _agent_answers(fake_rasa, queue, alice if i % 2 == 0 else bob, cid, talk, answer)
    other = Talk().customer("can I change my delivery address", "faq", 0.4, kb="low").bot("action_search_kb", "Could you rephrase?")
    other.customer("agent", "human_handoff", 0.9).handoff()
    await _agent_answers(fake_rasa, queue, alice, "a1", other, "Yes, until it ships: open the order and press 'Change address'.")

    lead = await make_client("lena")
    proposals = (await (await lead.get("/api/proposals")).json())["proposals"]
    assert len(proposals) == 2
    gift = next(p for p in proposals if "gift" in p["question"])
    assert gift["questions"] == ["do you sell gift cards?", "can I buy a gift voucher for a friend", "gift card available?"]
    assert len(gift["conversations"]) == 4 and gift["agent_id"] == "alice, bob"
    # The lead drops one variant and accepts: every member is decided, the other answer stays open.
    response = await post(lead, f"/api/proposals/{gift['id']}/accept",
                          {"question": "do you sell gift cards?\ngift card available?\n"})
    assert response.status == 200 and len((await response.json())["proposal"]["members"]) == 4
    assert [p["answer"] for p in (await (await lead.get("/api/proposals")).json())["proposals"]] == [proposals[1 - proposals.index(gift)]["answer"]]
    assert (await post(lead, f"/api/proposals/{gift['members'][-1]}/accept")).status == 409

    # Next day a customer asks again and is answered alike: the variant already there is not written twice.
    talk = Talk().customer("gift card available?", "faq", 0.5, kb="low").bot("action_search_kb", "Could you rephrase?")
    talk.customer("can I get one delivered by email?", "faq", 0.45)
    talk.customer("person", "human_handoff", 0.9).handoff()
    await _agent_answers(fake_rasa, queue, bob, "g5", talk, GIFT_CARD_ANSWER)
    again = next(p for p in (await (await lead.get("/api/proposals")).json())["proposals"] if "gift" in p["question"])
    assert again["questions"] == ["gift card available?", "can I get one delivered by email?"]
    assert (await post(lead, f"/api/proposals/{again['id']}/accept")).status == 200
    with open(desk_config.path(desk_config.kb_file), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["question"] for r in rows] == ["do you sell gift cards?", "gift card available?", "can I get one delivered by email?"]
    assert {r["answer"] for r in rows} == {GIFT_CARD_ANSWER}


async def test_the_retrain_pairs_replies_posted_to_rasas_api_with_the_same_questions():
    """A handoff tool other than the desk posts the agent's reply straight to Rasa: the retrain's pairing gives the
    same questions the desk proposes for the same conversation."""
    answer = {"event": "bot", "text": GIFT_CARD_ANSWER, "timestamp": time.time(), "metadata": {AGENT_KEY: AGENT_HUMAN}}
    for talk in (asked_for_a_person(), fell_back_twice()):
        events = talk.tracker("x")["events"]
        desk_questions = questions_for_answer(events)
        conversation = Conversation("x", "tracker_store", turns_from_events(events + [answer], 0.0, AGENT_KEY, AGENT_HUMAN))
        pairs = handoff_pairs([conversation], HandoffQAConfig())
        assert [p.question for p in pairs] == desk_questions and len(desk_questions) == 2
        assert {p.answer for p in pairs} == {GIFT_CARD_ANSWER} and len({p.id for p in pairs}) == 1
