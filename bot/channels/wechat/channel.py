"""WeChat Official Account and WeCom input channels (/webhooks/wechat/webhook, /webhooks/wecom/webhook).

WeChat waits 5 seconds for the answer to a callback, then sends the same
message again (three tries in all). So each message is processed once, keyed
by MsgId (events: sender + CreateTime + event) in a TTL cache, and:
- when the bot has answered within `passive_timeout_s`, the answer goes back
  in the HTTP response (a passive reply; encrypted in safe mode), to the
  first request or to a retry of the same message;
- otherwise the request is answered `success` at once (WeChat then stops
  retrying) and the answer is sent through the customer-service message API
  when it is ready. Answers longer than one WeChat text go that way too, in
  order.
A retry never starts a second run of the bot.

The dedupe cache and the numbered-button memory live in the process: with
several Sanic workers, route each user to one worker (see README).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.dedupe import Dedupe
from bot.channels.disabled import disabled_channel
from bot.channels.limits import default_limiter
from bot.channels.shared_state import redis_url
from bot.channels.ttl import TTLDict
from bot.channels.wechat import config
from bot.channels.wechat.api import MessageSender, official_account_sender, wecom_sender
from bot.channels.wechat.protocol import BadCallback, Incoming, OfficialAccountProtocol, WeComProtocol
from bot.channels.wechat.render import NumberedChoices, render, split_text

logger = logging.getLogger(__name__)

WELCOME_EVENTS = {"subscribe", "subscribe_scan"}
SUCCESS = "success"  # "received, no passive reply" in WeChat's callback protocol
MAX_BODY_BYTES = 64 * 1024  # callbacks are small XML documents


@dataclass
class Job:
    """One customer message being processed; `push`: its answer goes through the API, not a passive reply."""

    sender: Text
    task: "asyncio.Task[Text]"
    push: bool = False
    pushed: Optional["asyncio.Task[None]"] = field(default=None, repr=False)


def dedupe_key(message: Any) -> Text:
    if getattr(message, "id", 0):
        return f"msg:{message.id}"
    return f"event:{message.source}:{message.time}:{getattr(message, 'event', message.type)}"


class WeChatBaseInput(InputChannel):
    def __init__(self, settings: config.ChannelSettings, protocol: Any, sender: MessageSender) -> None:
        self.settings = settings
        self.protocol = protocol
        self.sender = sender
        self._jobs: TTLDict[Text, Job] = TTLDict(settings.dedupe_ttl_s)
        # Across replicas (KEFU_REDIS_URL): a retry landing on another replica is not processed again.
        self._claims = Dedupe(self.name(), settings.dedupe_ttl_s, redis_url())
        self.choices = NumberedChoices()
        self._background: Set[asyncio.Task] = set()

    # What the customer said, as text for the bot, or None when it is not text.
    def user_text(self, message: Any) -> Optional[Text]:
        if message.type == "text":
            return message.content or ""
        if message.type == "voice" and getattr(message, "recognition", None):
            return message.recognition  # WeChat's speech recognition, when the account has it on
        if message.type == "event" and message.event in WELCOME_EVENTS:
            return self.settings.welcome_message
        return None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint(f"{self.name()}_webhook", __name__)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            try:
                return response.text(self.protocol.verify_url(_query(request)))
            except BadCallback as e:
                logger.warning("%s URL verification refused: %s", self.name(), e)
                return response.text(str(e), status=e.status)

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            started = time.monotonic()
            if len(request.body or b"") > MAX_BODY_BYTES:
                return response.text("callback body too large", status=413)
            try:
                incoming = self.protocol.decode(_query(request), request.body or b"")
            except BadCallback as e:
                logger.warning("%s callback refused: %s", self.name(), e)
                return response.text(str(e), status=e.status)
            return await self.answer(incoming, on_new_message, started)

        return bp

    async def answer(self, incoming: Incoming, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                     started: float) -> HTTPResponse:
        message = incoming.message
        text = self.user_text(message)
        if text is None:
            if message.type == "event":
                return response.text(SUCCESS)
            return self._passive(incoming, self.settings.unsupported_text)

        key = dedupe_key(message)
        job = self._jobs.get(key)
        if job is None and not await self._claims.first_time(key):
            # Another replica has it: it answers passively or, when slow, through the API.
            logger.info("%s retry of %s handled by another replica: not processed again", self.name(), key)
            return response.text(SUCCESS)
        if job is None:
            refusal = await default_limiter().check(self.name(), message.source, text)
            if refusal is not None:
                logger.info("%s message from %s not processed: %s", self.name(), message.source, refusal.reason)
                return self._passive(incoming, self.settings.too_fast_text if refusal.status == 429 else self.settings.too_long_text)
            job = Job(message.source, asyncio.create_task(self._run(on_new_message, message, text)))
            job.task.add_done_callback(lambda _task, job=job: job.push and self._push(job))
            self._jobs.set(key, job)
        else:
            logger.info("%s retry of %s: not processed again", self.name(), key)

        remaining = self.settings.passive_timeout_s - (time.monotonic() - started)
        if remaining > 0 and not job.task.done():
            await asyncio.wait({job.task}, timeout=remaining)  # does not cancel the task
        if job.task.done() and not job.push:
            reply = job.task.result()
            pieces = split_text(reply)
            if len(pieces) <= 1:
                return self._passive(incoming, reply) if reply else response.text(SUCCESS)
            job.push = True  # too long for one message: all pieces through the API, in order
            self._push(job)
        elif not job.push:
            job.push = True  # the task's done-callback sends the answer
            logger.info("%s: the bot is slow for %s; answering later through the API", self.name(), key)
        return response.text(SUCCESS)

    async def _run(self, on_new_message: Callable[[UserMessage], Awaitable[Any]], message: Any, text: Text) -> Text:
        sender = message.source
        collector = CollectingOutputChannel()
        metadata = {"wechat": {"to": message.target, "msg_id": getattr(message, "id", 0), "type": message.type}}
        try:
            await on_new_message(UserMessage(self.choices.resolve(sender, text), collector, sender,
                                             input_channel=self.name(), metadata=metadata))
        except Exception:
            logger.exception("%s: the bot failed on a message from %s", self.name(), sender)
            return self.settings.error_text
        reply, choices = render(collector.messages)
        self.choices.remember(sender, choices)
        return reply

    def _push(self, job: Job) -> None:
        if job.pushed is not None:
            return
        job.pushed = asyncio.create_task(self._send(job))
        self._background.add(job.pushed)
        job.pushed.add_done_callback(self._background.discard)

    async def _send(self, job: Job) -> None:
        pieces: List[Text] = split_text(job.task.result())
        try:
            await self.sender.send_texts(job.sender, pieces)
        except Exception:
            logger.exception("%s: could not send the answer to %s through the API", self.name(), job.sender)

    def _passive(self, incoming: Incoming, text: Text) -> HTTPResponse:
        return response.text(self.protocol.reply(incoming, text), content_type="application/xml; charset=utf-8")


def _query(request: Request) -> Dict[Text, Text]:
    return {key: values[0] for key, values in request.args.items() if values}


class WeChatInput(WeChatBaseInput):
    """WeChat Official Account (公众号): set WECHAT_TOKEN, WECHAT_APPID, WECHAT_SECRET (+ WECHAT_AES_KEY)."""

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        s = config.load(credentials, config.OFFICIAL_ACCOUNT_ENV, ("app_id", "secret"),
                        "https://api.weixin.qq.com/cgi-bin/")
        if s is None:
            return disabled_channel(cls.name(), "WeChat is not configured: set WECHAT_TOKEN, WECHAT_APPID, WECHAT_SECRET")
        protocol = OfficialAccountProtocol(s.token, s.app_id, s.aes_key, s.max_clock_skew_s)
        return cls(s, protocol, official_account_sender(s.api_url, s.app_id, s.secret))


class WeComInput(WeChatBaseInput):
    """WeCom (企业微信) self-built app: WECOM_TOKEN, WECOM_CORPID, WECOM_SECRET, WECOM_AGENTID, WECOM_AES_KEY."""

    @classmethod
    def name(cls) -> Text:
        return "wecom"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        s = config.load(credentials, config.WECOM_ENV, ("app_id", "secret", "agent_id", "aes_key"),
                        "https://qyapi.weixin.qq.com/cgi-bin/")
        if s is None:
            return disabled_channel(cls.name(), "WeCom is not configured: set WECOM_TOKEN, WECOM_CORPID, "
                                                "WECOM_SECRET, WECOM_AGENTID, WECOM_AES_KEY")
        protocol = WeComProtocol(s.token, s.app_id, s.aes_key, s.max_clock_skew_s)
        return cls(s, protocol, wecom_sender(s.api_url, s.app_id, s.secret, s.agent_id))
