"""Slack: Rasa's `SlackInput`, configured from the environment, with fixes found by the tests.

Settings come from credentials.yml (Rasa's keys) and, for keys left out there,
from the environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_CHANNEL,
SLACK_API_URL. With neither token nor signing secret the channel is off and its
webhook answers 503 (the server still starts); with only one of them startup
fails with a clear error.

What this adds to Rasa 3.6.21's channel (each covered by tests/bot/channels/test_slack.py):
- `Content-Type: application/json; charset=utf-8` (and form bodies with a
  charset) are processed; Rasa compares the header with `==` and silently
  drops such events.
- A retry (`X-Slack-Retry-Num`) of an event already received is answered with
  `X-Slack-No-Retry: 1` and not processed again, whatever its reason; Rasa
  only skips retries whose reason is `http_timeout` and has no `event_id` check.
  With KEFU_REDIS_URL the event ids are claimed in Redis, so a retry that lands
  on another replica is skipped too (bot/channels/dedupe.py).
- The channels' limits (bot/channels/limits.py): a message too long or a
  sender over its rate is acknowledged (Slack needs its 200) and not processed.
- URL verification answers `{"challenge": ...}`; Rasa answers a bare JSON string.
- A JSON body that is not an object gets a 400, not a 500.
- Replies go to `slack_api_url` when set (a test's fake Slack API), and
  without the legacy `as_user` argument, which only classic Slack apps accept.
"""

from __future__ import annotations

import json
import logging
import os
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.slack import SlackBot
from rasa.core.channels.slack import SlackInput as RasaSlackInput
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.dedupe import Dedupe
from bot.channels.disabled import disabled_channel
from bot.channels.limits import default_limiter
from bot.channels.shared_state import redis_url

logger = logging.getLogger(__name__)

ENV = {
    "slack_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_channel": "SLACK_CHANNEL",
    "slack_api_url": "SLACK_API_URL",
}
EVENT_ID_TTL_S = 3600  # Slack retries within minutes; an hour is ample.


def settings(credentials: Optional[Dict[Text, Any]], environ=os.environ) -> Dict[Text, Any]:
    """credentials.yml values, with environment variables for the keys it leaves out or empty."""
    merged = {key: environ.get(var) or None for key, var in ENV.items()}
    merged.update({k: v for k, v in (credentials or {}).items() if v not in (None, "")})
    return merged


def media_type(request: Request) -> Text:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


class SlackOutput(SlackBot):
    """Rasa's Slack output channel, pointed at `api_url` (ending in '/') when given."""

    def __init__(self, token: Text, slack_channel: Optional[Text] = None, thread_id: Optional[Text] = None,
                 proxy: Optional[Text] = None, api_url: Optional[Text] = None) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        if api_url:
            self.client = AsyncWebClient(token, proxy=proxy, base_url=api_url.rstrip("/") + "/")

    async def _post_message(self, channel: Text, **kwargs: Any) -> None:
        kwargs.pop("as_user", None)
        await super()._post_message(channel, **kwargs)


class SlackInput(RasaSlackInput):
    """POST /webhooks/slack/webhook (Slack Events API and interactive components)."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        config = settings(credentials)
        token, secret = config.get("slack_token"), config.get("slack_signing_secret")
        if not token and not secret:
            return disabled_channel(cls.name(), "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
        if not token or not secret:
            missing = "SLACK_BOT_TOKEN (slack_token)" if not token else "SLACK_SIGNING_SECRET (slack_signing_secret)"
            raise InvalidConfigException(f"Slack channel half configured: {missing} is missing")
        channel = cls(
            token,
            config.get("slack_channel"),
            config.get("proxy"),
            config.get("slack_retry_reason_header", "x-slack-retry-reason"),
            config.get("slack_retry_number_header", "x-slack-retry-num"),
            config.get("errors_ignore_retry"),
            config.get("use_threads", False),
            secret,
            config.get("conversation_granularity", "sender"),
        )
        channel.api_url = config.get("slack_api_url")
        return channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_url: Optional[Text] = None
        self._seen_events = Dedupe("slack", EVENT_ID_TTL_S, redis_url())

    def get_output_channel(self, channel: Optional[Text] = None, thread_id: Optional[Text] = None) -> OutputChannel:
        return SlackOutput(self.slack_token, channel or self.slack_channel, thread_id, self.proxy, self.api_url)

    async def process_message(self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                              text: Text, sender_id: Optional[Text], metadata: Optional[Dict]) -> Any:
        event_id = request.json.get("event_id") if media_type(request) == "application/json" else None
        if event_id:
            if not await self._seen_events.first_time(str(event_id)):
                logger.info("Slack retry #%s (%s) of event %s: already received, not processed again",
                            request.headers.get(self.retry_num_header), request.headers.get(self.retry_reason_header),
                            event_id)
                return response.text("", headers={"X-Slack-No-Retry": "1"})

        async def answer(message: UserMessage) -> None:
            # Rasa runs this as a background task whose errors (a refused chat.postMessage) nobody reads.
            refusal = await default_limiter().check(self.name(), message.sender_id, message.text)
            if refusal is not None:
                logger.info("Slack message from %s not processed: %s", message.sender_id, refusal.reason)
                return
            try:
                await on_new_message(message)
            except Exception:
                logger.exception("Slack: could not answer %s", message.sender_id)

        return await super().process_message(request, answer, text, sender_id, metadata)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = super().blueprint(on_new_message)

        @bp.middleware("request")
        async def normalise(request: Request) -> Optional[HTTPResponse]:
            media = media_type(request)
            if request.method != "POST" or media not in ("application/json", "application/x-www-form-urlencoded"):
                return None
            # Rasa's handler compares the header with the bare media type (no charset) exactly.
            request.headers["content-type"] = media
            if media != "application/json":
                return None
            if not self.is_request_from_slack_authentic(request):
                return None  # Rasa's handler answers 400
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                return response.text("The body is not valid JSON", status=HTTPStatus.BAD_REQUEST)
            if not isinstance(body, dict):
                return response.text("The body must be a JSON object (a Slack event)", status=HTTPStatus.BAD_REQUEST)
            if body.get("type") == "url_verification":
                return response.json({"challenge": body.get("challenge")})
            return None

        return bp
