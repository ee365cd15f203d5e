"""Knowledge-base actions: copy the retriever's decision into `kb_match`, answer with the source."""

from __future__ import annotations

from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.order_texts import customer_language, in_customer_script
from kefu.core.payloads import KB_HIGH, KB_KEY, KBResult

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
        text = result.answer
        if result.source:
            text += f"\n\n{SOURCE_LABEL.get(customer_language(tracker), SOURCE_LABEL['en'])}{result.source}"
        text = in_customer_script(text, tracker)
        dispatcher.utter_message(text=text, json_message={KB_KEY: {"id": result.id, "source": result.source, "score": result.score,
                                                                   "p_answer": result.p_answer}})
        return []
