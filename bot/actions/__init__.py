"""Custom actions of kefu, served by `rasa run actions --actions bot.actions`."""

from bot.actions.handoff import ActionHandoffToHuman
from bot.actions.kb_actions import ActionAnswerFromKB, ActionAnswerKBPick, ActionSearchKB
from bot.actions.order_actions import (
    ActionCancelOrder,
    ActionOrderStatus,
    ValidateCancelOrderForm,
    ValidateOrderStatusForm,
)

__all__ = [
    "ActionAnswerFromKB",
    "ActionAnswerKBPick",
    "ActionSearchKB",
    "ActionCancelOrder",
    "ActionHandoffToHuman",
    "ActionOrderStatus",
    "ValidateCancelOrderForm",
    "ValidateOrderStatusForm",
]
