"""Outgoing WeChat / WeCom messages (customer-service API) with a cached access token, over aiohttp.

wechatpy's clients do the same with `requests` (blocking); this is the async
equivalent of the two calls the channel needs: fetch a token, send a text.
The token is cached until a minute before `expires_in`, fetched once for
concurrent senders, and fetched again when WeChat answers 40001/40014/42001
(invalid or expired token), after which the send is retried once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Dict, Optional, Text

import aiohttp

logger = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}
REFRESH_MARGIN_S = 60


class WeChatAPIError(Exception):
    def __init__(self, errcode: Any, errmsg: Text):
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode


class AccessToken:
    """Cached access token of one app."""

    def __init__(self, url: Text, params: Dict[Text, Text], timeout_s: float = 10):
        self.url = url
        self.params = params
        self.timeout_s = timeout_s
        self._token: Optional[Text] = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self, session: aiohttp.ClientSession, stale: Optional[Text] = None) -> Text:
        """The current token; a new one when it expires soon or when `stale` (a refused token) is current."""
        async with self._lock:
            if self._token and self._token != stale and time.monotonic() < self._expires_at - REFRESH_MARGIN_S:
                return self._token
            async with session.get(self.url, params=self.params) as response:
                result = await _json(response)
            if not result.get("access_token"):
                raise WeChatAPIError(result.get("errcode"), result.get("errmsg", "no access_token in the answer"))
            self.fetches += 1
            self._token = result["access_token"]
            self._expires_at = time.monotonic() + float(result.get("expires_in", 7200))
            logger.info("WeChat access token fetched (valid %s s)", result.get("expires_in", 7200))
            return self._token


async def _json(response: aiohttp.ClientResponse) -> Dict[Text, Any]:
    if response.status != 200:
        raise WeChatAPIError(f"HTTP {response.status}", (await response.text())[:200])
    try:
        result = json.loads(await response.read())
    except ValueError:
        raise WeChatAPIError("bad JSON", "the API did not answer JSON") from None
    if not isinstance(result, dict):
        raise WeChatAPIError("bad JSON", "the API did not answer a JSON object")
    return result


class MessageSender:
    """POSTs text messages to `send_url`; `extra` goes into every payload (WeCom's `agentid`)."""

    def __init__(self, token: AccessToken, send_url: Text, extra: Optional[Dict[Text, Any]] = None,
                 timeout_s: float = 10):
        self.token = token
        self.send_url = send_url
        self.extra = extra or {}
        self.timeout_s = timeout_s

    async def send_texts(self, user: Text, texts: list) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as session:
            for text in texts:
                await self._send(session, {"touser": user, "msgtype": "text", "text": {"content": text}, **self.extra})

    async def _send(self, session: aiohttp.ClientSession, payload: Dict[Text, Any]) -> None:
        # ensure_ascii=False: WeChat shows \uXXXX escapes literally.
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        token = await self.token.get(session)
        for attempt in (1, 2):
            async with session.post(self.send_url, params={"access_token": token}, data=body, headers=headers) as r:
                result = await _json(r)
            errcode = int(result.get("errcode", 0) or 0)
            if errcode == 0:
                return
            if errcode in TOKEN_ERRORS and attempt == 1:
                logger.info("WeChat refused the access token (%s); fetching a new one", errcode)
                token = await self.token.get(session, stale=token)
                continue
            raise WeChatAPIError(errcode, result.get("errmsg", ""))


def official_account_sender(api_url: Text, app_id: Text, secret: Text) -> MessageSender:
    base = api_url.rstrip("/") + "/"
    token = AccessToken(base + "token", {"grant_type": "client_credential", "appid": app_id, "secret": secret})
    return MessageSender(token, base + "message/custom/send")


def wecom_sender(api_url: Text, corp_id: Text, secret: Text, agent_id: int) -> MessageSender:
    base = api_url.rstrip("/") + "/"
    token = AccessToken(base + "gettoken", {"corpid": corp_id, "corpsecret": secret})
    return MessageSender(token, base + "message/send", {"agentid": agent_id})
