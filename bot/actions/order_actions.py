"""Order forms: validating the order number, telling the status, cancelling."""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.order_texts import cancel_outcome, customer_language, describe_order, in_customer_script, order_kept
from bot.actions.orders_db import OrdersDB

ORDER_NUMBER_DIGITS = 6

# Slots the order forms fill; cleared once an order action has answered.
FORM_SLOTS = ("order_number", "order_item", "cancel_confirmed")


def normalise_order_number(value: Any) -> Optional[str]:
    """The six-digit order number in what the customer wrote, or None.

    "#104233", "order 104233" and "104 233" all give "104233". A six-digit run
    wins over other digits, so "104233, placed on the 3rd" works too.
    """
    if value is None:
        return None
    if isinstance(value, list):
        value = value[-1] if value else ""
    runs = re.findall(r"\d+", str(value))
    six = [r for r in runs if len(r) == ORDER_NUMBER_DIGITS]
    number = six[0] if len(six) == 1 else "".join(runs)
    return number if len(number) == ORDER_NUMBER_DIGITS else None


class OrderNumberValidation(FormValidationAction):
    """Shared by both order forms: a six-digit number of an order that exists."""

    @abstractmethod
    def name(self) -> Text:  # abstract: the action server must not register this base
        ...

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        number = normalise_order_number(slot_value)
        if number is None:
            dispatcher.utter_message(response="utter_invalid_order_number")
            return {"order_number": None}
        order = OrdersDB().get(number)
        if order is None:
            # The slot is cleared, so the response gets the number as a variable.
            dispatcher.utter_message(response="utter_order_not_found", order_number=number)
            return {"order_number": None}
        return {"order_number": number, "order_item": order.item}


class ValidateOrderStatusForm(OrderNumberValidation):
    def name(self) -> Text:
        return "validate_order_status_form"


class ValidateCancelOrderForm(OrderNumberValidation):
    def name(self) -> Text:
        return "validate_cancel_order_form"


def _clear_form_slots() -> List[EventType]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


class ActionOrderStatus(Action):
    def name(self) -> Text:
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        number = normalise_order_number(tracker.get_slot("order_number"))
        order = OrdersDB().get(number) if number else None
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_number=number or "")
        else:
            dispatcher.utter_message(text=in_customer_script(describe_order(order, customer_language(tracker)), tracker))
        return _clear_form_slots()


class ActionCancelOrder(Action):
    def name(self) -> Text:
        return "action_cancel_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        number = normalise_order_number(tracker.get_slot("order_number"))
        if not number:
            dispatcher.utter_message(response="utter_invalid_order_number")
        elif tracker.get_slot("cancel_confirmed") is not True:
            dispatcher.utter_message(text=in_customer_script(order_kept(number, customer_language(tracker)), tracker))
        else:
            db = OrdersDB()
            cancelled_now = db.cancel(number).cancelled
            dispatcher.utter_message(text=in_customer_script(cancel_outcome(number, cancelled_now, db.get(number), customer_language(tracker)), tracker))
        return _clear_form_slots()
