"""`kefu run` (what `make run` serves) keeps strangers out: API token, loopback action server, channel limits, /metrics."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from pathlib import Path


def call(method: str, url: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(errors="replace")


def test_the_http_api_needs_the_generated_token(kefu_server):
    token_file = kefu_server.workdir / "var" / "secrets" / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    url = kefu_server.rasa_url
    assert call("DELETE", f"{url}/model")[0] in (401, 403)  # used to unload the model of `make run`
    assert call("GET", f"{url}/conversations/someone/tracker")[0] in (401, 403)
    assert call("POST", f"{url}/conversations/someone/tracker/events", {"event": "pause"})[0] in (401, 403)
    assert call("POST", f"{url}/model/parse", {"text": "hi"})[0] in (401, 403)
    assert call("GET", f"{url}/status?token={token}")[0] == 200  # still served: the model was not unloaded
    assert "token" in kefu_server.log() and str(token_file) in kefu_server.log() and token not in kefu_server.log()


def test_the_action_server_listens_on_loopback_only(kefu_server):
    port = kefu_server.actions_port
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                addresses.add(local.rsplit(":", 1)[0])
    assert addresses and addresses <= {"0100007F", "00000000000000000000000001000000"}, addresses


def test_rest_refuses_long_messages_and_floods_from_one_sender(kefu_server):
    webhook = f"{kefu_server.rasa_url}/webhooks/rest/webhook"
    status, _, body = call("POST", webhook, {"sender": "long", "message": "x" * 5001})
    assert status == 413 and "longer than 5000" in body
    statuses = []
    for _ in range(15):  # default: 30 a minute, bursts of 10, per process without Redis
        status, headers, _ = call("POST", webhook, {"sender": "flood", "message": "/greet"})
        statuses.append(status)
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}


def test_metrics_are_served(kefu_server):
    status, _, body = call("GET", f"{kefu_server.rasa_url}/metrics")
    assert status == 200
    for name in ("kefu_messages_total", "kefu_stage_seconds_bucket", "kefu_model_info", "kefu_refused_messages_total"):
        assert name in body


def test_the_agent_desk_runs_beside_the_bot_and_asks_for_a_sign_in(kefu_server):
    import time

    deadline = time.monotonic() + 30
    status, headers = None, {}
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{kefu_server.desk_port}/", method="GET")
            opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                                      {"redirect_request": lambda *a, **k: None}))
            with opener.open(request, timeout=10) as response:
                status, headers = response.status, dict(response.headers)
        except urllib.error.HTTPError as e:
            status, headers = e.code, dict(e.headers)
        except OSError:
            time.sleep(0.5)
            continue
        break
    assert status in (302, 303) and "login" in headers.get("Location", ""), (status, headers)
