"""Rasa's socket.io channel with persistent sessions that work, for the web chat widget.

Rasa 3.6.21 calls `sio.enter_room(sid, session_id)` without `await`
(RasaHQ/rasa#13027). Since python-socketio 5.10 `AsyncServer.enter_room` is a
coroutine, so the call does nothing: the socket never joins the session's room
and, with `session_persistence: true`, every bot reply (sent to that room) is
lost. Pinning python-socketio < 5.10 would also pin an older engine.io; fixing
the one call is smaller, so this subclass re-registers the `session_request`
handler with the `await`.

It also fixes custom payloads: Rasa's `SocketIOOutput.send_custom_json` passes
the payload's keys as keyword arguments to `sio.emit`, so `custom: {handoff: true}`
raises a TypeError. Here a custom payload reaches the client as
`{"custom": {...}}`, the same shape the REST channel answers with.

`jwt_key` / `jwt_method` may come from credentials.yml or from the environment
(`KEFU_SOCKETIO_JWT_KEY`, `KEFU_SOCKETIO_JWT_METHOD`); with a key set, clients
must connect with `auth: {token: "<JWT signed with the key>"}`.

The channels' limits apply (bot/channels/limits.py): a message too long or a
sender over its rate is not processed; the client gets a `bot_uttered` that
says so and a `kefu_refused` event `{status, reason, retry_after_s}`.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint

from bot.channels.limits import default_limiter

logger = logging.getLogger(__name__)


class KefuSocketIOOutput(SocketIOOutput):
    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})


class KefuSocketIOInput(SocketIOInput):
    """`SocketIOInput` whose `session_request` awaits `enter_room` (RasaHQ/rasa#13027)."""

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = dict(credentials or {})
        if not credentials.get("jwt_key") and os.environ.get("KEFU_SOCKETIO_JWT_KEY"):
            credentials["jwt_key"] = os.environ["KEFU_SOCKETIO_JWT_KEY"]
        if not credentials.get("jwt_method") and os.environ.get("KEFU_SOCKETIO_JWT_METHOD"):
            credentials["jwt_method"] = os.environ["KEFU_SOCKETIO_JWT_METHOD"]
        return super().from_credentials(credentials)

    def get_output_channel(self) -> Optional[SocketIOOutput]:
        return None if self.sio is None else KefuSocketIOOutput(self.sio, self.bot_message_evt)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def with_our_output(message: UserMessage) -> Any:
            message.output_channel = KefuSocketIOOutput(self.sio, self.bot_message_evt)
            refusal = await default_limiter().check(self.name(), message.sender_id, message.text)
            if refusal is not None:
                logger.info("socket.io message from %s refused: %s", message.sender_id, refusal.reason)
                text = (f"Please wait {refusal.retry_after_s} s before sending another message." if refusal.status == 429
                        else "That message is too long; please send a shorter one.")
                await message.output_channel.send_text_message(message.sender_id, text)
                await self.sio.emit("kefu_refused", {"status": refusal.status, "reason": refusal.reason,
                                                     "retry_after_s": refusal.retry_after_s},
                                    room=message.sender_id, namespace=self.namespace)
                return None
            return await on_new_message(message)

        socketio_webhook = super().blueprint(with_our_output)
        sio = self.sio

        # `on` replaces the handler Rasa registered for this event.
        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Optional[Dict] = None) -> None:
            if not isinstance(data, dict):
                data = {}
            session_id = data.get("session_id")
            if not isinstance(session_id, str) or not session_id.strip():
                session_id = uuid.uuid4().hex
            if self.session_persistence:
                await sio.enter_room(sid, session_id, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
            logger.debug("socket %s joined session %s", sid, session_id)

        return socketio_webhook
