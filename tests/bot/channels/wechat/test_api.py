"""The customer-service sender against the fake WeChat API: token cache, refresh, UTF-8."""

import asyncio

import pytest

from bot.channels.wechat.api import WeChatAPIError, official_account_sender, wecom_sender
from tests.bot.channels.fake_platforms import FakeWeChatAPI


@pytest.fixture
def fake():
    server = FakeWeChatAPI("wx1", "secret1", "ww1", "secret2").start()
    yield server
    server.stop()


def test_token_is_fetched_once_for_many_and_concurrent_sends(fake):
    sender = official_account_sender(fake.url + "/cgi-bin/", "wx1", "secret1")

    async def go():
        await asyncio.gather(*(sender.send_texts(f"user{i}", ["hi"]) for i in range(5)))
        await sender.send_texts("user0", ["again", "你好"])

    asyncio.run(go())
    assert fake.token_fetches == 1
    assert len(fake.messages) == 7 and fake.texts_to("user0") == ["hi", "again", "你好"]
    assert all(m["path"] == "/cgi-bin/message/custom/send" and m["msgtype"] == "text" for m in fake.messages)
    assert "你好".encode("utf-8") in fake.messages[-1]["raw"]


def test_expired_token_is_replaced_and_the_send_retried(fake):
    sender = official_account_sender(fake.url + "/cgi-bin/", "wx1", "secret1")
    asyncio.run(sender.send_texts("u", ["one"]))
    fake.expire_tokens()
    asyncio.run(sender.send_texts("u", ["two"]))
    assert fake.texts_to("u") == ["one", "two"]
    assert fake.token_fetches == 2 and fake.refused == 1


def test_wecom_sends_carry_the_agent_id(fake):
    asyncio.run(wecom_sender(fake.url + "/cgi-bin/", "ww1", "secret2", 1000002).send_texts("zhangsan", ["hi"]))
    assert fake.messages[0]["agentid"] == 1000002 and fake.messages[0]["path"] == "/cgi-bin/message/send"


def test_wrong_secret_is_reported_not_retried_forever(fake):
    sender = official_account_sender(fake.url + "/cgi-bin/", "wx1", "wrong")
    with pytest.raises(WeChatAPIError, match="40125"):
        asyncio.run(sender.send_texts("u", ["hi"]))
    assert fake.messages == []
