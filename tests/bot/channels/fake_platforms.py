"""Fake Slack and WeChat APIs on loopback: they record what the bot sends and answer like the real ones.

Each runs an aiohttp app in a background thread, so synchronous tests and a
Rasa server in another process can both use them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import parse_qs

from aiohttp import web


class FakeServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: Optional[web.AppRunner] = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> "FakeServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class FakeSlackAPI(FakeServer):
    """`chat.postMessage` under /api/; `posts` holds the arguments of every accepted call."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.posts: List[Dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat.postMessage", self.post_message)

    async def post_message(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        raw = await request.read()
        if request.content_type == "application/json":
            args = json.loads(raw)
        else:
            args = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
        with self.lock:
            self.posts.append(args)
        return web.json_response({"ok": True, "channel": args.get("channel"), "ts": f"{time.time():.6f}"})

    def posts_to(self, channel: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [p for p in self.posts if p.get("channel") == channel]


class FakeWeChatAPI(FakeServer):
    """Access tokens and text messages of the Official Account API (`token`, `message/custom/send`)
    and the WeCom API (`gettoken`, `message/send`), under /cgi-bin/.

    `expire_tokens()` makes every token issued so far answer 42001, like WeChat after `expires_in`.
    """

    def __init__(self, app_id: str, secret: str, corp_id: str, corp_secret: str) -> None:
        super().__init__()
        self.credentials = {("appid", app_id, "secret", secret), ("corpid", corp_id, "corpsecret", corp_secret)}
        self.valid_tokens: set = set()
        self.token_fetches = 0
        self.messages: List[Dict[str, Any]] = []  # accepted sends: payload + "path" + "raw" body bytes
        self.refused = 0
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_get("/cgi-bin/gettoken", self.token)
        app.router.add_post("/cgi-bin/message/custom/send", self.send)
        app.router.add_post("/cgi-bin/message/send", self.send)

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if request.path.endswith("/gettoken"):
            key = ("corpid", q.get("corpid"), "corpsecret", q.get("corpsecret"))
        else:
            if q.get("grant_type") != "client_credential":
                return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
            key = ("appid", q.get("appid"), "secret", q.get("secret"))
        if key not in self.credentials:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = f"token-{next(self._ids)}"
        with self.lock:
            self.token_fetches += 1
            self.valid_tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token")
        raw = await request.read()
        with self.lock:
            if token not in self.valid_tokens:
                self.refused += 1
                return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
            payload = json.loads(raw.decode("utf-8"))
            self.messages.append(dict(payload, path=request.path, raw=raw))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def expire_tokens(self) -> None:
        with self.lock:
            self.valid_tokens.clear()

    def texts_to(self, user: str) -> List[str]:
        with self.lock:
            return [m["text"]["content"] for m in self.messages if m.get("touser") == user]


def wait_for(condition: Callable[[], Any], timeout_s: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
