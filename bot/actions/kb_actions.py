"""Knowledge-base actions: copy the retriever's decision into `kb_match`, answer with the source."""

from __future__ import annotations

from typing import List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.order_texts import customer_language, in_customer_script
from kefu.core.payloads import KB_HIGH, KB_KEY, KB_PICK_ENTITY, KBCandidate, KBResult

SOURCE_LABEL = {"en": "Source: ", "zh": "来源："}


def latest_kb_result(tracker: Tracker) -> KBResult:
    """The knowledge base's decision for the latest message (written by bot.components.FaissAnswerRetriever)."""
    return KBResult.from_payload((tracker.latest_message or {}).get(KB_KEY))


class ActionSearchKB(Action):
    """Makes the retrieval outcome visible to the policies as the `kb_match` slot."""

    def name(self) -> Text:
        return "action_search_kb"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        return [SlotSet("kb_match", latest_kb_result(tracker).match)]


def _answer(dispatcher: CollectingDispatcher, tracker: Tracker, text: str, source, id_, score, p_answer, **extra) -> None:
    """The stored answer, with where it came from, in the customer's script; its entry in a custom payload."""
    if source:
        text += f"\n\n{SOURCE_LABEL.get(customer_language(tracker), SOURCE_LABEL['en'])}{source}"
    dispatcher.utter_message(text=in_customer_script(text, tracker),
                             json_message={KB_KEY: {"id": id_, "source": source, "score": score, "p_answer": p_answer, **extra}})


class ActionAnswerFromKB(Action):
    """Answers with the matched historical answer and cites where it came from."""

    def name(self) -> Text:
        return "action_answer_from_kb"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        result = latest_kb_result(tracker)
        # Never answer with anything but a high match, whatever the policy predicted.
        if result.match != KB_HIGH or not result.answer:
            dispatcher.utter_message(response="utter_kb_unsure")
            return []
        _answer(dispatcher, tracker, result.answer, result.source, result.id, result.score, result.p_answer)
        return []


class ActionAnswerKBPick(Action):
    """Answers the knowledge-base question the customer picked from the "did you mean" buttons (bot/nlg.py).

    The entry is looked up among the candidates stored with the customer's earlier messages (most recent
    first), not searched again: the customer chose that answer. A pick the conversation never offered (an
    old button, a typed payload) gets the "no answer" response with its offer of a person.
    """

    def name(self) -> Text:
        return "action_answer_kb_pick"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        picked = next(tracker.get_latest_entity_values(KB_PICK_ENTITY), None)
        candidate = offered_candidate(tracker, picked) if picked else None
        if candidate is None:
            dispatcher.utter_message(response="utter_kb_no_answer")
            return []
        _answer(dispatcher, tracker, candidate.answer, candidate.source, candidate.id, candidate.score, None, picked=True)
        return []


def offered_candidate(tracker: Tracker, entry_id: str) -> Optional[KBCandidate]:
    """The candidate `entry_id` among those offered as suggestions with the customer's earlier messages."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        kb = KBResult.from_payload(((event.get("parse_data") or {}).get(KB_KEY)))
        for candidate in kb.top_k[: kb.suggest]:
            if candidate.id == entry_id and candidate.answer:
                return candidate
    return None
