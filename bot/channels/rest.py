"""Rasa's REST channel with request validation.

Rasa 3.6's `RestInput` calls `request.json.get(...)` on whatever the body is,
so a JSON array or a number as body, or a non-string message, ends in a 500.
This subclass answers those with a 400 that says what is wrong, and refuses
absurdly long messages with a 413. It applies the channels' limits
(bot/channels/limits.py): a message longer than KEFU_MAX_MESSAGE_CHARS gets a
413, a sender over its rate a 429 with Retry-After. URL and behaviour are
otherwise Rasa's: POST /webhooks/rest/webhook {"sender": "...", "message": "..."}.

Rasa's handler answers 200 even when handling the message raised (it logs the
error and returns what was collected): with the tracker store down, a message
that was never stored was acknowledged. Here such a message gets a 503 with
Retry-After, so a 200 always means the message was handled and stored.
"""

from __future__ import annotations

import contextvars
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage, PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.limits import default_limiter

MAX_MESSAGE_CHARS = 100_000
_request: contextvars.ContextVar[Optional[Request]] = contextvars.ContextVar("kefu_rest_request", default=None)


def _body(request: Request) -> Dict[Text, Any]:
    body = request.json
    if not isinstance(body, dict):
        raise InvalidUsage('The request body must be a JSON object like {"sender": "user-1", "message": "hi"}')
    return body


class ValidatingRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        sender = _body(req).get("sender")
        if sender is not None and not isinstance(sender, (str, int)):
            raise InvalidUsage('"sender" must be a string')
        return None if sender is None else str(sender)

    def _extract_message(self, req: Request) -> Optional[Text]:
        message = _body(req).get("message")
        if not isinstance(message, str):
            raise InvalidUsage('"message" is required and must be a string')
        if len(message) > MAX_MESSAGE_CHARS:
            raise PayloadTooLarge(f'"message" is longer than {MAX_MESSAGE_CHARS} characters')
        return message

    def _extract_input_channel(self, req: Request) -> Text:
        channel = _body(req).get("input_channel")
        return channel if isinstance(channel, str) and channel else self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        metadata = _body(request).get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidUsage('"metadata" must be a JSON object')
        return metadata

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def remembering_failures(message: UserMessage) -> None:
            try:
                await on_new_message(message)
            except Exception as e:
                request = _request.get()
                if request is not None:
                    request.ctx.kefu_failure = e
                raise  # Rasa's handler logs it, then answers with what was collected

        bp = super().blueprint(remembering_failures)

        @bp.middleware("response")
        async def failed_is_not_ok(request: Request, reply: HTTPResponse) -> Optional[HTTPResponse]:
            failure = getattr(request.ctx, "kefu_failure", None)
            if failure is None or reply.status != 200:
                return None
            return response.json({"error": "the message could not be processed (a server or store is unavailable); "
                                           "it was not stored: send it again", "kind": type(failure).__name__},
                                 status=503, headers={"Retry-After": "2"})

        @bp.middleware("request")
        async def limits(request: Request) -> Optional[HTTPResponse]:
            _request.set(request)
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            try:
                body = request.json
            except InvalidUsage:
                return None  # the handler answers the 400
            if not isinstance(body, dict) or not isinstance(body.get("message"), str):
                return None
            sender = body.get("sender")
            refusal = await default_limiter().check(self.name(), None if sender is None else str(sender), body["message"])
            if refusal is None:
                return None
            return response.json({"error": refusal.reason, "retry_after_s": refusal.retry_after_s or None},
                                 status=refusal.status, headers=refusal.headers())

        return bp
