"""Slack as Slack sees it: signed Events API requests to the running bot, replies caught by a fake Slack API."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

import pytest
from rasa.shared.exceptions import InvalidConfigException
from slack_sdk.signature import SignatureVerifier

from bot.channels.disabled import DisabledInput
from bot.channels.slack import SlackInput
from tests.bot.channels.conftest import CHINESE_ITEM, SLACK_SECRET, http, user_texts
from tests.bot.channels.fake_platforms import wait_for

WEBHOOK = "/webhooks/slack/webhook"


def event(text: str, user: str, channel: str) -> dict:
    return {
        "token": "legacy-verification-token", "team_id": "T0KEFU", "api_app_id": "A0KEFU",
        "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
        "authorizations": [{"user_id": "U0BOT"}],
        "event": {"type": "message", "channel_type": "im", "channel": channel, "user": user, "text": text,
                  "ts": f"{time.time():.6f}"},
    }


def signed_headers(body: bytes, content_type: str = "application/json", secret: str = SLACK_SECRET,
                   timestamp: int | None = None, **extra: str) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature, **extra}


def post(bot, payload, **header_options):
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8") if not isinstance(payload, bytes) else payload
    return http("POST", bot.url + WEBHOOK, body, signed_headers(body, **header_options))


def new_ids():
    suffix = uuid.uuid4().hex[:8].upper()
    return f"U{suffix}", f"D{suffix}"


def test_event_with_charset_in_content_type_is_answered_through_the_slack_api(channel_bot, fake_slack):
    user, channel = new_ids()
    status, _, _ = post(channel_bot, event("where is my order 771204?", user, channel),
                        content_type="application/json; charset=utf-8")
    assert status == 200
    posts = wait_for(lambda: [p for p in fake_slack.posts_to(channel) if "771204" in p.get("text", "")],
                     timeout_s=60, what="the order status reply")
    assert CHINESE_ITEM in posts[0]["text"]  # non-ASCII reaches Slack intact
    assert "as_user" not in posts[0]


def test_plain_json_event_is_answered_and_non_ascii_text_kept(channel_bot, fake_slack):
    user, channel = new_ids()
    assert post(channel_bot, event("hello ✨ 你好", user, channel))[0] == 200
    wait_for(lambda: fake_slack.posts_to(channel), timeout_s=30, what="a reply")
    assert wait_for(lambda: user_texts(channel_bot, user), what="the tracker") == ["hello ✨ 你好"]


def test_button_click_sent_as_form_with_charset_is_answered(channel_bot, fake_slack):
    user, channel = new_ids()
    payload = {"type": "block_actions", "user": {"id": user}, "channel": {"id": channel},
               "message": {"ts": f"{time.time():.6f}"}, "actions": [{"type": "button", "value": "/greet"}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    status, _, _ = http("POST", channel_bot.url + WEBHOOK, body,
                        signed_headers(body, content_type="application/x-www-form-urlencoded; charset=utf-8"))
    assert status == 200
    posts = wait_for(lambda: fake_slack.posts_to(channel), timeout_s=30, what="the greeting")
    assert "Maple Market" in posts[0]["text"]


def test_retry_of_a_received_event_is_acknowledged_and_not_processed_again(channel_bot, fake_slack):
    user, channel = new_ids()
    payload = event("hello there", user, channel)
    assert post(channel_bot, payload)[0] == 200
    # Rasa saves the conversation after the last reply is sent: then the replies are all counted.
    wait_for(lambda: user_texts(channel_bot, user), timeout_s=30, what="the first run to finish")
    replies = len(fake_slack.posts_to(channel))
    assert replies >= 1
    for number, reason in ((1, "http_error"), (2, "http_timeout")):
        status, headers, _ = post(channel_bot, payload, **{"X-Slack-Retry-Num": str(number),
                                                           "X-Slack-Retry-Reason": reason})
        assert status == 200 and headers.get("X-Slack-No-Retry") == "1"
    time.sleep(2)
    assert user_texts(channel_bot, user) == ["hello there"]
    assert len(fake_slack.posts_to(channel)) == replies


def test_retry_of_an_event_never_received_is_processed(channel_bot, fake_slack):
    user, channel = new_ids()
    status, _, _ = post(channel_bot, event("hi", user, channel),
                        **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "connection_failed"})
    assert status == 200
    wait_for(lambda: fake_slack.posts_to(channel), timeout_s=30, what="a reply")


@pytest.mark.parametrize("problem", ["bad signature", "stale timestamp", "no signature"])
def test_unauthentic_requests_are_refused_and_not_processed(channel_bot, fake_slack, problem):
    user, channel = new_ids()
    body = json.dumps(event("hello", user, channel)).encode()
    if problem == "bad signature":
        headers = signed_headers(body, secret="not-the-secret")
    elif problem == "stale timestamp":
        headers = signed_headers(body, timestamp=int(time.time()) - 600)  # correctly signed, 10 minutes old
    else:
        headers = {"Content-Type": "application/json"}
    status, _, _ = http("POST", channel_bot.url + WEBHOOK, body, headers)
    assert status == 400
    time.sleep(1)
    assert user_texts(channel_bot, user) == [] and fake_slack.posts_to(channel) == []


def test_url_verification_answers_the_challenge(channel_bot):
    status, _, body = post(channel_bot, {"type": "url_verification", "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
                           content_type="application/json; charset=utf-8")
    assert status == 200
    assert json.loads(body) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize("body", [b"[1, 2]", b"{not json"], ids=["array", "malformed"])
def test_bodies_that_are_not_a_json_object_get_a_400(channel_bot, body):
    status, _, text = post(channel_bot, body)
    assert status == 400, text
    assert channel_bot.alive()


def test_slack_is_off_without_its_environment_and_refuses_half_a_configuration(monkeypatch):
    for var in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL", "SLACK_API_URL"):
        monkeypatch.delenv(var, raising=False)
    assert isinstance(SlackInput.from_credentials(None), DisabledInput)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(InvalidConfigException, match="SLACK_SIGNING_SECRET"):
        SlackInput.from_credentials(None)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    channel = SlackInput.from_credentials({"slack_api_url": "http://127.0.0.1:9/api/"})
    assert channel.slack_token == "xoxb-1" and channel.api_url == "http://127.0.0.1:9/api/"
    assert channel.get_output_channel("C1").client.base_url == "http://127.0.0.1:9/api/"
