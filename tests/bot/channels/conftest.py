"""One live bot for the Slack and WeChat channel tests, wired to fake Slack and WeChat APIs.

The bot is started with the project's credentials.yml and the channels' settings
in environment variables (as in production), the API base URLs pointing at the
fakes, and `slow_actions` as its action server (order status takes 5 s).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
from pathlib import Path
from typing import Dict, Optional, Tuple

import aiohttp
import pytest

from tests.bot.channels.fake_platforms import FakeSlackAPI, FakeWeChatAPI
from tests.live_bot import LiveBot

MODEL = os.environ.get("KEFU_TEST_MODEL")

SLACK_TOKEN = "xoxb-kefu-test-token"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
WECHAT = {"token": "kefu-wechat-token", "app_id": "wx5823bf96d3bd56c7", "secret": "wechat-app-secret",
          "aes_key": base64.b64encode(b"kefu-test-encoding-aes-key-32byt").decode()[:-1]}
WECOM = {"token": "kefu-wecom-token", "corp_id": "ww1436e0e65a779aee", "secret": "wecom-app-secret",
         "agent_id": 1000002, "aes_key": base64.b64encode(b"kefu-wecom-encoding-aes-key-32by").decode()[:-1]}
PASSIVE_TIMEOUT_S = 3.5  # the fast path ("hello") must fit in it on a busy 2-core machine
SLOW_ACTION_S = 6.0
CHINESE_ITEM = "保温杯 (500 ml)"  # order 771204's item in the test orders database: non-ASCII out


@pytest.fixture(scope="package")
def fake_slack():
    server = FakeSlackAPI(SLACK_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def fake_wechat():
    server = FakeWeChatAPI(WECHAT["app_id"], WECHAT["secret"], WECOM["corp_id"], WECOM["secret"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def channel_bot(tmp_path_factory, fake_slack, fake_wechat):
    if not MODEL:
        pytest.skip("needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")
    from bot.actions.orders_db import OrdersDB

    workdir = tmp_path_factory.mktemp("channels")
    OrdersDB(workdir / "orders.db").get("771204")  # creates and seeds it
    with sqlite3.connect(workdir / "orders.db") as db:
        db.execute("update orders set item = ? where order_number = '771204'", (CHINESE_ITEM,))
    env = {
        "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_API_URL": fake_slack.url + "/api/",
        "WECHAT_TOKEN": WECHAT["token"], "WECHAT_APPID": WECHAT["app_id"], "WECHAT_SECRET": WECHAT["secret"],
        "WECHAT_AES_KEY": WECHAT["aes_key"], "WECHAT_API_URL": fake_wechat.url + "/cgi-bin/",
        "WECHAT_PASSIVE_TIMEOUT_S": str(PASSIVE_TIMEOUT_S),
        "WECOM_TOKEN": WECOM["token"], "WECOM_CORPID": WECOM["corp_id"], "WECOM_SECRET": WECOM["secret"],
        "WECOM_AGENTID": str(WECOM["agent_id"]), "WECOM_AES_KEY": WECOM["aes_key"],
        "WECOM_API_URL": fake_wechat.url + "/cgi-bin/", "WECOM_PASSIVE_TIMEOUT_S": str(PASSIVE_TIMEOUT_S),
        "KEFU_TEST_SLOW_ACTION_S": str(SLOW_ACTION_S),
    }
    bot = LiveBot(Path(MODEL), workdir, actions="tests.bot.channels.slow_actions", env=env).start()
    yield bot
    bot.stop()


def http(method: str, url: str, data: Optional[bytes] = None,
         headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
    """One request; status, headers and body."""

    async def go():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async with session.request(method, url, data=data, headers=headers) as response:
                return response.status, dict(response.headers), await response.read()

    return asyncio.run(go())


def user_texts(bot: LiveBot, sender: str) -> list:
    """What `sender` said, as the tracker store kept it."""
    import json

    with sqlite3.connect(bot.tracker_db) as db:
        rows = db.execute("select data from events where sender_id = ? and type_name = 'user' order by id",
                          (sender,)).fetchall()
    return [json.loads(data).get("text") for (data,) in rows]
