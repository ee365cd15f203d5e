"""Knowledge-base actions: copy the retriever's decision into `kb_match`, answer with the source."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

KB_KEY = "kb"  # parse-data key written by bot.components.FaissAnswerRetriever
MATCHES = ("high", "low", "none")


def latest_kb_result(tracker: Tracker) -> Dict[Text, Any]:
    return (tracker.latest_message or {}).get(KB_KEY) or {}


class ActionSearchKB(Action):
    """Makes the retrieval outcome visible to the policies as the `kb_match` slot."""

    def name(self) -> Text:
        return "action_search_kb"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        match = latest_kb_result(tracker).get("match")
        return [SlotSet("kb_match", match if match in MATCHES else "none")]


class ActionAnswerFromKB(Action):
    """Answers with the matched historical answer and cites where it came from."""

    def name(self) -> Text:
        return "action_answer_from_kb"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        result = latest_kb_result(tracker)
        # Never answer with anything but a high match, whatever the policy predicted.
        if result.get("match") != "high" or not result.get("answer"):
            dispatcher.utter_message(response="utter_kb_unsure")
            return []
        text = result["answer"]
        if result.get("source"):
            text += f"\n\nSource: {result['source']}"
        dispatcher.utter_message(text=text, json_message={"kb": {k: result.get(k) for k in ("id", "source", "score", "p_answer")}})
        return []
