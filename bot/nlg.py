"""Responses in the customer's language: the domain's (English) or their Chinese versions.

Enabled in endpoints.yml (`nlg: type: bot.nlg.BilingualNLG`). Chinese texts live
in `data/responses_zh.yml` (`utter_name: text` or `utter_name: {text, buttons}`),
keyed by the domain's response names; a response without a Chinese version is
sent in English. Everything else (slot filling, buttons, channel variations)
is Rasa's TemplatedNaturalLanguageGenerator.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import yaml
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

from kefu.core.payloads import KB_KEY, KB_PICK_ENTITY, KB_PICK_INTENT, KBResult
from kefu.core.text import HANT, conversation_language, conversation_script, to_script

logger = logging.getLogger(__name__)

DEFAULT_ZH_FILE = "data/responses_zh.yml"
# Responses that tell the customer the bot has no answer: the knowledge base's likely questions go with them.
SUGGEST_WITH = frozenset({"utter_kb_unsure", "utter_kb_no_answer", "utter_please_rephrase", "utter_out_of_scope"})
SUGGEST_TEXT = {"en": "Or did you mean one of these?", "zh": "或者，您想问的是以下问题吗？"}
# Button titles stay short enough for every channel (Slack cuts button text at 75 characters).
TITLE_LIMIT = 72


def load_translations(path: Path, known: Dict[Text, Any]) -> Dict[Text, List[Dict[Text, Any]]]:
    """Chinese responses as Rasa response variations; unknown names are reported and skipped."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RasaException(f"Cannot read the Chinese responses in {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise RasaException(f"{path} must map response names to texts")
    responses = {}
    for name, value in raw.items():
        if name not in known:
            logger.warning("%s: %s is not a response in the domain; ignored", path, name)
            continue
        translated = {"text": value} if isinstance(value, str) else dict(value or {})
        if not isinstance(translated.get("text"), str):
            raise RasaException(f"{path}: {name} needs a text")
        # What is not language (a custom payload such as the handoff marker, an image)
        # comes from the English response; buttons too unless translated.
        english = dict((known[name] or [{}])[0])
        english.pop("condition", None)
        english.pop("channel", None)
        responses[name] = [{**english, **translated}]
    return responses


class BilingualNLG(TemplatedNaturalLanguageGenerator):
    def __init__(self, endpoint_config=None, domain=None) -> None:
        kwargs = getattr(endpoint_config, "kwargs", None) or {}
        self._zh_path = Path(kwargs.get("responses_zh", DEFAULT_ZH_FILE))
        if not self._zh_path.exists():
            logger.warning("No Chinese responses at %s: Chinese conversations are answered in English", self._zh_path)
        super().__init__(domain.responses if domain else {})

    @property
    def responses(self) -> Dict[Text, List[Dict[Text, Any]]]:
        return self._responses

    @responses.setter
    def responses(self, value: Dict[Text, List[Dict[Text, Any]]]) -> None:
        # Rasa's Agent creates the NLG before the model (and its domain) is loaded, then
        # assigns `responses`: the Chinese versions are matched to the domain here.
        self._responses = value or {}
        translations = load_translations(self._zh_path, self._responses) if self._responses and self._zh_path.exists() else {}
        self.chinese = TemplatedNaturalLanguageGenerator(translations)

    async def generate(self, utter_action: Text, tracker: DialogueStateTracker, output_channel: Text, **kwargs: Any) -> Optional[Dict[Text, Any]]:
        if utter_action in self.chinese.responses and language_of(tracker) == "zh":
            response = self.chinese.generate_from_slots(utter_action, tracker.current_slot_values(), output_channel, **kwargs)
            response = in_script(response, script_of(tracker))
        else:
            response = await super().generate(utter_action, tracker, output_channel, **kwargs)
        return with_suggestions(response, utter_action, tracker)


def with_suggestions(response: Optional[Dict[Text, Any]], utter_action: Text, tracker: DialogueStateTracker) -> Optional[Dict[Text, Any]]:
    """A "can't help" response with the knowledge base's likely questions as "did you mean" buttons before its own.

    Only where the knowledge base marked the latest message (`KBResult.suggest`) and no form is active (a pick
    would interrupt it). A button's payload is `/kb_pick{"kb_id": ...}`, answered by action_answer_kb_pick from
    the candidates stored with that message: no search again, the entry the customer chose.
    """
    if not response or utter_action not in SUGGEST_WITH or tracker.active_loop_name:
        return response
    kb = KBResult.from_payload((tracker.latest_message.parse_data or {}).get(KB_KEY) if tracker.latest_message else None)
    picks = [c for c in kb.top_k[: max(0, int(kb.suggest or 0))] if c.id and c.question]
    if not picks:
        return response
    script = script_of(tracker)
    buttons = [{"title": _title(to_script(c.question, script)),
                "payload": f"/{KB_PICK_INTENT}{json.dumps({KB_PICK_ENTITY: c.id}, ensure_ascii=False)}"} for c in picks]
    suggested = dict(response)
    intro = to_script(SUGGEST_TEXT["zh" if language_of(tracker) == "zh" else "en"], script)
    suggested["text"] = f"{suggested.get('text') or ''}\n\n{intro}".strip()
    suggested["buttons"] = buttons + list(suggested.get("buttons") or [])
    return suggested


def _title(question: str, limit: int = TITLE_LIMIT) -> str:
    question = " ".join(question.split())
    return question if len(question) <= limit else question[: limit - 1].rstrip() + "…"


def _user_texts(tracker: DialogueStateTracker):
    return (e.text for e in reversed(tracker.events) if isinstance(e, UserUttered))


def language_of(tracker: DialogueStateTracker) -> str:
    return conversation_language(_user_texts(tracker))


def script_of(tracker: DialogueStateTracker) -> str:
    return conversation_script(_user_texts(tracker))


def in_script(response: Optional[Dict[Text, Any]], script: str) -> Optional[Dict[Text, Any]]:
    """A Chinese response (text and button titles) in the customer's script: Traditional follows Traditional."""
    if not response or script != HANT:
        return response
    converted = dict(response)
    if isinstance(converted.get("text"), str):
        converted["text"] = to_script(converted["text"], script)
    if converted.get("buttons"):
        converted["buttons"] = [{**b, "title": to_script(str(b.get("title", "")), script)} for b in converted["buttons"]]
    return converted
