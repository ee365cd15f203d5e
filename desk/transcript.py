"""A tracker's events as the turns an agent reads: customer, bot, agent, and what happened (handoff, pause).

Pure functions over the tracker JSON of Rasa's HTTP API, so the page, the queue
(last message, order number) and the knowledge-base proposals read the same view.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional

from kefu.core.payloads import AGENT_HUMAN, AGENT_KEY, HANDOFF_ACTION

ORDER_NUMBER = re.compile(r"(?<!\d)\d{6}(?!\d)")
# Turns agents do not need to see.
HIDDEN_ACTIONS = {"action_listen", "action_session_start", "action_extract_slots"}


@dataclass
class Turn:
    kind: str                      # customer | bot | agent | event
    text: str
    timestamp: float
    intent: Optional[str] = None
    confidence: Optional[float] = None
    ranking: List[Dict[str, Any]] = field(default_factory=list)
    agent_id: Optional[str] = None
    kb: Optional[Dict[str, Any]] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def turns(events: Iterable[Dict[str, Any]]) -> List[Turn]:
    result: List[Turn] = []
    for event in events:
        kind, ts = event.get("event"), float(event.get("timestamp") or 0)
        if kind == "user":
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            ranking = [{"name": r.get("name"), "confidence": round(float(r.get("confidence") or 0), 3)}
                       for r in (parse.get("intent_ranking") or [])[:5]]
            kb = parse.get("kb") if isinstance(parse.get("kb"), dict) else None
            result.append(Turn("customer", event.get("text") or "", ts, intent.get("name"),
                               round(float(intent.get("confidence") or 0), 3), ranking,
                               kb={k: kb.get(k) for k in ("match", "p_answer", "question")} if kb else None))
        elif kind == "bot":
            metadata = event.get("metadata") or {}
            human = str(metadata.get(AGENT_KEY, "")) == AGENT_HUMAN
            text = event.get("text") or ""
            if not text and (event.get("data") or {}).get("custom"):
                continue
            result.append(Turn("agent" if human else "bot", text, ts,
                               agent_id=metadata.get("agent_id") if human else None))
        elif kind == "action" and event.get("name") == HANDOFF_ACTION:
            result.append(Turn("event", "handed over to a person", ts))
        elif kind == "pause":
            result.append(Turn("event", "bot paused", ts))
        elif kind == "resume":
            result.append(Turn("event", "bot resumed", ts))
    return result


def last_customer_message(events: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    for event in reversed(events):
        if event.get("event") == "user" and (event.get("text") or "").strip():
            return event
    return None


def order_numbers(tracker: Dict[str, Any]) -> List[str]:
    """Order numbers the conversation mentions: the slot first, then customer messages, newest first."""
    found: List[str] = []
    slot = (tracker.get("slots") or {}).get("order_number")
    if isinstance(slot, str) and ORDER_NUMBER.fullmatch(slot.strip()):
        found.append(slot.strip())
    for event in reversed(tracker.get("events") or []):
        if event.get("event") == "user":
            for number in ORDER_NUMBER.findall(event.get("text") or ""):
                if number not in found:
                    found.append(number)
    return found


def question_for_answer(events: List[Dict[str, Any]]) -> Optional[str]:
    """The customer message an agent reply answers: the last one since the previous agent reply or the
    handoff, skipping button payloads (the same pairing the retrain's handoff Q&A uses)."""
    question = None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            text = (event.get("text") or "").strip()
            if text and not text.startswith("/"):
                question = text
        elif kind == "action" and event.get("name") == HANDOFF_ACTION:
            question = None
        elif kind == "bot" and str((event.get("metadata") or {}).get(AGENT_KEY, "")) == AGENT_HUMAN:
            question = None
    return question
