"""A small aiohttp app that serves the demo page and the chat widget's assets.

The widget (`static/kefu-widget.js` + `.css`) and its socket.io client (from
npm, installed by scripts/setup-web.sh into `node_modules/`) are served from
here, never from a CDN: `/static/kefu-widget.js`, `/static/vendor/socket.io.min.js`.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

HERE = Path(__file__).parent
STATIC = HERE / "static"
SOCKET_IO_CLIENT = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


def make_app(rasa_url: str, title: str = "Maple Market support") -> web.Application:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    # "</" cannot end the inline <script> the settings land in.
    settings = json.dumps({"serverUrl": rasa_url.rstrip("/"), "title": title}).replace("</", "<\\/")

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page.replace("/*KEFU_SETTINGS*/{}", settings), content_type="text/html")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def socket_io_client(request: web.Request) -> web.StreamResponse:
        if not SOCKET_IO_CLIENT.exists():
            raise web.HTTPNotFound(text="socket.io-client is not installed: run scripts/setup-web.sh (or make setup)")
        return web.FileResponse(SOCKET_IO_CLIENT, headers={"Content-Type": "application/javascript; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/static/vendor/socket.io.min.js", socket_io_client)
    app.router.add_static("/static/", STATIC)
    return app


async def start(host: str, port: int, rasa_url: str) -> web.AppRunner:
    runner = web.AppRunner(make_app(rasa_url), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
