"""A channel listed in credentials.yml but not configured: its webhook says so instead of failing startup.

Slack and WeChat need secrets; `rasa run` must still start on a machine that
has none, so those channels are opt-in through environment variables.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Text, Type

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)


class DisabledInput(InputChannel):
    reason: Text = ""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint(f"{self.name()}_disabled", __name__)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "disabled", "reason": self.reason})

        @bp.route("/webhook", methods=["GET", "POST"])
        async def webhook(_: Request) -> HTTPResponse:
            return response.text(self.reason, status=HTTPStatus.SERVICE_UNAVAILABLE)

        return bp


def disabled_channel(name: Text, reason: Text) -> InputChannel:
    """An input channel named `name` whose webhook answers 503 with `reason`."""
    logger.info("Channel %s is off: %s", name, reason)
    cls: Type[DisabledInput] = type(
        f"Disabled_{name}", (DisabledInput,), {"name": classmethod(lambda _cls: name), "reason": reason}
    )
    return cls()
