"""Bot messages as WeChat text: one text, buttons as a numbered list, and the numbers as answers.

WeChat text messages have no buttons. The bot's buttons become "1. Title"
lines; when the customer's next message is just one of those numbers, the
channel sends the button's payload instead (`NumberedChoices`).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from bot.channels.ttl import TTLDict

logger = logging.getLogger(__name__)

MAX_TEXT_BYTES = 2048  # WeChat's limit for one text message (passive or customer-service)


def render(messages: List[Dict[Text, Any]]) -> tuple[Text, Dict[Text, Text]]:
    """The bot's messages joined into one text, and {number: payload} of the buttons numbered in it."""
    parts: List[Text] = []
    choices: Dict[Text, Text] = {}
    for message in messages:
        lines: List[Text] = []
        if message.get("text"):
            lines.append(message["text"])
        for button in message.get("buttons") or []:
            number = str(len(choices) + 1)
            choices[number] = button.get("payload") or button.get("title", "")
            lines.append(f"{number}. {button.get('title', '')}")
        if message.get("image"):
            lines.append(message["image"])
        if message.get("attachment"):
            lines.append(str(message["attachment"]))
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("text"), str):
            lines.append(custom["text"])
        elif custom:
            logger.debug("custom bot message not shown on WeChat: %r", custom)
        if lines:
            parts.append("\n".join(lines))
    return "\n\n".join(parts), choices


def split_text(text: Text, max_bytes: int = MAX_TEXT_BYTES) -> List[Text]:
    """Pieces of at most `max_bytes` UTF-8 bytes, cut at paragraph, then line, then character boundaries."""
    if len(text.encode("utf-8")) <= max_bytes:
        return [text] if text else []
    for separator in ("\n\n", "\n", " "):
        pieces = text.split(separator)
        if len(pieces) > 1:
            out: List[Text] = []
            current = ""
            for piece in pieces:
                candidate = piece if not current else current + separator + piece
                if len(candidate.encode("utf-8")) <= max_bytes:
                    current = candidate
                    continue
                if current:
                    out.append(current)
                if len(piece.encode("utf-8")) <= max_bytes:
                    current = piece
                else:
                    smaller = split_text(piece, max_bytes)
                    out.extend(smaller[:-1])
                    current = smaller[-1]
            if current:
                out.append(current)
            return out
    out, current = [], ""
    for char in text:
        if len((current + char).encode("utf-8")) > max_bytes:
            out.append(current)
            current = ""
        current += char
    return out + ([current] if current else [])


class NumberedChoices:
    """Per customer, the numbered buttons of the bot's last answer (forgotten after `ttl_s`)."""

    def __init__(self, ttl_s: float = 3600):
        self._choices: TTLDict[Text, Dict[Text, Text]] = TTLDict(ttl_s)

    def remember(self, sender: Text, choices: Dict[Text, Text]) -> None:
        self._choices.set(sender, choices)

    def resolve(self, sender: Text, text: Text) -> Text:
        """The payload of button `text` ("2", "2.") of the last answer, else `text` unchanged."""
        choices: Optional[Dict[Text, Text]] = self._choices.get(sender)
        key = text.strip().rstrip(".")
        return choices[key] if choices and key in choices else text
