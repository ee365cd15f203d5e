"""Handing the conversation over to a person."""

from __future__ import annotations

import logging
from typing import List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.orders_db import OrdersDB

logger = logging.getLogger(__name__)


def _last_message(tracker: Tracker) -> Optional[Text]:
    return (tracker.latest_message or {}).get("text")


class ActionHandoffToHuman(Action):
    """Records the request in the `handoffs` table for the agents' queue and tells
    the customer. A failed write is logged, never shown: the customer still gets
    the contact details."""

    def name(self) -> Text:
        return "action_handoff_to_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        try:
            OrdersDB().record_handoff(
                conversation_id=tracker.sender_id,
                last_message=_last_message(tracker),
                order_number=tracker.get_slot("order_number"),
            )
        except Exception:  # noqa: BLE001 - the customer must be answered anyway
            logger.exception("could not record the handoff of conversation %s", tracker.sender_id)
        dispatcher.utter_message(response="utter_handoff")
        # A form interrupted by the handoff is abandoned: forget its half-filled slots.
        return [SlotSet("handoff_requested", True), SlotSet("order_number", None),
                SlotSet("order_item", None), SlotSet("cancel_confirmed", None)]
