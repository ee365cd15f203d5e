"""Per-message savings in Rasa's dialogue path, found by profiling kefu under load (bench/throughput.py --profile).

`install()` (idempotent; called by bot/rasa_server.py before Rasa starts, so every
Sanic worker inherits it) changes how, never what, Rasa computes:

- Rasa checks every answer of the action server with `jsonschema.validate(result,
  schema)` (rasa/core/actions/action.py `RemoteAction._validate_action_result`),
  which first validates the schema itself against JSON Schema's meta-schema: on
  kefu's order-status conversation that was about 20 ms of CPU per message, a third
  of the Rasa server's time. Here the validator is built once per schema and only
  the answer is validated; an invalid answer raises the same `ValidationError` with
  Rasa's message.
- TED runs its network for every action it predicts (two or three per message):
  about 9 of the 12.5 ms of CPU the policies took per message. Its prediction is
  a function of the dialogue states it featurizes (the last `max_history`
  turns: intents, entity names, slots, loop, previous action) when it was not
  trained end to end (no user text among its features), and those states
  repeat across conversations far more than texts do. `TEDPolicy` here keeps
  its last predictions per state sequence (`kefu.core.memo`,
  KEFU_INFERENCE_CACHE entries per loaded policy) and hands out copies, since
  the ensemble edits the probabilities it gets. An end-to-end TED runs as before.
- Every event Rasa reads back (each row of the tracker store on every message,
  each event the action server returns) finds its class with
  `Event.resolve_by_type`, which walks all of Event's subclasses and asks each
  whether it is abstract: about 0.06 ms an event, 2 ms of a 34-event
  conversation's retrieval. Here a type name's class is looked up once and kept
  (the same class Rasa's walk gives; unknown names go Rasa's way, so its
  defaults and errors stay).
- The SQL tracker store reads each conversation back from the database for every
  message and counts its rows before every save: `bot/tracker_cache.py` keeps each
  worker's copy of the conversations it served, checked against the store by one
  indexed query.
- Rasa opens a new HTTP session, so a new connection, for every call to the
  action server: `bot/endpoint_sessions.py` keeps one per event loop.
- A loaded model is some 930,000 Python objects (TensorFlow, torch, tokenizers,
  the knowledge base), and Python's garbage collector walks all of them in every
  full collection: 480 ms, during which the worker answers nobody (measured with
  `gc.collect()` after `Agent.load` of the test model; in bench/throughput.py it
  showed as a p95 of 559 ms at half load in one run of three). After a model loads
  they are moved out of the collector's sight (`gc.freeze()`; the next load
  unfreezes them first, so a replaced model is still collected).

And one saving when a model loads (every Rasa server start, reload and rollout):

- Rasa builds a TED (or DIET) network before reading its weights by training it
  for one step on one example (`RasaModel.load`: `model.fit`), which traces and
  compiles the whole training step, gradients and optimizer included: about 9 of
  the 37 s an archive of kefu's took to load (bench/model_load.py). A model loaded to serve never trains,
  so here its variables are built by one eager pass of the same loss on the
  same example, then the weights are read as before (a checkpoint restores
  exactly the variables it has; the optimizer's slots it holds are not needed).
  Loading to fine-tune (`finetune_mode`) goes Rasa's way.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, Optional

from bot import endpoint_sessions, metrics, tracker_cache
from kefu.core import runtime
from kefu.core.memo import Memo

_installed = False
_MEMO = "_kefu_memo"


_validators: Dict[type, Any] = {}


def _validator(action: Any) -> Any:
    """The validator of the action class's (static) answer schema, checked against the meta-schema once."""
    validator = _validators.get(type(action))
    if validator is None:
        from jsonschema.validators import validator_for

        schema = action.action_response_format_spec()
        cls = validator_for(schema)
        cls.check_schema(schema)  # what jsonschema.validate does on every call
        validator = _validators[type(action)] = cls(schema)
    return validator


def _validate_action_result(self, result: Dict[str, Any]) -> bool:
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_validator(self).iter_errors(result))
    if error is None:
        return True
    assert isinstance(error, ValidationError)
    error.message += (". Failed to validate Action server response from API, make sure your response from the Action "
                      f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions")
    raise error


def _remembered_event_classes(resolve: Any) -> Any:
    """Event.resolve_by_type that keeps each type name's class after Rasa's walk has found it."""
    classes: Dict[str, Any] = {}

    def resolve_by_type(type_name, default=None):
        cls = classes.get(type_name)
        if cls is None:
            cls = resolve(type_name, default)
            if cls is not None and cls is not default:
                classes[type_name] = cls
        return cls

    resolve_by_type.__wrapped__ = resolve
    return staticmethod(resolve_by_type)


def _frozen_after_load(load_model: Any) -> Any:
    """Agent.load_model, then the loaded model's objects out of the garbage collector's full collections."""
    def load_model_and_freeze(self, *args, **kwargs):
        import gc

        gc.unfreeze()  # the model being replaced can be collected once it is unreachable
        try:
            return load_model(self, *args, **kwargs)
        finally:
            gc.collect()
            gc.freeze()

    load_model_and_freeze.__wrapped__ = load_model
    return load_model_and_freeze


def _ted_state_key(policy: Any, tracker: Any, domain: Any, rule_only_data: Optional[Dict[str, Any]]) -> Optional[str]:
    """The states TED featurizes for this prediction, as a key; None when its answer depends on more (user text)."""
    from rasa.core.policies.policy import SupportedData
    from rasa.shared.nlu.constants import TEXT

    if policy.model is None or policy.only_e2e or TEXT in policy.fake_features:
        return None
    ml_only = policy.supported_data() == SupportedData.ML_DATA
    states = policy.featurizer.prediction_states([tracker], domain, use_text_for_last_user_input=False, ignore_rule_only_turns=ml_only,
                                                 rule_only_data=rule_only_data, ignore_action_unlikely_intent=ml_only)
    return json.dumps(states, sort_keys=True, default=repr)


def _remembering_ted(predict: Any) -> Any:
    """TEDPolicy.predict_action_probabilities that answers a state sequence it has seen from its memo."""
    def predict_action_probabilities(self, tracker, domain, rule_only_data=None, precomputations=None, **kwargs):
        memo = self.__dict__.get(_MEMO)
        if memo is None:
            memo = self.__dict__[_MEMO] = Memo(runtime.inference_cache_size(), observe=metrics.cache_observer("dialogue"))
        # With the cache off, no state key is built: that work would buy nothing.
        key = _ted_state_key(self, tracker, domain, rule_only_data) if memo.size else None
        if key is None:
            return predict(self, tracker, domain, rule_only_data=rule_only_data, precomputations=precomputations, **kwargs)
        prediction = memo.get(key, lambda: predict(self, tracker, domain, rule_only_data=rule_only_data, precomputations=precomputations, **kwargs))
        answer = copy.copy(prediction)
        answer.probabilities = list(prediction.probabilities)
        answer.events = list(prediction.events)
        answer.optional_events = list(prediction.optional_events)
        return answer

    predict_action_probabilities.__wrapped__ = predict
    return predict_action_probabilities


def _serving_load(load: Any) -> Any:
    """RasaModel.load (the function under the classmethod) that builds a model to serve without a training step."""
    def load_to_serve(cls, model_file_name, model_data_example, predict_data_example=None, finetune_mode=False, *args, **kwargs):
        if finetune_mode:
            return load(cls, model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs)
        import tensorflow as tf
        from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
        from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator

        model = cls(*args, **kwargs)
        config = kwargs.get("config", {})
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)), run_eagerly=config.get(RUN_EAGERLY))
        batch, _ = RasaBatchDataGenerator(model_data_example, batch_size=1)[0]
        model._training = True  # the loss's layers, as the training step calls them: every variable is made
        model.batch_loss(batch)
        model._training = None
        model.load_weights(model_file_name).expect_partial()
        if predict_data_example:
            model.run_inference(predict_data_example)  # traces the prediction function now, as Rasa does
        return model

    load_to_serve.__wrapped__ = load
    return load_to_serve


def install_model_loading() -> None:
    """Idempotent. Also run when Rasa imports kefu's components (bot/components), before it loads any policy, so
    `rasa run`, `rasa test`, `rasa shell` and `Agent.load` of a kefu model load faster without kefu's server."""
    from rasa.utils.tensorflow.models import RasaModel

    load = RasaModel.__dict__["load"].__func__
    if not hasattr(load, "__wrapped__"):
        RasaModel.load = classmethod(_serving_load(load))


def install() -> None:
    global _installed
    if _installed:
        return
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import Agent
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.core.events import Event

    Agent.load_model = _frozen_after_load(Agent.load_model)
    RemoteAction._validate_action_result = _validate_action_result
    tracker_cache.install()
    endpoint_sessions.install()
    Event.resolve_by_type = _remembered_event_classes(Event.resolve_by_type)
    install_model_loading()
    TEDPolicy.predict_action_probabilities = _remembering_ted(TEDPolicy.predict_action_probabilities)
    _installed = True
