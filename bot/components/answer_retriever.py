"""`FaissAnswerRetriever`: Rasa's face of `retrieval`.

Built during `rasa train` from the Q&A files named in config.yml (`qa_files`),
persisted in the model archive, run on every message after the intent
classifier and FallbackClassifier. It writes the retrieval result into the
parse data (`kb`: best answer, score, source, top-k, the calibrated
probability and the decision) and, when the knowledge base should handle the
message, sets the intent to `faq`; `action_search_kb` copies the decision into
the `kb_match` slot (high / low / none) that rules and stories branch on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
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

from kefu.errors import KefuError
from retrieval import AdaptConfig, Embedder, IndexConfig, QAIndex, adapt, load_qa
from retrieval.calibration import calibration_set
from retrieval.decision import DecisionModel, margins

logger = logging.getLogger(__name__)

KB_KEY = "kb"
INDEX_SUBDIR = "kb_index"
DECISION_FILE = "kb_decision.json"


class KnowledgeBaseError(RasaException):
    """The Q&A index in the model archive, or the Q&A data, cannot be used."""


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class FaissAnswerRetriever(GraphComponent):
    """Answers from historical Q&A with a FAISS index, and decides when it may."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "qa_files": ["data/qa"],
            "retrieval_intent": "faq",
            "top_k": 5,
            # Precision the answers given must reach on held-out messages, and the
            # lower precision at which asking "did you mean ..." is still worth it.
            "answer_precision": 0.9,
            "clarify_precision": 0.5,
            # A scripted intent keeps the message when the answer's probability does not beat
            # its confidence, or when its confidence is at least this: a scripted flow can act
            # (forms, look-ups, handoff), a stored answer cannot (1.0: compare the two only; 0.5
            # sent "Is your merino mulesing-free?" to product_availability at 0.78).
            "override_intent_below": 1.0,
            # Intent examples that must never get a knowledge-base answer. Other intents'
            # examples are not negatives: many are fair KB questions too, and the route
            # between a scripted intent and the KB is decided on their confidences.
            "negative_intents": ["out_of_scope"],
            "max_calibration_negatives": 1000,
            # Each answer's questions are split into this many folds for calibration.
            "calibration_folds": 3,
            # Share of answers left out of each calibration probe index, whose questions
            # then stand for on-topic questions the knowledge base cannot answer.
            "calibration_unanswerable": 0.15,
            # Fine-tune the embedding model on the Q&A (MultipleNegativesRankingLoss); kept
            # only if it retrieves better on held-out questions than the frozen model.
            "adapt": False,
            # retrieval.AdaptConfig options (epochs, batch_size, time_budget_minutes, ...).
            "adapt_options": {},
            "seed": 42,
            # retrieval.IndexConfig options (model, kind, flat_max, ...).
            "index": {},
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 index: Optional[QAIndex] = None, decision: Optional[DecisionModel] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.index = index
        self.decision = decision

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        try:
            IndexConfig.from_dict(config.get("index") or {})
        except KefuError as exc:
            raise InvalidConfigException(f"FaissAnswerRetriever: {exc}") from exc
        for key in ("answer_precision", "clarify_precision"):
            if key in config and not 0.0 < float(config[key]) <= 1.0:
                raise InvalidConfigException(f"FaissAnswerRetriever: {key} must be in (0, 1]")

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[Text]:
        """Retrain when the Q&A files change, not only when config.yml does."""
        digest = hashlib.sha256()
        for path in sorted(_qa_files(config.get("qa_files", cls.get_default_config()["qa_files"]))):
            digest.update(str(path).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext) -> "FaissAnswerRetriever":
        return cls(config, model_storage, resource)

    # -------------------------------------------------------------------- train
    def train(self, training_data: TrainingData) -> Resource:
        try:
            pairs = load_qa(self.config["qa_files"])
            index_config = IndexConfig.from_dict(self.config["index"] or {})
            embedder = Embedder.load(index_config.model, index_config.device)
            split, adaptation = None, None
            if self.config["adapt"]:
                options = {**(self.config["adapt_options"] or {}), "base_model": index_config.model}
                adaptation = adapt(pairs, AdaptConfig.from_dict(options), frozen=embedder)
                embedder = adaptation.embedder
                if adaptation.adapted:
                    split = (adaptation.train_pairs_used, adaptation.held_out_pairs)
            negative_intents = set(self.config["negative_intents"])
            negatives = [m.get(TEXT) for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT) in negative_intents]
            self.decision = self._calibrate(pairs, negatives, index_config, embedder, split)
            self.index = QAIndex.build(pairs, index_config, embedder=embedder)
            if adaptation is not None:
                self.index.stats["adaptation"] = adaptation.to_dict()
        except KefuError as exc:
            raise KnowledgeBaseError(f"Building the Q&A index failed: {exc}") from exc
        logger.info("Q&A index: %d entries (%s); decision: %s", len(self.index), self.index.kind, self.decision.to_dict())
        with self._model_storage.write_to(self._resource) as directory:
            self.index.save(directory / INDEX_SUBDIR)
            (directory / DECISION_FILE).write_text(json.dumps(self.decision.to_dict(), indent=2))
        return self._resource

    def _calibrate(self, pairs, negatives: List[str], index_config: IndexConfig, embedder, split=None) -> DecisionModel:
        """Fits the decision on held-out questions (k-fold, see retrieval.calibration) and out-of-scope examples.

        A held-out question is a positive when its best answer is the right one
        and a negative otherwise (a wrong answer is what the threshold prevents).
        """
        rng = random.Random(self.config["seed"])
        negatives = rng.sample(negatives, min(len(negatives), self.config["max_calibration_negatives"]))
        evidence = calibration_set(pairs, negatives, index_config, embedder, folds=self.config["calibration_folds"],
                                   top_k=self.config["top_k"], seed=self.config["seed"],
                                   unanswerable_fraction=self.config["calibration_unanswerable"], split=split)
        if not evidence.answerable.any():
            logger.warning("Too little Q&A data to calibrate the knowledge-base decision (no answer has two questions); "
                           "using conservative defaults.")
            return DecisionModel()
        return DecisionModel.fit(evidence.best, evidence.margin, evidence.correct,
                                 self.config["answer_precision"], self.config["clarify_precision"])

    # --------------------------------------------------------------------- load
    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext, **kwargs: Any) -> "FaissAnswerRetriever":
        try:
            with model_storage.read_from(resource) as directory:
                if not (directory / INDEX_SUBDIR).exists():
                    raise ValueError("not trained")
                index = QAIndex.load(directory / INDEX_SUBDIR)
                decision = DecisionModel.from_dict(json.loads((directory / DECISION_FILE).read_text()))
        except ValueError:
            logger.warning("FaissAnswerRetriever has no index in this archive; the knowledge base is off.")
            return cls(config, model_storage, resource)
        except (KefuError, OSError, TypeError) as exc:
            raise KnowledgeBaseError(f"Cannot load the Q&A index from the model archive: {exc}. Retrain with `rasa train`.") from exc
        return cls(config, model_storage, resource, index, decision)

    # ------------------------------------------------------------------ process
    def process(self, messages: List[Message]) -> List[Message]:
        texts = [(m.get(TEXT) or "").strip() for m in messages]
        searchable = [i for i, t in enumerate(texts) if t] if self.index is not None else []
        results = dict(zip(searchable, self.index.search([texts[i] for i in searchable], k=self.config["top_k"]))) if searchable else {}
        for i, message in enumerate(messages):
            result = results.get(i)
            if result is None or not result.answers:
                intent_before = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
                message.set(KB_KEY, {"match": "none", "route": "none", "p_answer": 0.0, "intent_before": intent_before, "top_k": []},
                            add_to_output=True)
                continue
            self._decide(message, result)
        return messages

    def _decide(self, message: Message, result) -> None:
        intent = message.get(INTENT) or {}
        scores = [a.score for a in result.answers]
        decision = self.decision.decide(intent.get(INTENT_NAME_KEY), float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0),
                                        scores[0], float(margins([scores])[0]), self.config["override_intent_below"])
        best = result.answers[0]
        message.set(KB_KEY, {
            "match": decision.match,
            "route": decision.route,
            "p_answer": round(decision.p_answer, 4),
            # What the classifier (and FallbackClassifier) said before this decision.
            "intent_before": intent.get(INTENT_NAME_KEY),
            "answer": best.answer,
            "question": best.pair.question,
            "source": best.pair.source,
            "id": best.pair.id,
            "score": round(best.score, 4),
            "top_k": [
                {"answer": a.answer, "question": a.pair.question, "source": a.pair.source, "id": a.pair.id, "score": round(a.score, 4)}
                for a in result.answers
            ],
        }, add_to_output=True)
        if decision.route in ("answer", "clarify"):
            name = self.config["retrieval_intent"]
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != name]
            message.set(INTENT, {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: decision.p_answer}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [{INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: decision.p_answer}, *ranking], add_to_output=True)


def _qa_files(paths) -> List[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file())
        elif path.exists():
            files.append(path)
    return files

