"""A closed-loop load generator for the REST channel: N concurrent customers, every request recorded.

Each request is a new message from one of `senders` simulated customers (a
sender writes at most once per `sender_gap_s`, under the channels' rate limit);
the result keeps, per request, the send time, latency, HTTP status and
(sender, text), so a test can check that every 200-acknowledged message is in
the tracker store, and a bench can cut the run into before / during / after.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import aiohttp

MESSAGES = ("hi", "where is my order 104233?", "what are your opening hours?", "thanks", "do you ship abroad?")


@dataclass
class Record:
    started: float      # time.monotonic() at send
    seconds: float
    status: int         # 0: no HTTP answer (connection error, timeout)
    sender: str
    text: str
    error: str = ""     # why it failed: the exception's class, or the HTTP status and the body's start


@dataclass
class Run:
    records: List[Record] = field(default_factory=list)

    def between(self, start: float, end: float) -> "Run":
        return Run([r for r in self.records if start <= r.started < end])

    def summary(self) -> Dict[str, float]:
        ok = sorted(r.seconds for r in self.records if r.status == 200)
        span = (max(r.started + r.seconds for r in self.records) - min(r.started for r in self.records)) if self.records else 0.0
        failed = [r for r in self.records if r.status != 200]
        figures = {"sent": len(self.records), "failed": len(failed),
                   "msgs_per_s": round(len(ok) / span, 1) if span else 0.0,
                   "p50_ms": percentile_ms(ok, 50), "p95_ms": percentile_ms(ok, 95), "p99_ms": percentile_ms(ok, 99)}
        if failed:
            figures["errors"] = dict(Counter(r.error for r in failed).most_common(5))
        return figures

    def acknowledged(self) -> List[Record]:
        return [r for r in self.records if r.status == 200]


def percentile_ms(sorted_seconds: Sequence[float], q: float) -> float:
    if not sorted_seconds:
        return 0.0
    index = min(len(sorted_seconds) - 1, max(0, int(round(q / 100 * len(sorted_seconds) + 0.5)) - 1))
    return round(sorted_seconds[index] * 1000, 1)


async def generate(url: str, duration_s: float, concurrency: int, prefix: str, run: Optional[Run] = None,
                   rate_per_s: Optional[float] = None, timeout_s: float = 60, messages: Sequence[str] = MESSAGES,
                   stop: Optional[asyncio.Event] = None) -> Run:
    """POSTs to `url` (…/webhooks/rest/webhook) for `duration_s` (or until `stop`); open loop when `rate_per_s` is set."""
    run = run if run is not None else Run()
    counter = itertools.count()
    deadline = time.monotonic() + duration_s
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:

        async def one() -> None:
            n = next(counter)
            sender, text = f"{prefix}-{n % max(concurrency * 4, 1)}", f"{messages[n % len(messages)]} #{n}"
            started = time.monotonic()
            status, error = 0, ""
            try:
                async with session.post(url, data=json.dumps({"sender": sender, "message": text}),
                                        headers={"Content-Type": "application/json"}) as response:
                    body = await response.read()
                    status = response.status
                    if status != 200:
                        error = f"{status} {body[:80].decode(errors='replace').strip()}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                status, error = 0, f"{type(e).__name__} {str(e)[:80]}".strip()
            run.records.append(Record(started, time.monotonic() - started, status, sender, text, error))

        def done() -> bool:
            return time.monotonic() >= deadline or (stop is not None and stop.is_set())

        if rate_per_s:  # open loop: a fixed arrival rate, whatever the latency
            tasks = set()
            next_at = time.monotonic()
            while not done():
                task = asyncio.ensure_future(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                next_at += 1.0 / rate_per_s
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if tasks:
                await asyncio.wait(tasks)
        else:
            async def worker() -> None:
                while not done():
                    await one()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
    return run
