"""A tracker's events as the turns an agent reads: customer, bot, agent, and what happened (handoff, pause).

Pure functions over the tracker JSON of Rasa's HTTP API, so the page, the queue
(last message, order number) and the knowledge-base proposals read the same view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional

from kefu.core.payloads import AGENT_HUMAN, AGENT_KEY, HANDOFF_ACTION
from kefu.core.text import ORDER_NUMBER, is_question, normalize_text

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


# A customer message the bot could not answer: its parse fell back, or the knowledge base only half-matched.
UNANSWERED_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
MAX_QUESTIONS_BEFORE = 3


def unanswered(parse: Dict[str, Any]) -> bool:
    kb = parse.get("kb") if isinstance(parse.get("kb"), dict) else {}
    return (parse.get("intent") or {}).get("name") in UNANSWERED_INTENTS or kb.get("match") == "low"


def questions_for_answer(events: List[Dict[str, Any]]) -> List[str]:
    """The customer's questions an agent reply (about to be sent) answers, oldest first, without repeats.

    After a handoff: the questions the customer asked just before it (the last one, and the ones right before it
    the bot could not answer either: fallbacks and half matches, at most MAX_QUESTIONS_BEFORE, which are often
    the same question rephrased) and every question sent while waiting. "I want a person", greetings, nudges and
    order numbers alone are not questions (`is_question`). Once an agent has replied, the customer's next
    questions start a new set (a follow-up); until then a second agent reply answers the same questions (a "let
    me check" first, then the answer). The retrain pairs human replies posted straight to Rasa's API by the same
    rules (retrain.signals.handoff_pairs; tests/desk/test_proposals.py checks that both agree).
    """
    before: List[str] = []         # questions just before the handoff
    open_run = False               # every question in `before` went unanswered, so the next one extends it
    current: List[str] = []        # questions since the handoff (or since the agent last replied)
    handed_off = answered = False
    for event in events:
        kind = event.get("event")
        if kind == "user":
            text = (event.get("text") or "").strip()
            parse = event.get("parse_data") or {}
            if not is_question(text, (parse.get("intent") or {}).get("name")):
                continue
            if answered:
                before, current, answered = [], [], False
            if handed_off:
                current.append(text)
            else:
                before = (before if open_run else [])[-(MAX_QUESTIONS_BEFORE - 1):] + [text]
                open_run = unanswered(parse)
        elif kind == "action" and event.get("name") == HANDOFF_ACTION:
            handed_off = True
        elif kind == "bot" and str((event.get("metadata") or {}).get(AGENT_KEY, "")) == AGENT_HUMAN:
            answered = True
        elif kind == "resume":
            before, current, handed_off, answered, open_run = [], [], False, False, False
    found: Dict[str, str] = {}
    for text in before + current:
        found.setdefault(normalize_text(text), text)
    return list(found.values())
