"""Access: nothing without a session, CSRF on every change, leads-only pages, sign-in limits."""

from __future__ import annotations

import pytest

from tests.desk.conftest import PASSWORD, post, sign_in

pytestmark = pytest.mark.asyncio


def _routes(app):
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter") or (info.get("prefix", "") + "/desk.js")
        yield route.method, path.replace("{id}", "1").replace("{index}", "0")


async def test_every_route_refuses_without_a_session(desk):
    make_client, app = desk
    client = await make_client()
    checked = 0
    for method, path in _routes(app):
        if path == "/login" or method == "HEAD":
            continue
        response = await client.request(method, path, allow_redirects=False)
        checked += 1
        if path.startswith("/api/"):
            assert response.status == 401, (method, path)
        else:
            assert response.status == 302 and response.headers["Location"] == "/login", (method, path)
    assert checked >= 22  # every page and API route, the static files
    for path in ("/static/desk.js", "/static/desk.css", "/static/review.js"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302, path


async def test_an_agent_cannot_reach_lead_routes(desk):
    make_client, app = desk
    agent = await make_client("alice")
    for path in ("/review", "/api/review", "/api/proposals", "/api/review/export"):
        assert (await agent.get(path)).status == 403, path
    for path in ("/api/review/0/label", "/api/review/0/candidate", "/api/review/import", "/api/proposals/1/accept",
                 "/api/proposals/1/reject"):
        assert (await post(agent, path, {"label": "greet"})).status == 403, path
    lead = await make_client("lena")
    assert (await lead.get("/review")).status == 200
    assert (await lead.get("/api/review")).status == 200


async def test_changes_need_the_sessions_csrf_token(desk, queue):
    make_client, _ = desk
    row = queue.enqueue("c1", "customer_asked", "socketio")
    alice = await make_client("alice")
    assert (await post(alice, f"/api/handoffs/{row.id}/claim", csrf=False)).status == 403
    other = await make_client("bob")
    response = await alice.post(f"/api/handoffs/{row.id}/claim", headers={"X-CSRF-Token": other.csrf})
    assert response.status == 403
    assert queue.get(row.id).status == "waiting"


async def test_sign_in_form_needs_its_csrf_token(desk):
    make_client, _ = desk
    client = await make_client()
    await client.get("/login")
    response = await client.post("/login", data={"username": "alice", "password": PASSWORD}, allow_redirects=False)
    assert response.status == 403


async def test_wrong_passwords_are_rate_limited(desk):
    make_client, _ = desk
    client = await make_client()
    statuses = [(await sign_in(client, "alice", "wrong password!")).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    blocked = await sign_in(client, "alice", PASSWORD)  # even the right password waits now
    assert blocked.status == 429 and int(blocked.headers["Retry-After"]) > 0
    unknown = await sign_in(await make_client(), "nobody", PASSWORD)
    assert unknown.status in (401, 429)


async def test_signing_in_sets_a_strict_httponly_session_and_renews_it(desk):
    make_client, _ = desk
    client = await make_client()
    await client.get("/login")
    before = client.session.cookie_jar.filter_cookies(client.make_url("/")).get("kefu_desk")
    response = await sign_in(client, "alice")
    assert response.status == 302
    cookie = response.cookies["kefu_desk"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert before is None or before.value != cookie.value
    assert (await client.get("/api/me")).status == 200
    assert (await post(client, "/logout")).status in (200, 302)
    assert (await client.get("/api/me")).status == 401


async def test_security_headers(desk):
    make_client, _ = desk
    client = await make_client("alice")
    response = await client.get("/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_disabled_account_is_signed_out(desk, accounts):
    make_client, _ = desk
    client = await make_client("alice")
    accounts.set_active("alice", False)
    assert (await client.get("/api/me")).status == 401
