"""With several Rasa replicas the customer's socket may live in another process: the desk emits
through python-socketio's Redis manager and the replica holding the socket delivers the reply.

A stand-in replica (python-socketio AsyncServer on the same Redis manager, rooms as
KefuSocketIOInput makes them) and a real socket.io client; Debian's redis-server on a free port.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest
import redis.asyncio
import socketio
from aiohttp import web

from cluster import packages
from cluster.config import ClusterError
from desk.config import DeskConfig
from desk.delivery import Delivery

pytestmark = pytest.mark.asyncio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    try:  # looked up (and installed with apt-get when missing) here, not at import: the cluster tests may install it
        redis_server = packages.ensure("redis-server")
    except ClusterError as exc:
        pytest.skip(str(exc))
    port = free_port()
    process = subprocess.Popen([redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:  # ready when it accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


class RecordingRasa:
    def __init__(self):
        self.appended = []

    async def append(self, conversation_id, events, deliver):
        self.appended.append((conversation_id, events, deliver))
        return {}


async def test_reply_reaches_a_socket_in_another_process_through_redis(redis_url, tmp_path):
    # The "replica": a socket.io server whose sessions join the room named by the conversation id.
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=socketio.AsyncRedisManager(redis_url),
                               ping_interval=1, ping_timeout=2)  # short long-polls: a quick disconnect
    app = web.Application()
    sio.attach(app)

    @sio.on("session_request")
    async def session_request(sid, data):
        await sio.enter_room(sid, data["session_id"])
        await sio.emit("session_confirm", data["session_id"], room=sid)

    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=0.5).start()
    client = socketio.AsyncClient()
    received: asyncio.Queue = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("bot_uttered", lambda data: received.put_nowait(data))
    client.on("session_confirm", lambda data: confirmed.set())
    await client.connect(f"http://127.0.0.1:{port}", transports=["polling"])  # engine.io's websocket client needs aiohttp >= 3.10
    await client.emit("session_request", {"session_id": "widget-42"})
    await asyncio.wait_for(confirmed.wait(), 10)
    # The replica's manager subscribes in the background: a message published before that is lost.
    probe = redis.asyncio.from_url(redis_url)
    for _ in range(100):
        if (await probe.pubsub_numsub("socketio"))[0][1] >= 1:
            break
        await asyncio.sleep(0.05)
    await probe.close()
    try:
        config = DeskConfig(root=tmp_path, socketio_redis_url=redis_url)
        rasa = RecordingRasa()
        tracker = {"events": [{"event": "user", "text": "hi", "input_channel": "socketio"}]}
        delivered = await Delivery(config, rasa).send("widget-42", tracker,
                                                      [{"event": "bot", "text": "Hello from the desk", "metadata": {}}])
        assert delivered == "socketio (Redis)"
        assert rasa.appended[0][2] is False  # recorded in the tracker only; Redis delivered it
        assert (await asyncio.wait_for(received.get(), 10)) == {"text": "Hello from the desk"}
    finally:
        await sio.shutdown()  # ends the client's long poll now (a client-side disconnect waits for it)
        await client.disconnect()
        await runner.cleanup()
