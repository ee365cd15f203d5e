"""bot.speedups: Rasa's check of the action server's answers accepts and refuses exactly what it did before."""

from __future__ import annotations

import pytest
from jsonschema import SchemaError, ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot import speedups

ANSWERS = {
    "valid": {"events": [{"event": "slot", "name": "order_number", "value": "104233"}],
              "responses": [{"text": "Your order has shipped."}]},
    "no events": {"responses": []},
    "responses not a list": {"events": [], "responses": "Your order has shipped."},
    "unknown event": {"events": [{"event": "no_such_event"}], "responses": []},
    "slot without a name": {"events": [{"event": "slot", "value": 1}], "responses": []},
}


def outcome(action: RemoteAction, answer) -> str:
    try:
        return str(action._validate_action_result(answer))
    except ValidationError as e:
        return e.message


def test_the_same_answers_pass_and_fail_with_the_same_message(monkeypatch):
    action = RemoteAction("action_order_status", EndpointConfig("http://127.0.0.1:5055/webhook"))
    before = {name: outcome(action, answer) for name, answer in ANSWERS.items()}
    from rasa.core.policies.ted_policy import TEDPolicy

    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    # install() wraps TED's prediction too: restored after the test.
    monkeypatch.setattr(TEDPolicy, "predict_action_probabilities", TEDPolicy.predict_action_probabilities)
    # ... and the event-class lookup and the SQL tracker store's retrieval and save.
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import Event

    monkeypatch.setattr(Event, "resolve_by_type", Event.__dict__["resolve_by_type"])
    monkeypatch.setattr(SQLTrackerStore, "retrieve", SQLTrackerStore.retrieve)
    monkeypatch.setattr(SQLTrackerStore, "save", SQLTrackerStore.save)
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    from rasa.core.agent import Agent

    monkeypatch.setattr(Agent, "load_model", Agent.load_model)
    monkeypatch.setattr(speedups, "_installed", False)
    speedups.install()
    speedups.install()  # idempotent
    after = {name: outcome(action, answer) for name, answer in ANSWERS.items()}
    assert after == before
    assert before["valid"] == "True" and "Failed to validate Action server response" in before["responses not a list"]


def test_a_schema_that_is_not_valid_is_still_refused(monkeypatch):
    class Broken(RemoteAction):
        @staticmethod
        def action_response_format_spec():
            return {"type": "no such type"}

    monkeypatch.setattr(RemoteAction, "_validate_action_result", speedups._validate_action_result)
    with pytest.raises(SchemaError):
        Broken("action_x", EndpointConfig("http://127.0.0.1:5055/webhook"))._validate_action_result({})


# ---------------------------------------------------------------- TED's memo
DOMAIN = """
version: "3.1"
intents: [greet, order_status, inform, thanks]
entities: [order_number]
slots:
  order_number:
    type: text
    mappings:
    - type: from_entity
      entity: order_number
responses:
  utter_greet: [{text: "Hi!"}]
  utter_ask_order: [{text: "Your order number?"}]
  utter_status: [{text: "It has shipped."}]
  utter_welcome: [{text: "You're welcome."}]
"""
STORIES = """
version: "3.1"
stories:
- story: order status
  steps:
  - intent: greet
  - action: utter_greet
  - intent: order_status
  - action: utter_ask_order
  - intent: inform
    entities: [{order_number: "104233"}]
  - slot_was_set: [{order_number: "104233"}]
  - action: utter_status
  - intent: thanks
  - action: utter_welcome
"""


@pytest.fixture(scope="module")
def ted(tmp_path_factory):
    """A TEDPolicy trained for two epochs on one story: real network, real featurizer."""
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.core.training_data.structures import StoryGraph

    domain = Domain.from_yaml(DOMAIN)
    graph = StoryGraph(YAMLStoryReader(domain).read_from_string(STORIES))
    trackers = TrainingDataGenerator(graph, domain, augmentation_factor=0).generate()
    policy = TEDPolicy.create({**TEDPolicy.get_default_config(), "epochs": 2}, LocalModelStorage(tmp_path_factory.mktemp("ted")),
                              Resource("ted"), ExecutionContext(GraphSchema({}), "ted"))
    policy.train(trackers, domain)
    return policy, domain


def _tracker(domain, sender, *turns):
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered

    events = [ActionExecuted("action_listen")]
    for intent, order in turns:
        entities = [{"entity": "order_number", "value": order, "start": 0, "end": len(order)}] if order else []
        events.append(UserUttered(order or intent, {"name": intent, "confidence": 1.0}, entities))
        if order:
            events.append(SlotSet("order_number", order))
    from rasa.shared.core.trackers import DialogueStateTracker

    return DialogueStateTracker.from_events(sender, events, slots=domain.slots)


def test_ted_answers_a_dialogue_state_it_has_seen_from_memory_with_the_same_prediction(ted, monkeypatch):
    from rasa.core.policies.ted_policy import TEDPolicy

    policy, domain = ted
    original = TEDPolicy.predict_action_probabilities
    monkeypatch.setattr(TEDPolicy, "predict_action_probabilities", speedups._remembering_ted(original))
    runs = []
    run_inference = policy.model.run_inference
    monkeypatch.setattr(policy.model, "run_inference", lambda data: runs.append(1) or run_inference(data))

    greeted = _tracker(domain, "customer-1", ("greet", None))
    first = policy.predict_action_probabilities(greeted, domain)
    assert first.probabilities == original(policy, greeted, domain).probabilities
    # Another customer in the same state (another order number, same slot filled): no second network run.
    runs.clear()
    again = policy.predict_action_probabilities(_tracker(domain, "customer-2", ("greet", None)), domain)
    assert runs == [] and again.probabilities == first.probabilities and again.policy_name == first.policy_name
    # The ensemble zeroes rejected actions in place: that must not reach the memo.
    again.probabilities[again.max_confidence_index] = 0.0
    assert policy.predict_action_probabilities(greeted, domain).probabilities == first.probabilities
    # A different state is predicted by the network, and its answer matches TED's own.
    with_order = _tracker(domain, "customer-3", ("greet", None), ("inform", "104233"))
    predicted = policy.predict_action_probabilities(with_order, domain)
    assert runs == [1]
    assert predicted.probabilities == original(policy, with_order, domain).probabilities
    runs.clear()
    policy.predict_action_probabilities(_tracker(domain, "customer-4", ("greet", None), ("inform", "200417")), domain)
    assert runs == []


def test_ted_trained_end_to_end_is_not_remembered(ted, monkeypatch):
    policy, domain = ted
    tracker = _tracker(domain, "customer-1", ("greet", None))
    assert speedups._ted_state_key(policy, tracker, domain, None) is not None
    monkeypatch.setattr(policy, "only_e2e", True)
    assert speedups._ted_state_key(policy, tracker, domain, None) is None


# ------------------------------------------------------- loading to serve
def _load_ted(policy, load):
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.utils.tensorflow.models import RasaModel

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RasaModel, "load", classmethod(load))
        return TEDPolicy.load(policy.config, policy._model_storage, policy._resource, ExecutionContext(GraphSchema({}), "ted"))


def test_ted_loaded_without_a_training_step_has_rasas_weights_and_predictions(ted):
    from rasa.utils.tensorflow.models import RasaModel

    policy, domain = ted
    current = RasaModel.__dict__["load"].__func__
    rasas = getattr(current, "__wrapped__", current)
    stock, fast = _load_ted(policy, rasas), _load_ted(policy, speedups._serving_load(rasas))
    assert len(fast.model.weights) == len(stock.model.weights) > 10
    for ours, theirs in zip(fast.model.weights, stock.model.weights):
        assert ours.shape == theirs.shape and (ours.numpy() == theirs.numpy()).all(), ours.name
    for tracker in (_tracker(domain, "a", ("greet", None)), _tracker(domain, "b", ("greet", None), ("order_status", None)),
                    _tracker(domain, "c", ("greet", None), ("inform", "104233"))):
        assert fast.predict_action_probabilities(tracker, domain).probabilities == \
            stock.predict_action_probabilities(tracker, domain).probabilities


def test_rasa_gets_the_faster_load_when_it_imports_kefus_components():
    from rasa.utils.tensorflow.models import RasaModel

    import bot.components  # noqa: F401  (what Rasa does when it reads config.yml)

    assert hasattr(RasaModel.__dict__["load"].__func__, "__wrapped__")


# ---------------------------------------------------------------- event classes
def test_every_event_type_resolves_to_the_class_rasas_walk_finds(monkeypatch):
    from rasa.shared.core.events import ActionExecuted, Event
    from rasa.shared.utils.common import all_subclasses

    original = Event.__dict__["resolve_by_type"].__func__
    monkeypatch.setattr(Event, "resolve_by_type", speedups._remembered_event_classes(original))
    names = {cls.type_name for cls in all_subclasses(Event)}
    assert len(names) > 20
    for _ in range(2):  # the first lookup walks, the second is remembered
        assert {name: Event.resolve_by_type(name) for name in names} == {name: original(name) for name in names}
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", ActionExecuted) is ActionExecuted
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.resolve_by_type("no_such_event")
    event = Event.from_parameters({"event": "slot", "name": "order_number", "value": "104233"})
    assert (type(event).__name__, event.key, event.value) == ("SlotSet", "order_number", "104233")


# ---------------------------------------------------------------- the collector and a loaded model
def test_a_loaded_model_is_out_of_the_collectors_sight_and_a_replaced_one_is_still_freed():
    import gc
    import types
    import weakref

    class Model:
        pass

    loaded = []

    def load_model(agent, path):
        model = Model()
        model.itself = model  # a cycle: only the collector frees it, as a real model's modules
        agent.model = model
        loaded.append(weakref.ref(model))

    load = speedups._frozen_after_load(load_model)
    agent = types.SimpleNamespace()
    try:
        load(agent, "first.tar.gz")
        assert gc.get_freeze_count() > 0
        assert not any(o is agent.model for o in gc.get_objects())  # full collections no longer walk it
        load(agent, "second.tar.gz")  # a new model replaces it
        assert loaded[0]() is None  # the first model was collected, not kept frozen for ever
        assert loaded[1]() is agent.model
    finally:
        gc.unfreeze()
