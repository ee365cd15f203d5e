"""Agents' replies on Slack and WeChat/WeCom go out through the platforms' APIs (fakes on loopback)."""

from __future__ import annotations

import pytest

from kefu.core.payloads import AGENT_KEY
from tests.bot.channels.fake_platforms import FakeSlackAPI, FakeWeChatAPI
from tests.desk.conftest import post

pytestmark = pytest.mark.asyncio


@pytest.fixture
def fake_slack(monkeypatch):
    server = FakeSlackAPI("xoxb-desk-test").start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-desk-test")
    monkeypatch.setenv("SLACK_API_URL", server.url + "/api/")
    yield server
    server.stop()


@pytest.fixture
def fake_wechat(monkeypatch):
    server = FakeWeChatAPI("wx-app", "wx-secret", "ww-corp", "ww-secret").start()
    for key, value in {"WECHAT_TOKEN": "t", "WECHAT_APPID": "wx-app", "WECHAT_SECRET": "wx-secret",
                       "WECHAT_API_URL": server.url + "/cgi-bin/", "WECOM_TOKEN": "t", "WECOM_CORPID": "ww-corp",
                       "WECOM_SECRET": "ww-secret", "WECOM_AGENTID": "1000002",
                       "WECOM_AES_KEY": "a" * 43, "WECOM_API_URL": server.url + "/cgi-bin/"}.items():
        monkeypatch.setenv(key, value)
    yield server
    server.stop()


async def _claimed(desk, queue, conversation_id, channel):
    make_client, _ = desk
    row = queue.enqueue(conversation_id, "customer_asked", channel)
    alice = await make_client("alice")
    assert (await post(alice, f"/api/handoffs/{row.id}/claim")).status == 200
    return alice, row


async def test_slack_reply_goes_to_the_channel_the_customer_wrote_in(desk, queue, fake_rasa, fake_slack):
    fake_rasa.conversation("U123", channel="slack", metadata={"out_channel": "D999", "thread_id": None})
    alice, row = await _claimed(desk, queue, "U123", "slack")
    response = await post(alice, f"/api/handoffs/{row.id}/reply", {"text": "Hi, this is Alice from support."})
    assert response.status == 200 and (await response.json())["delivered"] == "slack"
    [sent] = fake_slack.posts_to("D999")
    assert sent["text"] == "Hi, this is Alice from support."
    call = fake_rasa.appended[-1]
    assert call["execute_side_effects"] is None  # recorded only: the desk delivered it
    assert call["events"][0]["metadata"][AGENT_KEY] == "human"
    await post(alice, f"/api/handoffs/{row.id}/handback")
    assert fake_slack.posts_to("D999")[-1]["text"] == "You're back with Maple."


async def test_wechat_and_wecom_replies_use_the_customer_service_api(desk, queue, fake_rasa, fake_wechat):
    fake_rasa.conversation("oWx-user", channel="wechat")
    alice, row = await _claimed(desk, queue, "oWx-user", "wechat")
    response = await post(alice, f"/api/handoffs/{row.id}/reply", {"text": "您好，我是客服小王，马上为您查询。"})
    assert response.status == 200, await response.text()
    assert fake_wechat.texts_to("oWx-user") == ["您好，我是客服小王，马上为您查询。"]
    fake_rasa.conversation("wecom-user", channel="wecom")
    row2 = queue.enqueue("wecom-user", "customer_asked", "wecom")
    await post(alice, f"/api/handoffs/{row2.id}/claim")
    assert (await post(alice, f"/api/handoffs/{row2.id}/reply", {"text": "Hello from the desk"})).status == 200
    [message] = [m for m in fake_wechat.messages if m["touser"] == "wecom-user"]
    assert message["agentid"] == 1000002 and message["path"].endswith("/message/send")


async def test_a_refused_delivery_is_reported_but_recorded(desk, queue, fake_rasa, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    fake_rasa.conversation("U5", channel="slack")
    alice, row = await _claimed(desk, queue, "U5", "slack")
    response = await post(alice, f"/api/handoffs/{row.id}/reply", {"text": "hello?"})
    assert response.status == 502 and "recorded" in (await response.json())["error"]
    assert fake_rasa.appended[-1]["events"][0]["text"] == "hello?"


async def test_rest_replies_wait_in_the_tracker(desk, queue, fake_rasa):
    fake_rasa.conversation("rest-1", channel="rest")
    alice, row = await _claimed(desk, queue, "rest-1", "rest")
    response = await post(alice, f"/api/handoffs/{row.id}/reply", {"text": "Your refund is on its way."})
    assert "next poll" in (await response.json())["delivered"]
    assert fake_rasa.trackers["rest-1"]["events"][-1]["text"] == "Your refund is on its way."
