"""`FaissAnswerRetriever`: Rasa's face of `retrieval.KnowledgeBase`.

Built during `rasa train` from the Q&A files named in config.yml (`qa_files`),
persisted in the model archive, run on every message after the intent
classifier and FallbackClassifier. It writes the knowledge base's decision
into the parse data (`kb`, the `kefu.core.payloads.KBResult` shape: best
answer, score, source, top-k, the calibrated probability and the route) and,
when the knowledge base should handle the message, sets the intent to the
retrieval intent (`faq`); `action_search_kb` copies the decision into the
`kb_match` slot (high / low / none) that rules and stories branch on.

Every option except `qa_files` is a `retrieval.KBConfig` field, whose defaults
`kefu kb build` shares; building and deciding happen in the library.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import metrics
from bot.components import early_work
from bot.components.code_version import code_digest
from kefu.core import runtime
from kefu.core.errors import KefuError
from kefu.core.memo import Memo
from kefu.core.payloads import KB_KEY, ROUTE_ANSWER, ROUTE_CLARIFY, SENTENCE_VECTOR_KEY, KBResult
from retrieval import KBConfig, KnowledgeBase, load_qa
from retrieval.index import QueryVectors

logger = logging.getLogger(__name__)

QA_FILES = "qa_files"
KB_SUBDIR = "knowledge_base"


class KnowledgeBaseError(RasaException):
    """The knowledge base in the model archive, or the Q&A data, cannot be used."""


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class FaissAnswerRetriever(GraphComponent):
    """Answers from historical Q&A with a FAISS index, and decides when it may."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {QA_FILES: ["data/qa"], **KBConfig().to_dict()}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 knowledge_base: Optional[KnowledgeBase] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self.kb_config = _kb_config(self.config)
        self._model_storage = model_storage
        self._resource = resource
        self.knowledge_base = knowledge_base
        # Decisions on (text, intent, confidence) seen lately: the same three always give the same decision.
        self.memo: Memo = Memo(runtime.inference_cache_size(), observe=metrics.cache_observer("kb"))
        self._early_key = f"kb_queries_{resource.name}"
        if knowledge_base is not None:
            # The query encoder's pass needs no intent: it can run while the classifier's does.
            early_work.offer(model_storage, self._early_key, self, FaissAnswerRetriever._encode_queries)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        try:
            _kb_config(config)
        except KefuError as exc:
            raise InvalidConfigException(f"FaissAnswerRetriever: {exc}") from exc

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[Text]:
        """Retrain when the Q&A files or the knowledge base's code change, not only when config.yml does."""
        digest = hashlib.sha256(code_digest("retrieval", "kefu.core", "bot.components").encode())
        for path in sorted(_qa_files(config.get(QA_FILES, cls.get_default_config()[QA_FILES]))):
            digest.update(str(path).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext) -> "FaissAnswerRetriever":
        return cls(config, model_storage, resource)

    # -------------------------------------------------------------------- train
    def train(self, training_data: TrainingData) -> Resource:
        negative_intents = set(self.kb_config.negative_intents)
        negatives = [m.get(TEXT) for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT) in negative_intents]
        try:
            examples = [(m.get(TEXT), m.get(INTENT)) for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
            self.knowledge_base = KnowledgeBase.build(load_qa(self.config[QA_FILES]), self.kb_config, negatives, intent_examples=examples)
            self.memo.clear()
        except KefuError as exc:
            raise KnowledgeBaseError(f"Building the knowledge base failed: {exc}") from exc
        with self._model_storage.write_to(self._resource) as directory:
            self.knowledge_base.save(directory / KB_SUBDIR)
        return self._resource

    # --------------------------------------------------------------------- load
    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext, **kwargs: Any) -> "FaissAnswerRetriever":
        merged = {**cls.get_default_config(), **config}
        try:
            with model_storage.read_from(resource) as directory:
                if not (directory / KB_SUBDIR).exists():
                    raise ValueError("not trained")
                knowledge_base = KnowledgeBase.load(directory / KB_SUBDIR, config=_kb_config(merged))
        except ValueError:
            logger.warning("FaissAnswerRetriever has no knowledge base in this archive; the knowledge base is off.")
            return cls(config, model_storage, resource)
        except (KefuError, OSError) as exc:
            raise KnowledgeBaseError(f"Cannot load the knowledge base from the model archive: {exc}. Retrain with `rasa train`.") from exc
        return cls(config, model_storage, resource, knowledge_base)

    # ------------------------------------------------------------------ process
    def process(self, messages: List[Message]) -> List[Message]:
        intents = [(m.get(INTENT) or {}) for m in messages]
        if self.knowledge_base is None:
            for message, intent in zip(messages, intents):
                message.set(KB_KEY, KBResult(intent_before=intent.get(INTENT_NAME_KEY)).to_payload(), add_to_output=True)
            return messages
        texts = _texts(messages)
        encoded = early_work.take(messages, self._early_key)
        keys = [(text, i.get(INTENT_NAME_KEY), float(i.get(PREDICTED_CONFIDENCE_KEY) or 0.0)) for text, i in zip(texts, intents)]
        vectors = {key: m.get(SENTENCE_VECTOR_KEY) for key, m in zip(keys, messages)}
        results = self.memo.map(keys, lambda missing: self.knowledge_base.respond([k[0] for k in missing], [k[1] for k in missing],
                                                                                   [k[2] for k in missing], [vectors[k] for k in missing],
                                                                                   encoded=encoded))
        name = self.kb_config.retrieval_intent
        for message, result in zip(messages, results):
            message.set(KB_KEY, result.to_payload(), add_to_output=True)
            if result.route in (ROUTE_ANSWER, ROUTE_CLARIFY):
                ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != name]
                top = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: result.p_answer}
                message.set(INTENT, top, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [dict(top), *ranking], add_to_output=True)
        return messages

    def _encode_queries(self, messages: List[Message]) -> Optional[QueryVectors]:
        texts = _texts(messages)
        return self.knowledge_base.encode_queries(texts) if any(texts) else None


def _texts(messages: List[Message]) -> List[str]:
    return [(m.get(TEXT) or "").strip() for m in messages]


def _kb_config(config: Dict[Text, Any]) -> KBConfig:
    return KBConfig.from_dict({k: v for k, v in config.items() if k != QA_FILES})


def _qa_files(paths) -> List[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file())
        elif path.exists():
            files.append(path)
    return files
