"""One historical question with its answer, and the text normalisation used to compare them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from kefu.core.text import normalize_text

__all__ = ["QAPair", "normalize_text", "stable_id", "parse_timestamp", "answer_text_entries", "is_answer_text"]



@dataclass
class QAPair:
    """A question asked before and the answer given.

    `id` names the Q&A item, not necessarily one row: all example questions of
    a Rasa retrieval intent share the id `faq/<name>`, and deleting an id
    removes every question filed under it.
    """

    id: str
    question: str
    answer: str
    source: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    timestamp: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "QAPair":
        return cls(
            id=str(values["id"]),
            question=values["question"],
            answer=values["answer"],
            source=values.get("source"),
            tags=list(values.get("tags") or []),
            timestamp=values.get("timestamp"),
        )


ANSWER_TEXT_TAG = "answer-text"


def answer_text_entries(pairs) -> List["QAPair"]:
    """One entry per distinct answer whose "question" is the answer itself (see IndexConfig.index_answers)."""
    entries: Dict[str, QAPair] = {}
    for pair in pairs:
        if ANSWER_TEXT_TAG in pair.tags:
            continue
        key = normalize_text(pair.answer)
        if key and key not in entries:
            entries[key] = QAPair(pair.id, pair.answer, pair.answer, pair.source, [*pair.tags, ANSWER_TEXT_TAG], pair.timestamp)
    return list(entries.values())


def is_answer_text(pair: "QAPair") -> bool:
    return ANSWER_TEXT_TAG in pair.tags


def stable_id(question: str, answer: str) -> str:
    """An id that is the same on every load of the same row (for data without an id column)."""
    digest = hashlib.sha256(f"{normalize_text(question)}\n{normalize_text(answer)}".encode()).hexdigest()
    return f"qa-{digest[:16]}"


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 (a trailing Z allowed) as an aware UTC datetime; naive times are taken as UTC."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
