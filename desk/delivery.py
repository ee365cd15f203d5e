"""Agents' replies reach the customer on their own channel.

Every reply is first appended to the conversation's tracker as a `bot` event
marked human (the record the retrain reads); how it then reaches the customer
depends on the channel of their latest message:

- socketio (web widget): Rasa sends it itself (`execute_side_effects` through
  the latest input channel's output channel, KefuSocketIOOutput -> the
  conversation's room). With `socketio.redis_url` set (several Rasa replicas
  sharing python-socketio's Redis manager) the desk emits through Redis instead,
  so the replica holding the socket delivers it.
- slack: Rasa's output channel for `latest` posts to the configured default
  channel or the user's id, not to the channel/thread the customer wrote in, so
  the desk posts with slack_sdk to the `out_channel` of the customer's latest
  message (its metadata).
- wechat / wecom: Rasa's WeChat channels collect replies (no output channel),
  so the desk sends through the customer-service message API (bot.channels.wechat.api).
- rest and anything else: nothing can be pushed; the client reads the reply on
  its next poll of the tracker (`GET /conversations/{id}/tracker`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional

import socketio
from slack_sdk.web.async_client import AsyncWebClient

from desk.config import DeskConfig
from desk.rasa_client import RasaClient
from kefu.core.payloads import AGENT_HUMAN, AGENT_KEY

logger = logging.getLogger(__name__)

SOCKETIO, SLACK, WECHAT, WECOM = "socketio", "slack", "wechat", "wecom"
CREDENTIAL_KEYS = {SLACK: "bot.channels.slack.SlackInput", WECHAT: "bot.channels.wechat.WeChatInput",
                   WECOM: "bot.channels.wechat.WeComInput"}


class DeliveryError(Exception):
    """The reply is in the tracker but the channel refused it."""


def agent_event(text: str, agent_id: Optional[str]) -> Dict[str, Any]:
    metadata: Dict[str, Any] = {AGENT_KEY: AGENT_HUMAN}
    if agent_id:
        metadata["agent_id"] = agent_id
    return {"event": "bot", "text": text, "timestamp": time.time(), "metadata": metadata, "data": {}}


def desk_event(text: str, kind: str) -> Dict[str, Any]:
    """A message the desk sends on the bot's behalf (hand back, close): not an agent's answer.

    Its custom payload `{"handoff": false}` is the counterpart of utter_handoff's
    `{"handoff": true}`: a client can leave its "with a person" state."""
    return {"event": "bot", "text": text, "timestamp": time.time(), "metadata": {"desk": kind},
            "data": {"custom": {"handoff": False}}}


def latest_user_event(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    for event in reversed(events):
        if event.get("event") == "user":
            return event
    return {}


class Delivery:
    def __init__(self, config: DeskConfig, rasa: RasaClient, credentials: Optional[Dict[str, Any]] = None):
        self.config = config
        self.rasa = rasa
        self.credentials = credentials or {}
        self._redis: Optional[socketio.AsyncRedisManager] = None
        self._wechat: Dict[str, Any] = {}

    def _setting(self, channel: str, key: str, env: str) -> Optional[str]:
        section = self.credentials.get(CREDENTIAL_KEYS[channel]) or {}
        return (section.get(key) if isinstance(section, dict) else None) or os.environ.get(env)

    async def send(self, conversation_id: str, tracker: Dict[str, Any], events: List[Dict[str, Any]]) -> str:
        """Appends `events` and delivers their `bot` texts; returns how they were delivered."""
        user = latest_user_event(tracker.get("events") or [])
        channel = user.get("input_channel") or tracker.get("latest_input_channel")
        texts = [e["text"] for e in events if e.get("event") == "bot" and e.get("text")]
        if channel == SOCKETIO and not self.config.socketio_redis_url:
            await self.rasa.append(conversation_id, events, deliver=True)
            return "socketio (Rasa server)"
        await self.rasa.append(conversation_id, events, deliver=False)
        if not texts:
            return "recorded"
        try:
            if channel == SOCKETIO:
                await self._socketio_redis(conversation_id, texts)
                return "socketio (Redis)"
            if channel == SLACK:
                await self._slack(conversation_id, user.get("metadata") or {}, texts)
                return "slack"
            if channel in (WECHAT, WECOM):
                await self._wechat_send(channel, conversation_id, texts)
                return channel
        except Exception as exc:  # noqa: BLE001 - reported to the agent, who may retry
            logger.exception("could not deliver a reply to %s on %s", conversation_id, channel)
            raise DeliveryError(f"recorded, but {channel} refused it: {exc}") from exc
        return f"{channel or 'rest'} (read on the client's next poll)"

    async def _socketio_redis(self, room: str, texts: List[str]) -> None:
        if self._redis is None:
            self._redis = socketio.AsyncRedisManager(self.config.socketio_redis_url, write_only=True,
                                                     channel=self.config.socketio_channel)
        for text in texts:
            await self._redis.emit(self.config.socketio_event, {"text": text}, room=room, namespace="/")

    async def _slack(self, user_id: str, metadata: Dict[str, Any], texts: List[str]) -> None:
        token = self._setting(SLACK, "slack_token", "SLACK_BOT_TOKEN")
        if not token:
            raise DeliveryError("Slack is not configured (SLACK_BOT_TOKEN)")
        api_url = self._setting(SLACK, "slack_api_url", "SLACK_API_URL")
        client = AsyncWebClient(token, base_url=api_url.rstrip("/") + "/") if api_url else AsyncWebClient(token)
        channel = metadata.get("out_channel") or user_id
        thread = metadata.get("thread_id") if self._setting(SLACK, "use_threads", "SLACK_USE_THREADS") else None
        for text in texts:
            kwargs = {"thread_ts": thread} if thread else {}
            await client.chat_postMessage(channel=channel, text=text, **kwargs)

    async def _wechat_send(self, channel: str, user: str, texts: List[str]) -> None:
        sender = self._wechat.get(channel)
        if sender is None:
            # Loaded on first use: the WeChat package pulls in Rasa's channel classes, which a desk
            # without WeChat never needs.
            from bot.channels.wechat import api, config, render
            if channel == WECHAT:
                s = config.load(self.credentials.get(CREDENTIAL_KEYS[channel]), config.OFFICIAL_ACCOUNT_ENV,
                                ("app_id", "secret"), "https://api.weixin.qq.com/cgi-bin/")
                sender = s and api.official_account_sender(s.api_url, s.app_id, s.secret)
            else:
                s = config.load(self.credentials.get(CREDENTIAL_KEYS[channel]), config.WECOM_ENV,
                                ("app_id", "secret", "agent_id"), "https://qyapi.weixin.qq.com/cgi-bin/")
                sender = s and api.wecom_sender(s.api_url, s.app_id, s.secret, s.agent_id)
            if not sender:
                raise DeliveryError(f"{channel} is not configured")
            self._wechat[channel] = sender = (sender, render.split_text)
        send, split = sender
        await send.send_texts(user, [piece for text in texts for piece in split(text)])
