"""Channel limits: message length (413) and per-sender rate (429 + Retry-After), per process and shared in Redis."""

import asyncio

import pytest

from bot.channels.dedupe import Dedupe
from bot.channels.limits import Limiter, LimitSettings
from tests.cluster.redis_server import RedisServer


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def run(coro):
    return asyncio.run(coro)


def test_too_long_is_413_and_off_rate_is_never_limited():
    limiter = Limiter(LimitSettings(max_message_chars=10, rate_per_minute=0))
    assert run(limiter.check("rest", "a", "x" * 11)).status == 413
    assert all(run(limiter.check("rest", "a", "hi")) is None for _ in range(100))


def test_burst_then_429_with_retry_after_then_allowed_again():
    clock = Clock()
    limiter = Limiter(LimitSettings(rate_per_minute=60, burst=3), clock=clock)
    assert [run(limiter.check("rest", "ann", "hi")) for _ in range(3)] == [None] * 3
    refusal = run(limiter.check("rest", "ann", "hi"))
    assert refusal.status == 429 and refusal.headers() == {"Retry-After": "1"}
    assert run(limiter.check("rest", "bob", "hi")) is None  # per sender
    clock.now += 1.0
    assert run(limiter.check("rest", "ann", "hi")) is None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def test_the_bucket_is_shared_by_replicas_through_redis(redis_server):
    settings = LimitSettings(rate_per_minute=6, burst=2)
    replicas = [Limiter(settings, redis_url=redis_server.url + "/2") for _ in range(2)]

    async def go():
        return [await replicas[i % 2].check("rest", "carol", "hi") for i in range(3)]

    first, second, third = run(go())
    assert first is None and second is None
    assert third.status == 429 and 1 <= third.retry_after_s <= 10


def test_a_retry_on_another_replica_is_not_processed_again(redis_server):
    async def go():
        a, b = Dedupe("slack", 60, redis_server.url + "/2"), Dedupe("slack", 60, redis_server.url + "/2")
        return await a.first_time("Ev1"), await b.first_time("Ev1"), await a.first_time("Ev1"), await b.first_time("Ev2")

    assert run(go()) == (True, False, False, True)


def test_redis_down_falls_back_to_the_process(tmp_path):
    async def go():
        dead = "redis://127.0.0.1:1/2"
        limiter = Limiter(LimitSettings(rate_per_minute=60, burst=1), redis_url=dead)
        dedupe = Dedupe("wechat", 60, dead)
        return (await limiter.check("rest", "d", "hi"), (await limiter.check("rest", "d", "hi")).status,
                await dedupe.first_time("m"), await dedupe.first_time("m"))

    assert run(go()) == (None, 429, True, False)
