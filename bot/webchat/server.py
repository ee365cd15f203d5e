"""A small aiohttp app that serves the chat page and tells it where Rasa is."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"


def make_app(rasa_url: str, title: str = "Maple Market support") -> web.Application:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    settings = json.dumps({"rasaUrl": rasa_url.rstrip("/"), "title": title})

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page.replace("/*KEFU_SETTINGS*/{}", settings), content_type="text/html")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_static("/static/", STATIC)
    return app


async def start(host: str, port: int, rasa_url: str) -> web.AppRunner:
    runner = web.AppRunner(make_app(rasa_url), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
