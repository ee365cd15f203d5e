"""Handing the conversation over to a person.

The action queues the conversation for the agent desk (bot/actions/handoff_queue.py),
tells the customer what happens next, and pauses the bot with Rasa's own
`ConversationPaused` event: from then on Rasa stores the customer's messages but
predicts nothing, until the desk appends `ConversationResumed` (hand back or close).

What the customer hears always has a next step, never silence:
- within opening hours with an agent online: their place in the queue;
- nobody online: leave a message here, a person answers in this chat (or by email);
- outside opening hours (desk.yml `hours`): when the team is back, leave a message.
If the queue cannot be written, the bot is *not* paused (nobody would ever see
the conversation): the customer gets the phone and email contacts instead.

Why it was handed over is recorded with the row: the customer asked, NLU fell
back twice in a row, or the knowledge base was unsure twice (the rules decide
when; the action reads the reason off the latest message).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.handoff_queue import (
    BOT_DECISION,
    CUSTOMER_ASKED,
    KB_LOW,
    MODE_CLOSED,
    MODE_LIVE,
    MODE_NO_AGENT,
    REPEATED_FALLBACK,
    HandoffQueue,
)
from bot.actions.opening_hours import HandoffSettings
from kefu.core.payloads import HANDOFF_ACTION, NLU_FALLBACK, RETRIEVAL_INTENT
from kefu.core.text import conversation_language

logger = logging.getLogger(__name__)

HANDOFF_INTENT = "human_handoff"
# What the customer is told after utter_handoff, per mode.
MODE_RESPONSES = {MODE_LIVE: "utter_handoff_queue_position", MODE_NO_AGENT: "utter_handoff_no_agent",
                  MODE_CLOSED: "utter_handoff_closed"}
QUEUE_FAILED_RESPONSE = "utter_handoff_unavailable"
# Slots of a form interrupted by the handoff: abandoned, so forgotten.
FORM_SLOTS = ("order_number", "order_item", "cancel_confirmed")


def _last_message(tracker: Tracker) -> Optional[Text]:
    return (tracker.latest_message or {}).get("text")


def handoff_reason(tracker: Tracker) -> Text:
    """Why the rules ran the handoff, read from the latest message's intent."""
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    if intent == HANDOFF_INTENT:
        return CUSTOMER_ASKED
    if intent == NLU_FALLBACK:
        return REPEATED_FALLBACK
    if intent == RETRIEVAL_INTENT:
        return KB_LOW
    return BOT_DECISION


def customer_language(tracker: Tracker) -> Text:
    texts = [e.get("text") for e in reversed(tracker.events or []) if e.get("event") == "user"]
    return conversation_language([_last_message(tracker)] + texts)


def choose_mode(settings: HandoffSettings, agents_online: int) -> Text:
    if not settings.hours.is_open():
        return MODE_CLOSED
    return MODE_LIVE if agents_online > 0 else MODE_NO_AGENT


class ActionHandoffToHuman(Action):
    def name(self) -> Text:
        return HANDOFF_ACTION

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        language = customer_language(tracker)
        reason = handoff_reason(tracker)
        forget_form = [SlotSet("handoff_requested", True)] + [SlotSet(name, None) for name in FORM_SLOTS]
        try:
            settings = HandoffSettings.load()
            queue = HandoffQueue()
            mode = choose_mode(settings, queue.agents_online(settings.presence_timeout_s))
            row = queue.enqueue(tracker.sender_id, reason=reason, channel=tracker.get_latest_input_channel(),
                                language=language, mode=mode, last_message=_last_message(tracker),
                                order_number=tracker.get_slot("order_number"))
            position = queue.position(row.id)
        except Exception:  # noqa: BLE001 - the customer must be answered anyway
            logger.exception("could not queue the handoff of conversation %s", tracker.sender_id)
            dispatcher.utter_message(response=QUEUE_FAILED_RESPONSE)
            return forget_form
        logger.info("handoff %s of %s: reason %s, mode %s, position %s", row.id, tracker.sender_id, reason, mode,
                    position)
        dispatcher.utter_message(response="utter_handoff")
        extra: Dict[Text, Any] = {"queue_position": max(position, 1),
                                  "opening_hours": settings.hours.describe(language)}
        dispatcher.utter_message(response=MODE_RESPONSES[mode], **extra)
        return forget_form + [ConversationPaused()]
