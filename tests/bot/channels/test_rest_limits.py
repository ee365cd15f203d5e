"""The REST channel alone (a Sanic app, no model): 503 when handling fails, 413/429 from the limits, 200 otherwise."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from rasa.core.channels.channel import register
from sanic import Sanic

from bot.channels import limits
from bot.channels.rest import ValidatingRestInput
from tests.live_bot import free_port


@pytest.fixture
def fresh_limiter(monkeypatch):
    monkeypatch.setattr(limits, "_default", limits.Limiter(limits.LimitSettings(max_message_chars=50, rate_per_minute=60, burst=2)))


def test_rest_answers_failures_and_refusals(fresh_limiter):
    app = Sanic(f"rest_test_{free_port()}")

    async def handler(message):
        if message.text == "store down":
            raise RuntimeError("tracker store unavailable")
        await message.output_channel.send_text_message(message.sender_id, "ok: " + message.text)

    app.ctx.agent = type("Agent", (), {"handle_message": staticmethod(handler)})()
    register([ValidatingRestInput()], app, "/webhooks/")
    port = free_port()

    async def go():
        server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
        await server.startup()
        results = []
        async with aiohttp.ClientSession() as session:
            for sender, text in (("a", "hello"), ("b", "store down"), ("c", "x" * 51), ("d", "1"), ("d", "2"), ("d", "3")):
                async with session.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                        data=json.dumps({"sender": sender, "message": text})) as r:
                    results.append((r.status, r.headers.get("Retry-After"), await r.text()))
        server.close()
        await server.wait_closed()
        return results

    results = asyncio.run(go())
    assert results[0][0] == 200 and "ok: hello" in results[0][2]
    assert results[1][:2] == (503, "2") and "not stored" in results[1][2]
    assert results[2][0] == 413
    assert [r[0] for r in results[3:]] == [200, 200, 429] and int(results[5][1]) >= 1
