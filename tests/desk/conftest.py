"""A fake Rasa HTTP API (trackers in memory) and a desk app against it, with signed-in clients."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.actions.handoff_queue import HandoffQueue
from desk.accounts import Accounts
from desk.config import DeskConfig
from desk.server import build_app

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "rasa-test-token"
PASSWORD = "correct horse battery"


class FakeRasa:
    """GET /conversations/{id}/tracker and POST .../tracker/events, as rasa/server.py answers them."""

    def __init__(self) -> None:
        self.trackers: Dict[str, Dict[str, Any]] = {}
        self.appended: List[Dict[str, Any]] = []

    def conversation(self, conversation_id: str, channel: str = "socketio", texts=("I want a person",),
                     metadata: Dict[str, Any] | None = None, slots: Dict[str, Any] | None = None) -> None:
        now = time.time()
        events = []
        for i, text in enumerate(texts):
            events.append({"event": "user", "text": text, "timestamp": now + i, "input_channel": channel,
                           "metadata": metadata or {},
                           "parse_data": {"intent": {"name": "human_handoff", "confidence": 0.93},
                                          "intent_ranking": [{"name": "human_handoff", "confidence": 0.93},
                                                             {"name": "contact_info", "confidence": 0.04}]}})
        events += [{"event": "action", "name": "action_handoff_to_human", "timestamp": now + 5},
                   {"event": "bot", "text": "I'm passing you to a member of our support team.", "timestamp": now + 5,
                    "data": {"custom": {"handoff": True}}, "metadata": {}},
                   {"event": "pause", "timestamp": now + 5}]
        self.trackers[conversation_id] = {"sender_id": conversation_id, "events": events, "paused": True,
                                          "slots": dict(slots or {}), "latest_input_channel": channel}

    def customer_says(self, conversation_id: str, text: str) -> None:
        tracker = self.trackers[conversation_id]
        tracker["events"].append({"event": "user", "text": text, "timestamp": time.time(),
                                  "input_channel": tracker["latest_input_channel"], "metadata": {},
                                  "parse_data": {"intent": {"name": "faq", "confidence": 0.4}}})

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/conversations/{id}/tracker", self.get)
        app.router.add_post("/conversations/{id}/tracker/events", self.post)

    def _tracker(self, request: web.Request) -> Dict[str, Any]:
        if request.query.get("token") != TOKEN:
            raise web.HTTPUnauthorized(text="no token")
        cid = request.match_info["id"]
        return self.trackers.setdefault(cid, {"sender_id": cid, "events": [], "paused": False, "slots": {},
                                              "latest_input_channel": None})

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self._tracker(request))

    async def post(self, request: web.Request) -> web.Response:
        tracker = self._tracker(request)
        events = await request.json()
        for event in events:
            tracker["events"].append(event)
            if event["event"] == "pause":
                tracker["paused"] = True
            elif event["event"] == "resume":
                tracker["paused"] = False
            elif event["event"] == "slot":
                tracker["slots"][event["name"]] = event["value"]
        self.appended.append({"conversation_id": request.match_info["id"], "events": events,
                              "output_channel": request.query.get("output_channel"),
                              "execute_side_effects": request.query.get("execute_side_effects")})
        return web.json_response(tracker)


@pytest.fixture
def fake_rasa():
    return FakeRasa()


@pytest.fixture
def desk_config(tmp_path):
    return DeskConfig(root=tmp_path, db=str(tmp_path / "desk.db"), orders_db=str(tmp_path / "orders.db"),
                      secret_file=str(tmp_path / "secrets" / "desk-secret"), poll_interval_s=0.05,
                      review_file=str(tmp_path / "review.csv"), kb_file=str(tmp_path / "qa" / "desk_answers.csv"),
                      texts={"handback": {"en": "You're back with Maple."}, "close": {"en": "Thanks, bye."}},
                      max_reply_chars=200, login_attempts=3, domain=str(ROOT / "domain.yml"))


@pytest.fixture
def accounts(desk_config):
    store = Accounts(desk_config.path(desk_config.db))
    store.add("alice", PASSWORD, "agent", "Alice")
    store.add("bob", PASSWORD, "agent", "Bob")
    store.add("lena", PASSWORD, "lead", "Lena")
    return store


@pytest.fixture
def queue(desk_config):
    return HandoffQueue(desk_config.orders_db)


@pytest_asyncio.fixture
async def desk(desk_config, fake_rasa, accounts):
    """(make_client, app): the desk app served against the fake Rasa."""
    rasa_app = web.Application()
    fake_rasa.routes(rasa_app)
    rasa_server = TestServer(rasa_app)
    await rasa_server.start_server()
    desk_config.rasa_url = str(rasa_server.make_url("")).rstrip("/")
    app = build_app(desk_config, token=TOKEN)
    server = TestServer(app)
    clients: List[TestClient] = []

    async def make_client(username: str | None = None) -> TestClient:
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        if username:
            await sign_in(client, username)
        return client

    yield make_client, app
    for client in clients:
        await client.close()
    await server.close()
    await rasa_server.close()


async def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> web.Response:
    page = await (await client.get("/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = await client.post("/login", data={"username": username, "password": password, "csrf_token": csrf},
                                 allow_redirects=False)
    if response.status == 302:
        page = await (await client.get("/")).text()
        client.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    return response


async def post(client: TestClient, path: str, body: Dict[str, Any] | None = None, csrf: bool = True):
    headers = {"X-CSRF-Token": client.csrf} if csrf else {}
    return await client.post(path, json=body or {}, headers=headers)
