"""Order forms: validating the order number, telling the status, cancelling."""

from __future__ import annotations

import re
from abc import abstractmethod
from datetime import date
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.orders_db import CANCELLED, DELIVERED, PROCESSING, SHIPPED, Order, OrdersDB

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


def _day(iso: Optional[str]) -> Optional[str]:
    """'2025-03-07' -> 'Friday, March 7'."""
    if not iso:
        return None
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d:%A}, {d:%B} {d.day}"


def describe_order(order: Order) -> Text:
    """What the customer is told about an order."""
    head = f"Order {order.order_number} ({order.item})"
    eta = _day(order.eta)
    if order.status == PROCESSING:
        text = f"{head} is being prepared in our warehouse and hasn't shipped yet."
        if eta:
            text += f" It should arrive by {eta}; you'll get an email with tracking as soon as it ships."
        return text
    if order.status == SHIPPED:
        text = f"Good news: your order {order.order_number} ({order.item}) has shipped"
        if order.carrier:
            text += f" with {order.carrier}"
        if order.tracking_number:
            text += f", tracking number {order.tracking_number}"
        return text + (f". Expected delivery: {eta}." if eta else ".")
    if order.status == DELIVERED:
        return (f"{head} was delivered{f' on {eta}' if eta else ''}"
                f"{f' by {order.carrier}' if order.carrier else ''}. "
                "If you can't find it, check with neighbours or your building's reception, "
                "then let me know and I'll help.")
    if order.status == CANCELLED:
        return (f"{head} was cancelled. If you had already paid, the refund reaches your "
                "original payment method within 5-10 business days.")
    return f"{head} has the status '{order.status}'."


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
            dispatcher.utter_message(text=describe_order(order))
        return _clear_form_slots()


class ActionCancelOrder(Action):
    def name(self) -> Text:
        return "action_cancel_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        number = normalise_order_number(tracker.get_slot("order_number"))
        if not number:
            dispatcher.utter_message(response="utter_invalid_order_number")
        elif tracker.get_slot("cancel_confirmed") is not True:
            dispatcher.utter_message(text=f"No problem, order {number} stays as it is. Nothing was cancelled.")
        else:
            db = OrdersDB()
            cancelled_now = db.cancel(number).cancelled
            dispatcher.utter_message(text=self._outcome_text(number, cancelled_now, db.get(number)))
        return _clear_form_slots()

    @staticmethod
    def _outcome_text(number: Text, cancelled_now: bool, order: Optional[Order]) -> Text:
        if order is None:
            return f"I couldn't find order {number}, so nothing was cancelled."
        if cancelled_now:
            return (f"Done: order {number} ({order.item}) is cancelled. You'll get a confirmation email, "
                    "and if you already paid, the refund reaches your original payment method "
                    "within 5-10 business days.")
        if order.status == CANCELLED:
            return f"Order {number} ({order.item}) was already cancelled, so there's nothing more to do."
        if order.status == SHIPPED:
            return (f"Order {number} ({order.item}) has already shipped with {order.carrier or 'the carrier'}, "
                    "so I can't cancel it anymore. Once it arrives you can return it within 30 days "
                    "for a full refund. Just ask me how returns work.")
        if order.status == DELIVERED:
            return (f"Order {number} ({order.item}) has already been delivered, so it can't be cancelled. "
                    "You can return it within 30 days of delivery for a full refund. "
                    "Just ask me how returns work.")
        return f"Order {number} has the status '{order.status}' and can't be cancelled online."
