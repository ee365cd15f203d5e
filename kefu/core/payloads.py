"""Names and payload shapes shared by the NLU components, the actions and the retrain.

The components run in the Rasa server, the actions in the action server, the
retrain reads what both wrote into the tracker store: each imports the names
from here, so none keeps its own copy of a key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional

# ------------------------------------------------------------------ intents
OUT_OF_SCOPE = "out_of_scope"
NLU_FALLBACK = "nlu_fallback"  # Rasa's FallbackClassifier
# Set by the knowledge-base component (configurable there as `retrieval_intent`).
RETRIEVAL_INTENT = "faq"

# ---------------------------------------------------------------- parse data
KB_KEY = "kb"                       # bot.components.FaissAnswerRetriever -> tracker.latest_message["kb"]
IN_DOMAIN_KEY = "intent_in_domain"  # bot.components.TransformerIntentClassifier: nearest-example similarity
# The message's multilingual sentence vector (kefu.core.sentence_encoder), left on the message by the
# classifier for the knowledge base (not in the parse output): one encoder pass per message.
SENTENCE_VECTOR_KEY = "kefu_sentence_vector"

# The kb_match slot rules and stories branch on.
KB_HIGH, KB_LOW, KB_NONE = "high", "low", "none"
KB_MATCHES = (KB_HIGH, KB_LOW, KB_NONE)
# How a message was routed: answered from the KB, asked to rephrase, left to a scripted intent, or nothing.
ROUTE_ANSWER, ROUTE_CLARIFY, ROUTE_INTENT, ROUTE_NONE = "answer", "clarify", "intent", "none"
# "Did you mean": a suggested knowledge-base question is a button whose payload is this intent with
# the entry's id as this entity (`/kb_pick{"kb_id": "..."}`), answered by action_answer_kb_pick.
KB_PICK_INTENT, KB_PICK_ENTITY = "kb_pick", "kb_id"

# ------------------------------------------------------------------- handoff
HANDOFF_ACTION = "action_handoff_to_human"
# Human agents' replies are `bot` events whose metadata has AGENT_KEY == AGENT_HUMAN.
AGENT_KEY = "agent"
AGENT_HUMAN = "human"
# Tag of the Q&A rows a lead accepted in the agent desk (desk/proposals.py writes them, the retrain reads them).
ACCEPTED_QA_TAG = "desk"


def no_scripted_intent(retrieval_intent: str = RETRIEVAL_INTENT) -> frozenset:
    """Intents that mean "the classifier has no scripted answer for this message"."""
    return frozenset({None, OUT_OF_SCOPE, NLU_FALLBACK, retrieval_intent})


@dataclass
class KBCandidate:
    answer: str
    question: str
    source: Optional[str]
    id: str
    score: float


@dataclass
class KBResult:
    """What the knowledge-base component decided for one message (the `kb` parse-data value)."""

    match: str = KB_NONE
    route: str = ROUTE_NONE
    p_answer: float = 0.0
    # What the classifier (and FallbackClassifier) said before the decision.
    intent_before: Optional[str] = None
    answer: Optional[str] = None
    question: Optional[str] = None
    source: Optional[str] = None
    id: Optional[str] = None
    score: Optional[float] = None
    top_k: List[KBCandidate] = field(default_factory=list)
    # Neither an answer nor a scripted intent (route clarify or none), but the best candidate is likely
    # enough (KBConfig.suggest_from) that this many of the top candidates are offered as "did you mean"
    # buttons with what the bot says instead (bot/nlg.py).
    suggest: int = 0

    def to_payload(self) -> Dict[str, Any]:
        payload = asdict(self)
        if self.answer is None:  # no candidate at all: keep the payload small
            for key in ("answer", "question", "source", "id", "score"):
                payload.pop(key)
        return payload

    @classmethod
    def from_payload(cls, payload: Optional[Mapping[str, Any]]) -> "KBResult":
        """Tolerant of missing or foreign keys (a tracker written by an older version)."""
        payload = dict(payload or {})
        known = {f.name for f in fields(cls)} - {"top_k"}
        result = cls(**{k: v for k, v in payload.items() if k in known})
        candidate_keys = {f.name for f in fields(KBCandidate)}
        result.top_k = [KBCandidate(**{k: c.get(k) for k in candidate_keys}) for c in payload.get("top_k") or []
                        if isinstance(c, Mapping)]
        if result.match not in KB_MATCHES:
            result.match = KB_NONE
        return result
