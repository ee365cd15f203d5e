"""Conversation lock stores side by side: what one message's lock costs, and whether racing processes share a conversation.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/lock_store.py [--messages 2000] [--processes 3] [--rounds 200]

Stores: Rasa 3.6's `RedisLockStore`, kefu's (`bot/redis_lock_store.py`: owner leases,
atomic tickets) on one throw-away redis-server (loopback, started here), and kefu's
SQLite store (`bot/lock_store.py`, `kefu run --workers N`).
- **per message**: `async with store.lock(conversation)` taken and given back
  `--messages` times over 50 conversations, one process, nobody waiting: p50/p99 ms.
- **racing**: `--processes` processes take one conversation's lock `--rounds` times each
  at once, for at most `--race-seconds` (Rasa's 1 s poll shortened to 10 ms for all stores);
  inside the lock each increments a holder count in Redis and reads it back. "served
  together" counts the times a process found another inside the same conversation, which a
  lock must never allow; "turns done" falls short when a process waits behind a ticket that
  nobody will serve (two processes drew the same number; it expires after Rasa's 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STORES = ("rasa-redis", "kefu-redis", "kefu-sqlite")


def make_store(kind: str, redis_url: str, sqlite_path: str):
    url = urlsplit(redis_url)
    redis_args = dict(host=url.hostname, port=url.port, password=unquote(url.password or "") or None, db=1, key_prefix="bench")
    if kind == "rasa-redis":
        from rasa.core.lock_store import RedisLockStore

        return RedisLockStore(**redis_args)
    if kind == "kefu-redis":
        from bot.redis_lock_store import RedisLockStore

        return RedisLockStore(**redis_args)
    from bot.lock_store import SQLiteLockStore

    return SQLiteLockStore(db=sqlite_path)


def per_message(kind: str, redis_url: str, sqlite_path: str, messages: int) -> dict:
    store = make_store(kind, redis_url, sqlite_path)

    async def go() -> list:
        timings = []
        for i in range(messages):
            started = time.perf_counter()
            async with store.lock(f"{kind}-solo-{i % 50}", wait_time_in_seconds=0.01):
                pass
            timings.append(time.perf_counter() - started)
        return sorted(timings)

    timings = asyncio.run(go())
    return {"p50_ms": round(timings[len(timings) // 2] * 1000, 3), "p99_ms": round(timings[int(len(timings) * 0.99)] * 1000, 3)}


def _racer(kind: str, redis_url: str, sqlite_path: str, conversation: str, rounds: int, seconds: float, go, results) -> None:
    import redis
    from rasa.core.lock_store import LockError

    store = make_store(kind, redis_url, sqlite_path)
    counter = redis.Redis.from_url(redis_url)
    key = f"bench:holders:{conversation}"

    async def turn() -> int:
        async with store.lock(conversation, wait_time_in_seconds=0.01):
            together = int(counter.incr(key) > 1)
            await asyncio.sleep(0.001)
            counter.decr(key)
            return together

    async def main() -> dict:
        done = together = refused = 0
        deadline = time.monotonic() + seconds
        for _ in range(rounds):
            try:
                together += await asyncio.wait_for(turn(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break  # stuck behind a ticket nobody serves (or out of time)
            except LockError:  # Rasa: "Could not acquire lock" (another process deleted it meanwhile): the message fails
                refused += 1
                continue
            done += 1
        return {"turns": done, "together": together, "refused": refused}

    go.wait()
    results.put(asyncio.run(main()))


def racing(kind: str, redis_url: str, sqlite_path: str, processes: int, rounds: int, seconds: float) -> dict:
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    conversation = f"{kind}-race-{time.time_ns()}"
    workers = [context.Process(target=_racer, args=(kind, redis_url, sqlite_path, conversation, rounds, seconds, go, results))
               for _ in range(processes)]
    for w in workers:
        w.start()
    time.sleep(3)  # every process imported Rasa and is waiting
    started = time.perf_counter()
    go.set()
    outcomes = [results.get(timeout=seconds + 120) for _ in workers]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join(60)
    return {"served_together": sum(o["together"] for o in outcomes), "turns": sum(o["turns"] for o in outcomes),
            "refused": sum(o["refused"] for o in outcomes),
            "of": processes * rounds, "seconds": round(elapsed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--race-seconds", type=float, default=30.0, help="each racing process stops after this long")
    args = parser.parse_args()
    from cluster import procs, stores
    from cluster.config import ClusterConfig
    from tests.live_bot import free_port

    with tempfile.TemporaryDirectory() as scratch:
        config = ClusterConfig(state_dir=str(Path(scratch) / "state"), embedded_redis_port=free_port())
        redis_url = stores.start_redis(config)
        try:
            rows = []
            for kind in STORES:
                sqlite_path = str(Path(scratch) / f"{kind}.db")
                rows.append((kind, per_message(kind, redis_url, sqlite_path, args.messages),
                             racing(kind, redis_url, sqlite_path, args.processes, args.rounds, args.race_seconds)))
        finally:
            procs.stop(config.state, "redis")
    print(f"\nlock stores: {args.messages} uncontended messages; {args.processes} processes x {args.rounds} turns on one "
          f"conversation, at most {args.race_seconds:.0f} s each\n")
    print("| store | per message p50 | p99 | racing: turns done | refused (LockError) | served together | seconds |")
    print("|---|---|---|---|---|---|---|")
    for kind, solo, race in rows:
        print(f"| {kind} | {solo['p50_ms']} ms | {solo['p99_ms']} ms | {race['turns']} of {race['of']} | {race['refused']} | {race['served_together']} | "
              f"{race['seconds']} |")


if __name__ == "__main__":
    main()
