"""The live side of the desk: a watcher that polls the queue and the trackers, and SSE fan-out to agents.

The handoff action writes the queue row in another process and Rasa stores the
customer's messages while the bot is paused; neither calls the desk. So the
watcher looks: the queue table every `poll_interval_s` (a cheap indexed query),
and each open conversation's tracker about once a second through the HTTP API.
Every change goes to each connected agent as a server-sent event: `queue` (the
whole open queue; it is short) or `conversation` (that one changed: reload it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Set

from bot.actions.handoff_queue import HandoffQueue
from desk.rasa_client import RasaClient, RasaError
from desk.transcript import last_customer_message, order_numbers

logger = logging.getLogger(__name__)
TRACKER_INTERVAL_S = 1.0


@dataclass
class Seen:
    """What the watcher last saw of one conversation's tracker."""

    events: int = 0
    last_message: Optional[str] = None
    last_message_at: Optional[float] = None
    paused: Optional[bool] = None
    orders: List[str] = field(default_factory=list)
    fetched_at: float = 0.0


class Hub:
    """Connected agents' event queues."""

    def __init__(self) -> None:
        self.clients: Dict[asyncio.Queue, str] = {}

    def connect(self, agent: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        self.clients[queue] = agent
        return queue

    def disconnect(self, queue: asyncio.Queue) -> None:
        self.clients.pop(queue, None)

    def close_all(self) -> None:
        """At shutdown: every stream handler ends (they wait for None), so the server stops promptly."""
        for queue in list(self.clients):
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                pass

    def agents(self) -> Set[str]:
        return set(self.clients.values())

    def publish(self, kind: str, data: Any) -> None:
        message = f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        for queue in list(self.clients):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # a stalled client: drop it, its page reconnects
                self.disconnect(queue)


class Watcher:
    def __init__(self, queue: HandoffQueue, rasa: RasaClient, hub: Hub, interval_s: float):
        self.queue = queue
        self.rasa = rasa
        self.hub = hub
        self.interval_s = interval_s
        self.seen: Dict[str, Seen] = {}
        self.snapshot: List[Dict[str, Any]] = []
        self._last_published: Optional[str] = None
        self.first_seen: Dict[int, float] = {}  # handoff id -> when the watcher first published it
        self.visible_after_s: List[float] = []  # requested -> published, for the report
        self._task: Optional[asyncio.Task] = None
        self._semaphore = asyncio.Semaphore(8)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watcher must outlive a bad tick (database busy, Rasa restarting)
                logger.exception("desk watcher tick failed")
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> None:
        rows = await asyncio.to_thread(self.queue.open_rows)
        now = time.monotonic()
        due = [r for r in rows if now - self.seen.get(r.conversation_id, Seen()).fetched_at >= TRACKER_INTERVAL_S
               or r.conversation_id not in self.seen]
        await asyncio.gather(*(self._look(r.id, r.conversation_id) for r in due))
        open_ids = {r.conversation_id for r in rows}
        for gone in set(self.seen) - open_ids:
            del self.seen[gone]
        items = []
        for row in rows:
            seen = self.seen.get(row.conversation_id, Seen())
            item = row.to_dict()
            item.update(last_message=seen.last_message or row.last_message, last_message_at=seen.last_message_at,
                        order_number=row.order_number or (seen.orders[0] if seen.orders else None),
                        bot_paused=seen.paused)
            items.append(item)
        self.snapshot = items
        key = json.dumps([{k: v for k, v in i.items() if k != "waiting_s"} for i in items], sort_keys=True)
        if key != self._last_published:
            self._last_published = key
            self.hub.publish("queue", {"items": items})
            for item in items:
                if item["id"] not in self.first_seen:
                    self.first_seen[item["id"]] = time.time()
                    try:
                        requested = datetime.fromisoformat(item["requested_at"]).timestamp()
                        self.visible_after_s.append(round(self.first_seen[item["id"]] - requested, 3))
                        logger.info("handoff %s visible to agents %.2f s after it was requested", item["id"],
                                    self.visible_after_s[-1])
                    except (TypeError, ValueError):
                        pass
            if len(self.first_seen) > 10000:  # a long-running desk: keep the recent ones only
                for handoff_id in sorted(self.first_seen)[:5000]:
                    del self.first_seen[handoff_id]
                del self.visible_after_s[:-1000]

    async def _look(self, handoff_id: int, conversation_id: str) -> None:
        async with self._semaphore:
            try:
                tracker = await self.rasa.tracker(conversation_id)
            except (RasaError, OSError, asyncio.TimeoutError) as exc:
                logger.warning("desk: cannot read the tracker of %s: %s", conversation_id, exc)
                self.seen.setdefault(conversation_id, Seen()).fetched_at = time.monotonic()
                return
        events = tracker.get("events") or []
        seen = self.seen.setdefault(conversation_id, Seen())
        seen.fetched_at = time.monotonic()
        changed = len(events) != seen.events or bool(tracker.get("paused")) != seen.paused
        if not changed:
            return
        last = last_customer_message(events)
        seen.events, seen.paused = len(events), bool(tracker.get("paused"))
        seen.orders = order_numbers(tracker)
        if last is not None:
            seen.last_message, seen.last_message_at = last.get("text"), last.get("timestamp")
        self.hub.publish("conversation", {"id": handoff_id, "conversation_id": conversation_id})
