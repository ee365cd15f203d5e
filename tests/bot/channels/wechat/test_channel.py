"""The channel's answering rules in-process, with a scripted bot instead of Rasa (fast, exact timing)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import wechatpy
from wechatpy.utils import WeChatSigner

from bot.channels.wechat import WeChatInput
from tests.bot.channels.fake_platforms import FakeWeChatAPI

TOKEN, APP_ID, SECRET = "t0ken", "wx1", "s3cret"


@pytest.fixture
def fake():
    server = FakeWeChatAPI(APP_ID, SECRET, "ww1", "x").start()
    yield server
    server.stop()


def channel_for(fake, passive_timeout_s: float = 0.5) -> WeChatInput:
    return WeChatInput.from_credentials({"token": TOKEN, "app_id": APP_ID, "secret": SECRET,
                                         "api_url": fake.url + "/cgi-bin/", "passive_timeout_s": passive_timeout_s})


def incoming(channel: WeChatInput, user: str, text: str, msg_id: int):
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:8]
    signer = WeChatSigner()
    signer.add_data(TOKEN, ts, nonce)
    xml = (f"<xml><ToUserName>gh</ToUserName><FromUserName>{user}</FromUserName><CreateTime>{ts}</CreateTime>"
           f"<MsgType>text</MsgType><Content>{text}</Content><MsgId>{msg_id}</MsgId></xml>")
    return channel.protocol.decode({"signature": signer.signature, "timestamp": ts, "nonce": nonce}, xml.encode())


def bot_saying(*texts: str, delay_s: float = 0.0, calls: list | None = None):
    async def on_new_message(message):
        if calls is not None:
            calls.append(message.text)
        await asyncio.sleep(delay_s)
        for text in texts:
            await message.output_channel.send_text_message(message.sender_id, text)

    return on_new_message


async def settle(channel: WeChatInput) -> None:
    """Until the customer-service sends in flight are over."""
    while channel._background:
        await asyncio.sleep(0.01)


def test_answer_too_long_for_one_message_is_sent_in_order_through_the_api(fake):
    channel = channel_for(fake)
    paragraphs = [f"paragraph {i}: " + "很长的回答" * 100 for i in range(3)]  # 1500+ bytes each

    async def go():
        response = await channel.answer(incoming(channel, "u1", "hi", 1), bot_saying(*paragraphs), time.monotonic())
        assert response.body == b"success"
        await settle(channel)

    asyncio.run(go())
    assert fake.texts_to("u1") == paragraphs


def test_concurrent_retries_run_the_bot_once_and_send_once(fake):
    channel = channel_for(fake, passive_timeout_s=0.2)
    calls: list = []
    bot = bot_saying("done", delay_s=0.6, calls=calls)

    async def go():
        first = asyncio.create_task(channel.answer(incoming(channel, "u2", "slow", 2), bot, time.monotonic()))
        await asyncio.sleep(0.1)
        retry = await channel.answer(incoming(channel, "u2", "slow", 2), bot, time.monotonic())
        assert (await first).body == retry.body == b"success"
        await asyncio.sleep(0.8)
        await settle(channel)

    asyncio.run(go())
    assert calls == ["slow"] and fake.texts_to("u2") == ["done"]


def test_failing_bot_gets_an_apology_not_silence(fake):
    channel = channel_for(fake)

    async def broken(message):
        raise RuntimeError("tracker store down")

    async def go():
        return await channel.answer(incoming(channel, "u3", "hi", 3), broken, time.monotonic())

    reply = wechatpy.parse_message(asyncio.run(go()).body.decode())
    assert "something went wrong" in reply.content
