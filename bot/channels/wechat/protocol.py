"""The callback protocol of WeChat Official Accounts and of WeCom, done with wechatpy.

Each protocol turns a callback request's query and body into a parsed wechatpy
message (checking the signature and decrypting "safe mode" messages) and a
reply text into the body WeChat expects (encrypted when the request was).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Text

import wechatpy
import wechatpy.enterprise
from wechatpy import replies as mp_replies
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise import replies as work_replies
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatException
from wechatpy.utils import check_signature


class BadCallback(Exception):
    """The request is not a valid callback; `status` is the HTTP status to answer."""

    def __init__(self, message: Text, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Incoming:
    message: Any  # a wechatpy message or event
    encrypted: bool
    nonce: Text
    timestamp: Text


def _param(query: Mapping[Text, Text], name: Text) -> Text:
    value = query.get(name)
    if not value:
        raise BadCallback(f"missing query parameter '{name}'")
    return value


def _check_fresh(timestamp: Text, max_skew_s: float) -> None:
    """Signatures of plaintext callbacks do not cover the body: refuse old ones (replays)."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise BadCallback("timestamp is not a number") from None
    if max_skew_s and age > max_skew_s:
        raise BadCallback(f"stale timestamp ({int(age)} s old)", status=403)


def _parse(parse, xml: Text) -> Any:
    try:
        message = parse(xml)
    except Exception as e:  # xmltodict raises ExpatError, KeyError on a missing MsgType...
        raise BadCallback(f"body is not a WeChat XML message ({type(e).__name__})") from None
    if message is None:
        raise BadCallback("empty body")
    return message


class OfficialAccountProtocol:
    """WeChat Official Account (公众号): plaintext, compatible and safe (AES) modes."""

    def __init__(self, token: Text, app_id: Text, aes_key: Optional[Text], max_skew_s: float = 300):
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self.max_skew_s = max_skew_s

    def _check(self, query: Mapping[Text, Text]) -> None:
        timestamp = _param(query, "timestamp")
        try:
            check_signature(self.token, _param(query, "signature"), timestamp, _param(query, "nonce"))
        except InvalidSignatureException:
            raise BadCallback("invalid signature", status=403) from None
        _check_fresh(timestamp, self.max_skew_s)

    def verify_url(self, query: Mapping[Text, Text]) -> Text:
        """GET at setup: echo `echostr` when the signature is right."""
        self._check(query)
        return _param(query, "echostr")

    def decode(self, query: Mapping[Text, Text], body: bytes) -> Incoming:
        self._check(query)
        encrypted = query.get("encrypt_type") == "aes"
        xml = body.decode("utf-8", errors="replace")
        if encrypted:
            if self.crypto is None:
                raise BadCallback("encrypted message but no EncodingAESKey configured (WECHAT_AES_KEY)")
            try:
                xml = self.crypto.decrypt_message(xml, _param(query, "msg_signature"), query["timestamp"], query["nonce"])
            except InvalidSignatureException:
                raise BadCallback("invalid msg_signature", status=403) from None
            except Exception as e:  # malformed XML, no <Encrypt>, bad padding, wrong app id
                raise BadCallback(f"cannot decrypt the message ({type(e).__name__})") from None
        return Incoming(_parse(wechatpy.parse_message, xml), encrypted, query["nonce"], query["timestamp"])

    def reply(self, incoming: Incoming, text: Text) -> Text:
        xml = mp_replies.create_reply(text, incoming.message, render=True)
        if incoming.encrypted:
            return self.crypto.encrypt_message(xml, incoming.nonce, str(int(time.time())))
        return xml


class WeComProtocol:
    """WeCom (企业微信) self-built app callbacks: always AES-encrypted, echostr encrypted too."""

    def __init__(self, token: Text, corp_id: Text, aes_key: Text, max_skew_s: float = 300):
        self.crypto = WeComCrypto(token, aes_key, corp_id)
        self.max_skew_s = max_skew_s

    def verify_url(self, query: Mapping[Text, Text]) -> Text:
        timestamp = _param(query, "timestamp")
        try:
            echo = self.crypto.check_signature(_param(query, "msg_signature"), timestamp, _param(query, "nonce"),
                                               _param(query, "echostr"))
        except InvalidSignatureException:
            raise BadCallback("invalid msg_signature", status=403) from None
        except (WeChatException, ValueError, TypeError) as e:
            raise BadCallback(f"cannot decrypt echostr ({type(e).__name__})") from None
        _check_fresh(timestamp, self.max_skew_s)
        return echo.decode("utf-8") if isinstance(echo, bytes) else echo

    def decode(self, query: Mapping[Text, Text], body: bytes) -> Incoming:
        timestamp, nonce = _param(query, "timestamp"), _param(query, "nonce")
        try:
            xml = self.crypto.decrypt_message(body.decode("utf-8", errors="replace"), _param(query, "msg_signature"),
                                              timestamp, nonce)
        except InvalidSignatureException:
            raise BadCallback("invalid msg_signature", status=403) from None
        except BadCallback:
            raise
        except Exception as e:  # malformed XML, no <Encrypt>, bad padding, wrong corp id
            raise BadCallback(f"cannot decrypt the message ({type(e).__name__})") from None
        _check_fresh(timestamp, self.max_skew_s)
        return Incoming(_parse(wechatpy.enterprise.parse_message, xml), True, nonce, timestamp)

    def reply(self, incoming: Incoming, text: Text) -> Text:
        xml = work_replies.create_reply(text, incoming.message, render=True)
        return self.crypto.encrypt_message(xml, incoming.nonce, str(int(time.time())))
