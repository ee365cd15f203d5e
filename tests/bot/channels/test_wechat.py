"""WeChat and WeCom as their servers see the bot: callbacks built, signed and encrypted with wechatpy,
sent to the running bot; late answers caught by a fake WeChat API."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional, Tuple
from urllib.parse import urlencode

import pytest
import wechatpy
import wechatpy.enterprise
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import PrpCrypto as WeComPrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.utils import WeChatSigner

from tests.bot.channels.conftest import CHINESE_ITEM, PASSIVE_TIMEOUT_S, SLOW_ACTION_S, WECHAT, WECOM, http, user_texts
from tests.bot.channels.fake_platforms import wait_for

_msg_ids = iter(range(int(time.time()) * 1000, 2**62))


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def new_user() -> str:
    return "o" + uuid.uuid4().hex[:27]


def message_xml(user: str, msg_type: str = "text", msg_id: Optional[int] = None, **fields) -> str:
    data = {"ToUserName": "gh_kefu_test", "FromUserName": user, "CreateTime": int(time.time()), "MsgType": msg_type}
    data.update(fields)
    if msg_id is not None:
        data["MsgId"] = msg_id
    return xmltodict.unparse({"xml": data}, full_document=False)


def text_xml(user: str, text: str, msg_id: Optional[int] = None) -> str:
    return message_xml(user, "text", next(_msg_ids) if msg_id is None else msg_id, Content=text)


class OfficialAccount:
    """WeChat's side of an Official Account's callbacks."""

    path = "/webhooks/wechat/webhook"

    def __init__(self, bot, token: str = WECHAT["token"]):
        self.bot = bot
        self.token = token
        self.crypto = WeChatCrypto(WECHAT["token"], WECHAT["aes_key"], WECHAT["app_id"])

    def query(self, timestamp: Optional[int] = None, **extra) -> Dict[str, str]:
        ts, nonce = str(int(time.time()) if timestamp is None else timestamp), uuid.uuid4().hex[:10]
        return {"signature": sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, **extra}

    def url(self, query: Dict[str, str]) -> str:
        return f"{self.bot.url}{self.path}?{urlencode(query)}"

    def post(self, xml: str, query: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
        status, _, body = http("POST", self.url(query or self.query()), xml.encode("utf-8"))
        return status, body.decode("utf-8")

    def post_encrypted(self, xml: str) -> Tuple[int, str, str]:
        """Safe mode: status, the raw answer, and the answer decrypted."""
        query = self.query(encrypt_type="aes")
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"]))["xml"]
        query["msg_signature"] = envelope["MsgSignature"]
        body = xmltodict.unparse({"xml": {"ToUserName": "gh_kefu_test", "Encrypt": envelope["Encrypt"]}},
                                 full_document=False)
        status, raw = self.post(body, query)
        if status != 200 or raw == "success":
            return status, raw, raw
        answer = xmltodict.parse(raw)["xml"]
        return status, raw, self.crypto.decrypt_message(raw, answer["MsgSignature"], answer["TimeStamp"], answer["Nonce"])


def reply_text(xml: str) -> str:
    return wechatpy.parse_message(xml).content


@pytest.fixture(scope="module")
def account(channel_bot):
    return OfficialAccount(channel_bot)


def test_url_verification_echoes_echostr_only_when_signed(account):
    status, _, body = http("GET", account.url(account.query(echostr="5837400591840232413")))
    assert (status, body) == (200, b"5837400591840232413")
    forged = dict(account.query(echostr="123"), signature="0" * 40)
    assert http("GET", account.url(forged))[0] == 403


def test_text_gets_a_passive_reply_with_numbered_buttons_and_a_number_picks_one(account):
    user = new_user()
    status, xml = account.post(text_xml(user, "hello"))
    assert status == 200
    reply = wechatpy.parse_message(xml)
    assert (reply.source, reply.target) == ("gh_kefu_test", user)  # from the account back to the customer
    assert "Maple Market" in reply.content and "1. Where is my order?" in reply.content
    status, xml = account.post(text_xml(user, "1"))
    assert "order number" in reply_text(xml).lower()


def test_safe_mode_message_is_decrypted_and_the_reply_encrypted(account):
    user = new_user()
    status, raw, decrypted = account.post_encrypted(text_xml(user, "hello"))
    assert status == 200
    assert "Maple Market" not in raw and "<Encrypt>" in raw
    assert "Maple Market" in reply_text(decrypted)


def test_slow_answer_goes_through_the_api_once_despite_retries(account, channel_bot, fake_wechat):
    user = new_user()
    xml = text_xml(user, "where is my order 771204?")
    with ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        first = pool.submit(account.post, xml)
        time.sleep(1)
        retry = pool.submit(account.post, xml)  # WeChat's retry while the first is in flight
        assert first.result() == (200, "success")
        assert PASSIVE_TIMEOUT_S - 0.5 < time.monotonic() - started < 5, "answer `success` before WeChat's 5 s"
        assert retry.result() == (200, "success")
    texts = wait_for(lambda: fake_wechat.texts_to(user), timeout_s=60, what="the customer-service message")
    delivered = time.monotonic()
    assert "771204" in texts[0] and CHINESE_ITEM in texts[0]
    raw = next(m["raw"] for m in fake_wechat.messages if m.get("touser") == user)
    assert CHINESE_ITEM.encode("utf-8") in raw  # UTF-8, not \u escapes (WeChat would show them)
    assert account.post(xml) == (200, "success")  # a late retry: the answer is already on its way
    # A second run would have queued behind the first (Rasa's per-conversation lock) and needed
    # the slow action's time again: wait that long before counting.
    time.sleep(max(0.0, SLOW_ACTION_S + 2 - (time.monotonic() - delivered)))
    assert len(fake_wechat.texts_to(user)) == 1
    assert user_texts(channel_bot, user) == ["where is my order 771204?"]


def test_expired_access_token_is_replaced_and_the_message_still_sent(account, fake_wechat):
    user = new_user()
    fake_wechat.expire_tokens()
    fetches, refused = fake_wechat.token_fetches, fake_wechat.refused
    assert account.post(text_xml(user, "where is my order 104233"))[1] == "success"
    texts = wait_for(lambda: fake_wechat.texts_to(user), timeout_s=60, what="the customer-service message")
    assert "104233" in texts[0]
    assert fake_wechat.refused >= refused + 1 and fake_wechat.token_fetches >= fetches + 1


def test_retry_after_a_passive_reply_gets_the_same_answer_without_processing_again(account, channel_bot):
    user = new_user()
    xml = text_xml(user, "thanks a lot")
    _, first = account.post(xml)
    _, again = account.post(xml)
    assert reply_text(first) == reply_text(again) and reply_text(first)
    assert user_texts(channel_bot, user) == ["thanks a lot"]


def test_chinese_text_reaches_the_bot_intact(account, channel_bot):
    user = new_user()
    assert account.post(text_xml(user, "你好，我的订单到哪里了？🙂"))[0] == 200
    assert wait_for(lambda: user_texts(channel_bot, user), what="the message in the tracker store") == [
        "你好，我的订单到哪里了？🙂"]


def test_subscribe_gets_the_welcome_and_unsubscribe_nothing(account):
    user = new_user()
    _, xml = account.post(message_xml(user, "event", Event="subscribe", EventKey=""))
    assert "Maple Market" in reply_text(xml)
    assert account.post(message_xml(user, "event", Event="unsubscribe")) == (200, "success")


@pytest.mark.parametrize("msg_type,fields", [
    ("image", {"PicUrl": "http://example.com/a.jpg", "MediaId": "m1"}),
    ("location", {"Location_X": "23.1", "Location_Y": "113.3", "Scale": "20", "Label": "广州"}),
    ("voice", {"MediaId": "m2", "Format": "amr"}),
])
def test_unsupported_messages_get_a_polite_text_answer(account, msg_type, fields):
    _, xml = account.post(message_xml(new_user(), msg_type, next(_msg_ids), **fields))
    assert "only read text" in reply_text(xml)


@pytest.mark.parametrize("problem", ["forged signature", "stale timestamp", "missing nonce", "not xml", "wrong key",
                                     "too large"])
def test_bad_callbacks_are_refused_and_not_processed(account, channel_bot, problem):
    user = new_user()
    xml = text_xml(user, "hello")
    query = account.query()
    expected = 403
    if problem == "forged signature":
        query = OfficialAccount(channel_bot, token="not-the-token").query()
    elif problem == "stale timestamp":
        query = account.query(timestamp=int(time.time()) - 3600)
    elif problem == "missing nonce":
        del query["nonce"]
        expected = 400
    elif problem == "not xml":
        xml, expected = "this is not xml", 400
    elif problem == "too large":
        xml, expected = text_xml(user, "x" * 70_000), 413
    else:  # encrypted with another account's key: the signature is right, decryption fails
        other = WeChatCrypto(WECHAT["token"], "A" * 43, WECHAT["app_id"])
        query = account.query(encrypt_type="aes")
        envelope = xmltodict.parse(other.encrypt_message(xml, query["nonce"], query["timestamp"]))["xml"]
        query["msg_signature"] = envelope["MsgSignature"]
        xml = xmltodict.unparse({"xml": {"Encrypt": envelope["Encrypt"]}}, full_document=False)
        expected = 400
    status, body = account.post(xml, query)
    assert status == expected, body
    assert user_texts(channel_bot, user) == []


# --- WeCom ---------------------------------------------------------------------------------------------------------

class WeComApp:
    path = "/webhooks/wecom/webhook"

    def __init__(self, bot):
        self.bot = bot
        self.crypto = WeComCrypto(WECOM["token"], WECOM["aes_key"], WECOM["corp_id"])

    def url(self, query: Dict[str, str]) -> str:
        return f"{self.bot.url}{self.path}?{urlencode(query)}"

    def post(self, xml: str) -> Tuple[int, str]:
        ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        body = xmltodict.unparse({"xml": {"ToUserName": WECOM["corp_id"], "AgentID": WECOM["agent_id"],
                                          "Encrypt": envelope["Encrypt"]}}, full_document=False)
        query = {"msg_signature": envelope["MsgSignature"], "timestamp": ts, "nonce": nonce}
        status, _, raw = http("POST", self.url(query), body.encode("utf-8"))
        raw = raw.decode("utf-8")
        if status != 200 or raw == "success":
            return status, raw
        answer = xmltodict.parse(raw)["xml"]
        return status, self.crypto.decrypt_message(raw, answer["MsgSignature"], answer["TimeStamp"], answer["Nonce"])


def wecom_text(user: str, text: str) -> str:
    return message_xml(user, "text", next(_msg_ids), Content=text, AgentID=WECOM["agent_id"])


@pytest.fixture(scope="module")
def wecom(channel_bot):
    return WeComApp(channel_bot)


def test_wecom_url_verification_decrypts_echostr(wecom):
    ts, nonce = str(int(time.time())), "n0nce"
    echostr = WeComPrpCrypto(wecom.crypto.key).encrypt("wecom-echo-4242", WECOM["corp_id"]).decode()
    query = {"msg_signature": sign(WECOM["token"], ts, nonce, echostr), "timestamp": ts, "nonce": nonce,
             "echostr": echostr}
    assert http("GET", wecom.url(query))[::2] == (200, b"wecom-echo-4242")
    assert http("GET", wecom.url(dict(query, msg_signature="0" * 40)))[0] == 403


def test_wecom_text_gets_an_encrypted_passive_reply(wecom):
    status, xml = wecom.post(wecom_text("zhangsan", "hello"))
    assert status == 200
    reply = wechatpy.enterprise.parse_message(xml)
    assert "Maple Market" in reply.content and reply.agent == WECOM["agent_id"]


def test_wecom_slow_answer_is_sent_with_the_agent_id(wecom, fake_wechat):
    user = f"lisi-{uuid.uuid4().hex[:6]}"
    assert wecom.post(wecom_text(user, "where is my order 104233?")) == (200, "success")
    wait_for(lambda: fake_wechat.texts_to(user), timeout_s=60, what="the WeCom message")
    sent = next(m for m in fake_wechat.messages if m.get("touser") == user)
    assert sent["path"] == "/cgi-bin/message/send" and sent["agentid"] == WECOM["agent_id"]
    assert "104233" in sent["text"]["content"]

