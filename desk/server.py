"""Builds and starts the desk web app: `kefu desk run`, or `start(...)` from another orchestrator.

`kefu run` wires it in with two calls (same event loop as its chat page):

    runner = await desk.server.start(DeskConfig.load(), host="127.0.0.1", port=8090, rasa_url=...)
    ...
    await runner.cleanup()
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

import yaml
from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.actions.handoff_queue import HandoffQueue
from desk import web as routes
from desk.accounts import Accounts
from desk.config import DeskConfig
from desk.delivery import Delivery
from desk.live import Hub, Watcher
from desk.proposals import Proposals
from desk.rasa_client import RasaClient
from desk.ratelimit import LoginLimiter
from desk.secrets import session_key
from desk.service import DeskService

logger = logging.getLogger(__name__)
MAX_BODY = 2 * 1024 * 1024  # a review CSV upload; JSON bodies are far smaller


def _credentials(config: DeskConfig) -> Dict[str, Any]:
    path = config.path("credentials.yml")
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def build_app(config: DeskConfig, token: Optional[str] = None) -> web.Application:
    """The app with its collaborators; the watcher starts with the app and stops with it."""
    rasa = RasaClient(config.rasa_url, token if token is not None else config.rasa_token(), config.rasa_timeout_s)
    db = config.path(config.db)
    queue = HandoffQueue(config.orders_db)
    hub = Hub()
    service = DeskService(config, queue, rasa, Delivery(config, rasa, _credentials(config)), Accounts(db),
                          Proposals(db), hub)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[routes.security_headers])
    setup_session(app, EncryptedCookieStorage(
        session_key(config.path(config.secret_file)), cookie_name="kefu_desk", max_age=config.session_max_age_s,
        httponly=True, secure=config.secure_cookies, samesite="Strict"))
    app.middlewares.extend([routes.authenticate, routes.errors])
    app[routes.SERVICE] = service
    app[routes.TEMPLATES] = routes.templates()
    app[routes.HUB] = hub
    app[routes.WATCHER] = watcher = Watcher(queue, rasa, hub, config.poll_interval_s)
    app[routes.LIMITER] = LoginLimiter(config.login_attempts, config.login_window_s)
    routes.add_routes(app)

    async def lifecycle(app: web.Application):
        if not token and not config.rasa_token():
            logger.warning("desk: no Rasa API token (set %s or write %s); requests to Rasa may be refused",
                           config.rasa_token_env, config.path(config.rasa_token_file))
        watcher.start()
        yield
        await watcher.stop()
        await rasa.close()

    app.cleanup_ctx.append(lifecycle)

    async def end_streams(app: web.Application) -> None:
        hub.close_all()

    app.on_shutdown.append(end_streams)
    return app


async def start(config: Optional[DeskConfig] = None, host: Optional[str] = None, port: Optional[int] = None,
                rasa_url: Optional[str] = None, token: Optional[str] = None) -> web.AppRunner:
    """Serves the desk in the running event loop; returns the runner (`await runner.cleanup()` stops it)."""
    config = config or DeskConfig.load()
    if rasa_url:
        config.rasa_url = rasa_url.rstrip("/")
    runner = web.AppRunner(build_app(config, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or config.host, port if port is not None else config.port)
    await site.start()
    logger.info("desk: http://%s:%s/ (Rasa at %s)", host or config.host, port or config.port, config.rasa_url)
    return runner


def run(config: DeskConfig) -> None:
    """Serves until Ctrl-C."""
    async def main() -> None:
        runner = await start(config)
        print(f"kefu desk: http://{config.host}:{config.port}/  (Rasa API {config.rasa_url}; Ctrl-C stops)",
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

