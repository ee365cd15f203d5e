"""bot.redis_lock_store on a real redis-server: a killed replica's customer waits the lease, not the lock lifetime."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from urllib.parse import unquote, urlsplit

import pytest
from rasa.core.lock_store import LockStore
from rasa.core.lock_store import RedisLockStore as StockRedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.redis_lock_store import RedisLockStore
from tests.bot.test_lock_store import served_one_at_a_time
from tests.cluster.redis_server import RedisServer

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def redis_address(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    url = urlsplit(server.url)
    yield url.hostname, url.port, unquote(url.password or "") or None
    server.stop()


def _store(address, **kwargs) -> RedisLockStore:
    return RedisLockStore(host=address[0], port=address[1], password=address[2], db=1, key_prefix="test", **kwargs)


def _hold(address, conversation: str, log: str, name: str, rounds: int, hold_s: float, lease_s: float, go) -> None:
    """In a child process: take the conversation's lock `rounds` times (lifetime 60 s), logging 'start'/'end' while holding it."""

    async def main() -> None:
        store = _store(address, lease_s=lease_s)
        go.wait()
        for _ in range(rounds):
            async with store.lock(conversation, lock_lifetime=60, wait_time_in_seconds=0.01):
                with open(log, "a") as f:
                    f.write(f"start {name}\n")
                await asyncio.sleep(hold_s)
                with open(log, "a") as f:
                    f.write(f"end {name}\n")

    asyncio.run(main())


def _spawn(*args):
    process = SPAWN.Process(target=_hold, args=args)
    process.start()
    return process


def _wait_for_start(holder, log) -> None:
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().startswith("start")):
        holder.join(0.05)
        assert holder.exitcode is None and time.monotonic() < deadline, "the holder never took the lock"


def _acquire_seconds(store: RedisLockStore, conversation: str) -> float:
    async def next_message() -> float:
        started = time.monotonic()
        async with store.lock(conversation):
            return time.monotonic() - started

    return asyncio.run(asyncio.wait_for(next_message(), 90))


def test_a_process_killed_holding_a_conversation_blocks_it_for_the_lease_not_the_lock_lifetime(redis_address, tmp_path):
    conversation, log = f"killed-{time.time_ns()}", tmp_path / "log"
    go = SPAWN.Event()
    holder = _spawn(redis_address, conversation, str(log), "killed", 1, 3600, 1.0, go)
    go.set()
    _wait_for_start(holder, log)
    os.kill(holder.pid, signal.SIGKILL)  # dies handling the message: its ticket (lifetime 60 s) is never given back
    holder.join(10)
    stock = StockRedisLockStore(host=redis_address[0], port=redis_address[1], password=redis_address[2], db=1, key_prefix="test")
    assert stock.get_lock(conversation).is_locked(1), "stock Rasa would make the next message wait the full 60 s"

    store = _store(redis_address, lease_s=1.0)
    try:
        waited = _acquire_seconds(store, conversation)
    finally:
        store.close()
    assert waited < 10, f"waited {waited:.1f} s for a dead process's ticket"
    assert log.read_text().splitlines() == ["start killed"]
    assert stock.get_lock(conversation) is None  # given back and cleaned up


@pytest.mark.parametrize("lose_leases", [False, True], ids=["leases-kept", "leases-lost"])
def test_a_live_process_keeps_the_conversation_longer_than_its_lease(redis_address, tmp_path, lose_leases):
    conversation, log = f"slow-{time.time_ns()}", tmp_path / "log"
    go = SPAWN.Event()
    holder = _spawn(redis_address, conversation, str(log), "slow", 1, 4.0, 1.0, go)  # holds 4 leases long
    go.set()
    _wait_for_start(holder, log)
    store = _store(redis_address, lease_s=1.0)
    try:
        if lose_leases:  # as after a Redis restart: the holder renews its lease within a quarter of it
            assert store.red.delete(*store.red.keys(store.key_prefix + "lease:*")) >= 1
        _acquire_seconds(store, conversation)
        assert log.read_text().splitlines() == ["start slow", "end slow"], "took a live process's conversation"
    finally:
        store.close()
        holder.join(30)
    assert holder.exitcode == 0


def test_processes_racing_on_one_conversation_are_served_one_at_a_time(redis_address, tmp_path):
    conversation, log = f"race-{time.time_ns()}", tmp_path / "log"
    go = SPAWN.Event()
    workers = [_spawn(redis_address, conversation, str(log), name, 10, 0.01, 5.0, go) for name in ("a", "b", "c")]
    served_one_at_a_time(workers, go, log, 30)
    stock = StockRedisLockStore(host=redis_address[0], port=redis_address[1], password=redis_address[2], db=1, key_prefix="test")
    assert stock.get_lock(conversation) is None and not stock.red.exists("test:lock:owners:" + conversation)


def test_a_lock_left_behind_expires_in_redis_with_its_last_ticket(redis_address):
    store = _store(redis_address)
    try:
        store.issue_ticket("abandoned", lock_lifetime=30)
        ttl = store.red.ttl(store.key_prefix + "abandoned")
        assert 0 < ttl <= 31  # stock Rasa keeps it forever
    finally:
        store.delete_lock("abandoned")
        store.close()


def test_rasa_builds_it_from_endpoints_and_rejects_unknown_options(redis_address):
    config = EndpointConfig(url=redis_address[0], type="bot.redis_lock_store.RedisLockStore", port=redis_address[1],
                            password=redis_address[2], db=1, key_prefix="kefu", lease_s=2.5)
    store = LockStore.create(config)
    assert isinstance(store, RedisLockStore) and store.lease_s == 2.5 and store.key_prefix == "kefu:lock:"
    with pytest.raises(ValueError, match="unknown option.*leas_s"):
        RedisLockStore(EndpointConfig(url=redis_address[0], type="bot.redis_lock_store.RedisLockStore", leas_s=2))
    with pytest.raises(ValueError, match="lease_s must be positive"):
        RedisLockStore(EndpointConfig(url=redis_address[0], lease_s=0))
