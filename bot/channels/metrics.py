"""GET /metrics on the Rasa server: Prometheus metrics of this replica (listed in credentials.yml like a channel).

Rasa 3.6 adds routes only through input channels; this one receives no
messages: its blueprint serves /metrics at the root (its `url_prefix` is
absolute) and building it installs, in the Rasa server process, the per-message
instrumentation (bot/observability.py), the retrain-outcome collector and the
strict tracker store (bot/durability.py: a database outage fails requests
instead of keeping acknowledged messages only in memory). Scrape each replica
directly (nginx refuses /metrics from outside: deploy/nginx).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Optional, Text

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import durability, observability
from bot.retrain_metrics import RetrainCollector

_collector_registered = False


class MetricsInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "metrics"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        global _collector_registered
        observability.install()
        durability.install()
        if not _collector_registered:
            REGISTRY.register(RetrainCollector((credentials or {}).get("retrain_state")))
            _collector_registered = True
        return cls()

    def url_prefix(self) -> Text:
        return "/metrics"  # absolute: urljoin("/webhooks/", "/metrics") is "/metrics"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("kefu_metrics", __name__)

        @bp.route("", methods=["GET"], strict_slashes=False)
        async def scrape(_: Request) -> HTTPResponse:
            return response.raw(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)

        return bp
