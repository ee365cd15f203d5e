"""The desk's HTTP surface: sign-in, the agent page and its JSON API, the lead's review page, SSE.

Every route but the sign-in form needs a session (pages redirect to /login, the
API answers 401); every state-changing request needs the session's CSRF token
(header X-CSRF-Token, or the form field for the sign-in form); review and
proposal routes need the lead role (403). Sessions are encrypted cookies
(aiohttp-session), HttpOnly and SameSite=Strict, renewed at sign-in.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional

import jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from bot.actions.handoff_queue import ConflictError, NotFoundError
from desk import review
from desk.accounts import User
from desk.delivery import DeliveryError
from desk.live import Hub, Watcher
from desk.rasa_client import RasaError
from desk.ratelimit import LoginLimiter
from desk.service import DeskService, TooLong

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SERVICE = web.AppKey("service", DeskService)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
HUB = web.AppKey("hub", Hub)
WATCHER = web.AppKey("watcher", Watcher)
LIMITER = web.AppKey("limiter", LoginLimiter)
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("HEAD", "/login")}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LEAD_PREFIXES = ("/review", "/api/review", "/api/proposals")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                              autoescape=jinja2.select_autoescape(["html"]))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["nonce"] = secrets.token_urlsafe(16)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _headers(response, request)
        raise
    _headers(response, request)
    return response


def _headers(response: web.StreamResponse, request: web.Request) -> None:
    if response.prepared:
        return
    response.headers.setdefault("Content-Security-Policy", CSP.format(nonce=request.get("nonce", "")))
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (request.method, request.path) in PUBLIC:
        return await handler(request)
    session = await get_session(request)
    service = request.app[SERVICE]
    user = None
    if session.get("user"):
        user = await asyncio.to_thread(service.accounts.get, session["user"])
    if user is None or not user.active:
        if request.path.startswith("/api/"):
            return _error(401, "sign in first")
        raise web.HTTPFound("/login")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            return _error(403, "missing or wrong CSRF token")
    if request.path.startswith(LEAD_PREFIXES) and not user.is_lead:
        return _error(403, "leads only")
    request["user"] = user
    request["csrf"] = session.get("csrf", "")
    return await handler(request)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotFoundError as exc:
        return _error(404, str(exc))
    except ConflictError as exc:
        return _error(409, str(exc))
    except TooLong as exc:
        return _error(413, str(exc))
    except DeliveryError as exc:
        return _error(502, str(exc))
    except RasaError as exc:
        return _error(404 if exc.status == 404 else 502, str(exc))
    except (ValueError, review.ReviewError) as exc:
        return _error(400, str(exc))


def _page(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    html = request.app[TEMPLATES].get_template(name).render(nonce=request.get("nonce", ""), **context)
    return web.Response(text=html, content_type="text/html", status=status)


async def _json(request: web.Request) -> Dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _id(request: web.Request, key: str = "id") -> int:
    try:
        return int(request.match_info[key])
    except ValueError:
        raise NotFoundError(f"no such {key}") from None


def _user(request: web.Request) -> User:
    return request["user"]


# ------------------------------------------------------------------ sign-in
async def login_form(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.setdefault("csrf", secrets.token_urlsafe(32))
    return _page(request, "login.html", csrf=session["csrf"], error=None)


async def login(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    limiter = request.app[LIMITER]
    session = await get_session(request)
    form = await request.post()
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(str(form.get("csrf_token", "")), expected):
        return _page(request, "login.html", status=403, csrf=session.setdefault("csrf", secrets.token_urlsafe(32)),
                     error="The form expired; please try again.")
    username = str(form.get("username", "")).strip().lower()[:64]
    keys = [f"user:{username}", f"addr:{request.remote}"]
    wait = limiter.retry_after(keys)
    if wait > 0:
        response = _page(request, "login.html", status=429, csrf=expected,
                         error=f"Too many failed attempts; try again in {int(wait) + 1} s.")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await asyncio.to_thread(service.accounts.verify, username, str(form.get("password", "")))
    if user is None:
        limiter.failed(keys)
        return _page(request, "login.html", status=401, csrf=expected, error="Wrong user name or password.")
    limiter.succeeded(keys[0])
    session.invalidate()
    fresh = await new_session(request)
    fresh["user"] = user.username
    fresh["csrf"] = secrets.token_urlsafe(32)
    raise web.HTTPFound("/")


async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPFound("/login")


# -------------------------------------------------------------------- pages
async def desk_page(request: web.Request) -> web.Response:
    return _page(request, "desk.html", user=_user(request), csrf=request["csrf"])


async def review_page(request: web.Request) -> web.Response:
    return _page(request, "review.html", user=_user(request), csrf=request["csrf"])


# ---------------------------------------------------------------- agent API
async def me(request: web.Request) -> web.Response:
    user = _user(request)
    return web.json_response({"username": user.username, "display_name": user.display_name, "role": user.role})


async def agents(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    users = await asyncio.to_thread(service.accounts.list)
    online = request.app[HUB].agents()
    return web.json_response([{"username": u.username, "display_name": u.display_name, "role": u.role,
                               "online": u.username in online} for u in users if u.active])


async def queue(request: web.Request) -> web.Response:
    return web.json_response({"items": request.app[WATCHER].snapshot})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the queue and changed conversations, a ping (and presence heartbeat) every 10 s."""
    service = request.app[SERVICE]
    hub, watcher, user = request.app[HUB], request.app[WATCHER], _user(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    _headers(response, request)
    await response.prepare(request)
    inbox = hub.connect(user.username)
    await asyncio.to_thread(service.queue.heartbeat, user.username)
    try:
        await response.write(f"event: queue\ndata: {json.dumps({'items': watcher.snapshot})}\n\n".encode())
        while True:
            try:
                message = await asyncio.wait_for(inbox.get(), timeout=10)
            except asyncio.TimeoutError:
                current = await asyncio.to_thread(service.accounts.get, user.username)
                if current is None or not current.active:
                    break
                await asyncio.to_thread(service.queue.heartbeat, user.username)
                message = ": ping\n\n"
            if message is None:  # the server is stopping
                break
            await response.write(message.encode("utf-8"))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.disconnect(inbox)
        if user.username not in hub.agents():
            try:
                service.queue.gone(user.username)  # one indexed DELETE; also runs while the loop shuts down
            except Exception:  # noqa: BLE001 - presence expires by itself after presence_timeout_s
                logger.warning("desk: could not mark %s offline", user.username)
    return response


async def conversation(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICE].conversation(_id(request)))


async def claim(request: web.Request) -> web.Response:
    row = await request.app[SERVICE].claim(_id(request), _user(request))
    return web.json_response({"handoff": row.to_dict()})


async def reply(request: web.Request) -> web.Response:
    body = await _json(request)
    outcome = await request.app[SERVICE].reply(_id(request), _user(request), str(body.get("text") or ""))
    return web.json_response(outcome.to_dict())


async def hand_back(request: web.Request) -> web.Response:
    body = await _json(request)
    outcome = await request.app[SERVICE].hand_back(_id(request), _user(request), body.get("text"))
    return web.json_response(outcome.to_dict())


async def close(request: web.Request) -> web.Response:
    body = await _json(request)
    outcome = await request.app[SERVICE].close(_id(request), _user(request), body.get("text"))
    return web.json_response(outcome.to_dict())


async def transfer(request: web.Request) -> web.Response:
    body = await _json(request)
    try:
        row = await request.app[SERVICE].transfer(_id(request), _user(request), str(body.get("to") or ""))
    except KeyError as exc:
        return _error(404, str(exc.args[0]))
    return web.json_response({"handoff": row.to_dict()})


# ----------------------------------------------------------------- lead API
def _review_path(request: web.Request) -> Path:
    service = request.app[SERVICE]
    return service.config.path(service.config.review_file)


def _intents(request: web.Request) -> set:
    service = request.app[SERVICE]
    return set(review.domain_intents(service.config.path(service.config.domain)))


async def review_rows(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(review.read_rows, _review_path(request))
    items = [dict(row, index=i) for i, row in enumerate(rows)]
    return web.json_response({"rows": items, "intents": sorted(_intents(request)), "dismiss": review.DISMISS})


async def review_label(request: web.Request) -> web.Response:
    body = await _json(request)
    try:
        row = await asyncio.to_thread(review.label_message, _review_path(request), _id(request, "index"),
                                      str(body.get("label") or ""), _intents(request))
    except KeyError:
        return _error(404, "no such message row")
    return web.json_response({"row": row})


async def review_candidate(request: web.Request) -> web.Response:
    body = await _json(request)
    try:
        added = await asyncio.to_thread(review.accept_candidate, _review_path(request), _id(request, "index"),
                                        str(body.get("name") or ""), _intents(request))
    except KeyError:
        return _error(404, "no such candidate row")
    return web.json_response({"labelled_messages": added})


async def review_export(request: web.Request) -> web.StreamResponse:
    path = _review_path(request)
    if not path.exists():
        return _error(404, "the retrain has not written a review file yet")
    return web.Response(body=path.read_bytes(), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="review.csv"'})


async def review_import(request: web.Request) -> web.Response:
    data = await request.read()
    count = await asyncio.to_thread(review.import_csv, _review_path(request), data)
    return web.json_response({"rows": count})


async def proposals(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response({"proposals": await asyncio.to_thread(service.proposals.list)})


async def _decide(request: web.Request, accept: bool) -> web.Response:
    service = request.app[SERVICE]
    body = await _json(request) if accept else {}
    try:
        decided = await asyncio.to_thread(service.proposals.decide, _id(request), _user(request).username, accept,
                                          service.config.path(service.config.kb_file), body.get("question"),
                                          body.get("answer"))
    except KeyError:
        return _error(404, "no such proposal")
    except ValueError as exc:
        status = 409 if "already" in str(exc) else 400
        return _error(status, str(exc))
    return web.json_response({"proposal": decided})


async def accept_proposal(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def reject_proposal(request: web.Request) -> web.Response:
    return await _decide(request, False)


def add_routes(app: web.Application, static_dir: Optional[Path] = None) -> None:
    r = app.router
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/", desk_page)
    r.add_get("/review", review_page)
    r.add_get("/api/me", me)
    r.add_get("/api/agents", agents)
    r.add_get("/api/queue", queue)
    r.add_get("/api/events", events)
    r.add_get("/api/handoffs/{id}", conversation)
    r.add_post("/api/handoffs/{id}/claim", claim)
    r.add_post("/api/handoffs/{id}/reply", reply)
    r.add_post("/api/handoffs/{id}/handback", hand_back)
    r.add_post("/api/handoffs/{id}/close", close)
    r.add_post("/api/handoffs/{id}/transfer", transfer)
    r.add_get("/api/review", review_rows)
    r.add_post("/api/review/{index}/label", review_label)
    r.add_post("/api/review/{index}/candidate", review_candidate)
    r.add_get("/api/review/export", review_export)
    r.add_post("/api/review/import", review_import)
    r.add_get("/api/proposals", proposals)
    r.add_post("/api/proposals/{id}/accept", accept_proposal)
    r.add_post("/api/proposals/{id}/reject", reject_proposal)
    r.add_static("/static/", static_dir or HERE / "static")
