"""`TransformerIntentClassifier`: Rasa's face of `finetune`.

Trains inside `rasa train` (so cross-validation and `rasa test nlu` work
unchanged), persists into Rasa's model storage (one self-contained
models/*.tar.gz), and writes `intent` + `intent_ranking` in Rasa's format.
All options other than `ranking_length` are `finetune.TrainConfig` fields.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import metrics
from bot.components import early_work
from bot.components.code_version import code_digest
from finetune import Example, FinetuneError, IntentModel, TrainConfig, train
from kefu.core import runtime
from kefu.core.errors import KefuError
from kefu.core.memo import Memo
from kefu.core.payloads import IN_DOMAIN_KEY, SENTENCE_VECTOR_KEY

logger = logging.getLogger(__name__)

MODEL_SUBDIR = "intent_model"
RANKING_LENGTH = "ranking_length"
# Path of a kefu intent model directory to continue training from (same label set), e.g. the
# champion's, set by the nightly retrain (retrain/); otherwise training starts from base_model.
INIT_FROM = "init_from"
_NOT_TRAIN_OPTIONS = (RANKING_LENGTH, INIT_FROM)


class IntentModelError(RasaException):
    """A trained kefu intent model in the archive could not be loaded."""


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class TransformerIntentClassifier(GraphComponent, IntentClassifier):
    """Fine-tuned transformer intent classifier with calibrated confidences."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {RANKING_LENGTH: 10, INIT_FROM: None, **TrainConfig().to_dict()}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["torch", "transformers"]

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, model: Optional[IntentModel] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model
        # Predictions of texts seen lately ("hi", "thanks", "yes"): the model answers them the same every time.
        self.memo: Memo = Memo(runtime.inference_cache_size(), observe=metrics.cache_observer("intent"))

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[Text]:
        """Retrain when the classifier's code changes (an upgrade of kefu), not only its configuration or data."""
        return code_digest("finetune", "kefu.core", "bot.components")

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        try:
            cls._train_config(config)
        except FinetuneError as exc:
            raise InvalidConfigException(f"TransformerIntentClassifier: {exc}") from exc

    @staticmethod
    def _train_config(config: Dict[Text, Any]) -> TrainConfig:
        return TrainConfig.from_dict({k: v for k, v in config.items() if k not in _NOT_TRAIN_OPTIONS})

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext) -> "TransformerIntentClassifier":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [
            Example(m.get(TEXT), m.get(INTENT))
            for m in training_data.intent_examples
            if m.get(TEXT) and m.get(INTENT)
        ]
        if len({e.intent for e in examples}) < 2:
            logger.warning("TransformerIntentClassifier: fewer than two intents in the training data; not training.")
            return self._resource
        try:
            self.model = train(examples, self._train_config(self.config), init_from=self._init_model())
            self.memo.clear()
        except FinetuneError as exc:
            raise RasaException(f"Training the intent classifier failed: {exc}") from exc
        with self._model_storage.write_to(self._resource) as directory:
            self.model.save(directory / MODEL_SUBDIR)
        return self._resource

    def _init_model(self) -> Optional[IntentModel]:
        path = self.config.get(INIT_FROM)
        if not path:
            return None
        model = IntentModel.load(path, device=self.config.get("device", "auto"))
        # Where its intents differ from the data's, the trainer regrows its head and logs the change.
        logger.info("TransformerIntentClassifier: continuing from %s", path)
        return model

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext, **kwargs: Any) -> "TransformerIntentClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                path = directory / MODEL_SUBDIR
                if not path.exists():
                    raise ValueError("not trained")
                model = IntentModel.load(path, device=config.get("device", "auto"))
        except ValueError:
            logger.warning("TransformerIntentClassifier has no trained model in this archive; every message gets no intent.")
            return cls(config, model_storage, resource)
        except KefuError as exc:
            raise IntentModelError(f"Cannot load the intent classifier from the model archive: {exc}. Retrain with `rasa train`.") from exc
        return cls(config, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        texts = [m.get(TEXT) or "" for m in messages]
        if self.model is not None and any(text not in self.memo for text in texts):
            # The knowledge base's query pass runs on the side thread during this one's (early_work).
            early_work.start(self._model_storage, messages)
        predictions = self.memo.map(texts, self._predict) if self.model else [None] * len(messages)
        for message, prediction in zip(messages, predictions):
            if prediction is None or prediction.intent is None:
                message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            message.set(INTENT, {INTENT_NAME_KEY: prediction.intent, PREDICTED_CONFIDENCE_KEY: prediction.confidence}, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY,
                [{INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: conf} for name, conf in prediction.ranking],
                add_to_output=True,
            )
            message.set(IN_DOMAIN_KEY, round(prediction.in_domain, 4), add_to_output=True)
            if prediction.vector is not None:
                # For the knowledge base: the same encoder's vector, not computed twice (not in the parse output).
                message.set(SENTENCE_VECTOR_KEY, (self.model.encoder.name, prediction.vector))
        return messages

    def _predict(self, texts: List[str]):
        return self.model.predict(texts, ranking_length=self.config[RANKING_LENGTH])
