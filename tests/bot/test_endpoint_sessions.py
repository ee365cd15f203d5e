"""bot.endpoint_sessions: Rasa's calls to the action server reuse one connection and still send what Rasa sends."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot import endpoint_sessions


@pytest.fixture
def kept(monkeypatch):
    monkeypatch.setattr(EndpointConfig, "session", endpoint_sessions._kept_session(EndpointConfig.session))


async def _serve(seen):
    async def webhook(request):
        seen.append({"peer": request.transport.get_extra_info("peername")[1], "auth": request.headers.get("Authorization"),
                     "header": request.headers.get("X-Shop"), "token": request.query.get("token"),
                     "body": await request.json()})
        return web.json_response({"events": [], "responses": [{"text": f"answer {len(seen)}"}]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def test_calls_share_one_connection_with_rasas_headers_auth_and_answers(kept):
    seen = []

    async def scenario():
        runner, port = await _serve(seen)
        endpoint = EndpointConfig(f"http://localhost:{port}/webhook", headers={"X-Shop": "maple"}, token="t0k",
                                  basic_auth={"username": "rasa", "password": "secret"})
        try:
            answers = [await endpoint.request(json={"next_action": f"action_{i}"}, method="post") for i in range(3)]
        finally:
            await runner.cleanup()
        return answers

    answers = asyncio.run(scenario())
    assert [a["responses"][0]["text"] for a in answers] == ["answer 1", "answer 2", "answer 3"]
    assert [s["body"]["next_action"] for s in seen] == ["action_0", "action_1", "action_2"]
    assert len({s["peer"] for s in seen}) == 1  # one TCP connection for the three calls (Rasa's way: three)
    assert {(s["auth"], s["header"], s["token"]) for s in seen} == {("Basic cmFzYTpzZWNyZXQ=", "maple", "t0k")}


def test_a_restarted_action_server_is_reached_again(kept):
    seen = []

    async def scenario():
        runner, port = await _serve(seen)
        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
        first = await endpoint.request(json={"n": 1})
        await runner.cleanup()  # the action server restarts: its connections are closed
        app = web.Application()

        async def webhook(request):
            seen.append({"body": await request.json()})
            return web.json_response({"events": [], "responses": []})

        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            second = await endpoint.request(json={"n": 2})
        finally:
            await runner.cleanup()
        return first, second

    first, second = asyncio.run(scenario())
    assert first["responses"] and second == {"events": [], "responses": []}
    assert [s["body"]["n"] for s in seen] == [1, 2]

