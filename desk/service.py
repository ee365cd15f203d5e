"""What agents do to a handed-off conversation: claim, reply, hand back, close, transfer.

Each operation checks the queue row first (an atomic conditional update, so two
agents never both hold a conversation), then writes to the tracker through the
Rasa HTTP API. Handing back or closing appends Rasa's `resume` event and an
`action_listen`, so the next customer message is predicted as if the bot had
just listened: the rules and policies continue with the conversation's context.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from bot.actions.handoff_queue import CLAIMED, CLOSED, RETURNED, ConflictError, Handoff, HandoffQueue
from bot.actions.orders_db import OrdersDB
from desk.accounts import Accounts, User
from desk.config import DeskConfig
from desk.delivery import Delivery, agent_event, desk_event
from desk.live import Hub
from desk.proposals import Proposals
from desk.rasa_client import RasaClient
from desk.transcript import order_numbers, questions_for_answer, turns

logger = logging.getLogger(__name__)


class TooLong(ValueError):
    """A reply over the configured limit."""


@dataclass
class Outcome:
    handoff: Handoff
    delivered: str

    def to_dict(self) -> Dict[str, Any]:
        return {"handoff": self.handoff.to_dict(), "delivered": self.delivered}


def resume_events() -> List[Dict[str, Any]]:
    return [{"event": "slot", "name": "handoff_requested", "value": False},
            {"event": "resume"}, {"event": "action", "name": "action_listen"}]


class DeskService:
    def __init__(self, config: DeskConfig, queue: HandoffQueue, rasa: RasaClient, delivery: Delivery,
                 accounts: Accounts, proposals: Proposals, hub: Hub):
        self.config = config
        self.queue = queue
        self.rasa = rasa
        self.delivery = delivery
        self.accounts = accounts
        self.proposals = proposals
        self.hub = hub
        self.orders = OrdersDB(config.orders_db)

    async def _row(self, handoff_id: int) -> Handoff:
        return await asyncio.to_thread(self.queue.get, handoff_id)

    def _changed(self, row: Handoff) -> None:
        self.hub.publish("conversation", {"id": row.id, "conversation_id": row.conversation_id})

    async def conversation(self, handoff_id: int) -> Dict[str, Any]:
        """The row, the transcript and the customer's orders."""
        row = await self._row(handoff_id)
        tracker = await self.rasa.tracker(row.conversation_id)
        numbers = ([row.order_number] if row.order_number else []) + order_numbers(tracker)
        orders, emails = [], set()
        for number in dict.fromkeys(numbers):
            order = await asyncio.to_thread(self.orders.get, number)
            if order:
                orders.append(order.__dict__)
                emails.add(order.email)
        return {"handoff": row.to_dict(), "paused": bool(tracker.get("paused")),
                "turns": [t.to_dict() for t in turns(tracker.get("events") or [])], "orders": orders,
                "slots": {k: v for k, v in (tracker.get("slots") or {}).items() if v not in (None, [], "")}}

    async def claim(self, handoff_id: int, user: User) -> Handoff:
        row = await asyncio.to_thread(self.queue.claim, handoff_id, user.username)
        self._changed(row)
        return row

    async def _held(self, handoff_id: int, user: User, lead_may: bool) -> Handoff:
        row = await self._row(handoff_id)
        if row.status != CLAIMED:
            raise ConflictError(f"conversation {handoff_id} is {row.status}; claim it first")
        if row.claimed_by != user.username and not (lead_may and user.is_lead):
            raise ConflictError(f"conversation {handoff_id} is held by {row.claimed_by}")
        return row

    async def reply(self, handoff_id: int, user: User, text: str) -> Outcome:
        text = (text or "").strip()
        if not text:
            raise ValueError("the reply is empty")
        if len(text) > self.config.max_reply_chars:
            raise TooLong(f"replies are limited to {self.config.max_reply_chars} characters")
        row = await self._held(handoff_id, user, lead_may=False)
        tracker = await self.rasa.tracker(row.conversation_id)
        questions = questions_for_answer(tracker.get("events") or [])
        delivered = await self.delivery.send(row.conversation_id, tracker, [agent_event(text, user.username)])
        await asyncio.to_thread(self.proposals.propose, row.conversation_id, questions, text, user.username)
        self._changed(row)
        return Outcome(row, delivered)

    async def _finish(self, handoff_id: int, user: User, status: str, text: Optional[str]) -> Outcome:
        row = await self._held(handoff_id, user, lead_may=True)
        text = (text or "").strip() or self.config.text("handback" if status == RETURNED else "close", row.language)
        if len(text) > self.config.max_reply_chars:
            raise TooLong(f"messages are limited to {self.config.max_reply_chars} characters")
        tracker = await self.rasa.tracker(row.conversation_id)
        events = ([desk_event(text, status)] if text else []) + resume_events()
        delivered = await self.delivery.send(row.conversation_id, tracker, events)
        row = await asyncio.to_thread(self.queue.finish, handoff_id, user.username, status, user.is_lead)
        self._changed(row)
        return Outcome(row, delivered)

    async def hand_back(self, handoff_id: int, user: User, text: Optional[str] = None) -> Outcome:
        return await self._finish(handoff_id, user, RETURNED, text)

    async def close(self, handoff_id: int, user: User, text: Optional[str] = None) -> Outcome:
        return await self._finish(handoff_id, user, CLOSED, text)

    async def transfer(self, handoff_id: int, user: User, to: str) -> Handoff:
        target = await asyncio.to_thread(self.accounts.get, to)
        if target is None or not target.active:
            raise KeyError(f"no active desk user {to!r}")
        row = await asyncio.to_thread(self.queue.transfer, handoff_id, None if user.is_lead else user.username,
                                      target.username)
        self._changed(row)
        return row
