"""Which language the customer writes: Chinese or English, from the characters used.

No model needed for the two languages the store serves: a message with a real
share of CJK characters is Chinese. Button payloads (`/affirm`) and numbers
carry no language, so a conversation's language is that of its latest user
message that has letters.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: Optional[str]) -> Optional[str]:
    """'zh', 'en', or None for text without letters (payloads, order numbers, emoji)."""
    if not text or text.startswith("/"):
        return None
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk and cjk * 5 >= latin:  # a Chinese character carries about as much as a short English word
        return "zh"
    return "en" if latin else None


def conversation_language(user_texts_newest_first: Iterable[Optional[str]], default: str = "en") -> str:
    for text in user_texts_newest_first:
        language = detect_language(text)
        if language:
            return language
    return default
