"""The socket.io channel delivers replies to persistent sessions (RasaHQ/rasa#13027 fixed).

Most tests run the channel's own Sanic blueprint in-process with an echo bot
(no model: a second each); the last one talks to the real bot started by `kefu run`.
The python client uses long-polling: python-engineio's websocket client needs a
newer aiohttp than Rasa allows (the browser tests cover websockets).
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from typing import Any, Dict, List

import jwt
import pytest
import socketio
from rasa.core.channels.socketio import SocketIOInput
from sanic import Sanic

from bot.channels.socketio import KefuSocketIOInput
from tests.live_bot import free_port

Sanic.test_mode = True  # several apps per process


@asynccontextmanager
async def echo_server(channel: SocketIOInput):
    """The channel's blueprint on a real Sanic server; the 'bot' echoes and hands off."""

    async def on_new_message(message):
        await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")
        if message.text == "handoff":
            await message.output_channel.send_custom_json(message.sender_id, {"handoff": True})

    app = Sanic(f"socketio-test-{uuid.uuid4().hex[:8]}")
    app.blueprint(channel.blueprint(on_new_message))
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    await server.start_serving()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await channel.sio.shutdown()  # ends the clients' pending long-polls
        server.close()
        await server.wait_closed()


class Client:
    """A socket.io client that joins a session and collects `bot_uttered` events."""

    def __init__(self):
        self.sio = socketio.AsyncClient(reconnection=False)
        self.replies: asyncio.Queue = asyncio.Queue()
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.sio.on("bot_uttered", self.replies.put_nowait)
        self.sio.on("session_confirm", self.confirmed.put_nowait)

    async def join(self, url: str, session_id: str, auth: Dict[str, Any] | None = None) -> str:
        await self.sio.connect(url, transports=["polling"], auth=auth, wait_timeout=10)
        await self.sio.emit("session_request", {"session_id": session_id})
        return await asyncio.wait_for(self.confirmed.get(), 10)

    async def say(self, session_id: str, text: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id})

    async def close(self) -> None:
        # Drop the connection like a closed tab; a polite disconnect waits for the pending long-poll (25 s).
        await self.sio.eio.disconnect(abort=True)

    async def get_replies(self, first_within: float = 5, then_within: float = 0.5) -> List[Dict[str, Any]]:
        """What arrives: the first reply may take `first_within` s, the rest follow closely."""
        got = []
        try:
            got.append(await asyncio.wait_for(self.replies.get(), first_within))
            while True:
                got.append(await asyncio.wait_for(self.replies.get(), then_within))
        except asyncio.TimeoutError:
            return got


@pytest.mark.asyncio
async def test_replies_reach_a_persistent_session_and_survive_a_reconnect():
    async with echo_server(KefuSocketIOInput(session_persistence=True)) as url:
        first = Client()
        assert await first.join(url, "session-1") == "session-1"
        await first.say("session-1", "hello")
        assert await first.get_replies() == [{"text": "echo: hello"}]
        await first.close()

        # A page reload: a new socket asks for the same session and gets its replies.
        again = Client()
        await again.join(url, "session-1")
        await again.say("session-1", "still there?")
        assert await again.get_replies() == [{"text": "echo: still there?"}]
        await again.close()


@pytest.mark.asyncio
async def test_stock_rasa_channel_loses_the_replies():
    """Documents RasaHQ/rasa#13027; when this fails, Rasa is fixed and bot/channels/socketio.py can go."""
    async with echo_server(SocketIOInput(session_persistence=True)) as url:
        client = Client()
        with pytest.warns(RuntimeWarning, match="enter_room' was never awaited"):
            await client.join(url, "session-1")
        await client.say("session-1", "hello")
        assert await client.get_replies(first_within=2) == []
        await client.close()


@pytest.mark.asyncio
async def test_custom_payload_reaches_the_client_like_the_rest_channel_sends_it():
    async with echo_server(KefuSocketIOInput(session_persistence=True)) as url:
        client = Client()
        await client.join(url, "s")
        await client.say("s", "handoff")
        assert await client.get_replies() == [{"text": "echo: handoff"}, {"custom": {"handoff": True}}]
        await client.close()


@pytest.mark.asyncio
async def test_a_session_request_without_an_id_gets_a_fresh_one():
    async with echo_server(KefuSocketIOInput(session_persistence=True)) as url:
        client = Client()
        await client.sio.connect(url, transports=["polling"], wait_timeout=10)
        await client.sio.emit("session_request", None)
        session_id = await asyncio.wait_for(client.confirmed.get(), 10)
        assert isinstance(session_id, str) and len(session_id) == 32
        await client.say(session_id, "hi")
        assert await client.get_replies() == [{"text": "echo: hi"}]
        await client.close()


@pytest.mark.asyncio
async def test_jwt_from_the_environment_is_required_to_connect(monkeypatch):
    monkeypatch.setenv("KEFU_SOCKETIO_JWT_KEY", "widget-secret")
    channel = KefuSocketIOInput.from_credentials({"session_persistence": True})

    async def on_new_message(message):
        pass

    channel.blueprint(on_new_message)
    # The connect handler decides; a refused python client only gives up after a 30 s poll.
    connect = channel.sio.handlers["/"]["connect"]
    assert await connect("sid-1", {}, None) is False
    assert await connect("sid-2", {}, {"token": jwt.encode({"sub": "u"}, "wrong-secret", algorithm="HS256")}) is False
    assert await connect("sid-3", {}, {"token": jwt.encode({"sub": "u"}, "widget-secret", algorithm="HS256")}) is True


@pytest.mark.asyncio
async def test_the_real_bot_answers_over_socketio_with_buttons(kefu_server):
    client = Client()
    session_id = f"sio-{uuid.uuid4().hex[:8]}"
    await client.join(kefu_server.rasa_url, session_id)
    await client.say(session_id, "hi")
    replies = await client.get_replies(first_within=30)
    await client.close()
    assert replies and "Maple Market" in replies[0]["text"]
    assert {"title": "Where is my order?", "payload": "/order_status"} in [
        {"title": b["title"], "payload": b["payload"]} for b in replies[0]["quick_replies"]]
