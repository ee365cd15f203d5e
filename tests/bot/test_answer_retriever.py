"""The knowledge-base component: built from Q&A files in training, persisted, one decision per message."""

import copy
import gc
import pickle
import shutil
import threading

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components import FaissAnswerRetriever, early_work
from bot.components.answer_retriever import KB_SUBDIR, KnowledgeBaseError
from tests.conftest import FIXTURES

CONTEXT = ExecutionContext(GraphSchema({}), "test_node")
OUT_OF_SCOPE = ["what's the weather like in Paris", "tell me a joke", "who won the football last night",
                "book me a flight to Rome", "what is the capital of Peru", "play some music"]


def config(qa_file):
    # The packaged model as it is: adapting it to these 200 rows took 65 of the fixture's 78 s, and `make test`'s
    # `rasa train` adapts the shop's knowledge base (config.yml), whose archive the live-server tests load.
    return {"qa_files": [str(qa_file)], "answer_precision": 0.8, "calibration_folds": 2, "adapt": False}


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    copy = tmp_path_factory.mktemp("qa") / "qa_support.csv"
    shutil.copy(FIXTURES / "qa_support.csv", copy)
    return copy


@pytest.fixture(scope="module")
def trained(tmp_path_factory, qa_file):
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    resource = Resource("answer_retriever")
    component = FaissAnswerRetriever.create(config(qa_file), storage, resource, CONTEXT)
    training = TrainingData([Message(data={"text": t, "intent": "out_of_scope"}) for t in OUT_OF_SCOPE])
    assert component.train(training) == resource
    return storage, resource


def parse(component, text, intent=None, confidence=0.0):
    message = Message(data={"text": text})
    if intent:
        message.set("intent", {"name": intent, "confidence": confidence})
        message.set("intent_ranking", [{"name": intent, "confidence": confidence}])
    component.process([message])
    return message


def test_stored_question_is_answered_with_its_source(trained, qa_file):
    storage, resource = trained
    component = FaissAnswerRetriever.load(config(qa_file), storage, resource, CONTEXT)
    first = component.knowledge_base.index.pairs[0]
    message = parse(component, first.question, "out_of_scope", 0.6)
    kb = message.get("kb")
    assert kb["match"] == "high" and kb["route"] == "answer"
    assert kb["answer"] == first.answer and kb["source"] == first.source and kb["intent_before"] == "out_of_scope"
    assert len(kb["top_k"]) == 5 and kb["top_k"][0]["answer"] == first.answer
    assert message.get("intent")["name"] == "faq" and "kb" in message.output_properties


def test_confident_scripted_intent_is_left_alone_and_nonsense_is_not_answered(trained, qa_file):
    storage, resource = trained
    component = FaissAnswerRetriever.load(config(qa_file), storage, resource, CONTEXT)
    scripted = parse(component, "I want to cancel my order", "cancel_order", 0.99)
    assert scripted.get("intent")["name"] == "cancel_order" and scripted.get("kb")["route"] == "intent"
    nonsense = parse(component, "zxqv blorp", "nlu_fallback", 0.3)
    assert nonsense.get("kb")["route"] != "answer"
    empty = parse(component, "   ")
    assert empty.get("kb")["match"] == "none" and empty.get("kb")["top_k"] == []


def test_decision_thresholds_come_from_held_out_questions(trained, qa_file):
    storage, resource = trained
    decision = FaissAnswerRetriever.load(config(qa_file), storage, resource, CONTEXT).knowledge_base.decision
    assert decision.stats["fitted"] == 1 and decision.stats["calibration_messages"] > len(OUT_OF_SCOPE)
    assert decision.high < 1.0 and decision.stats["answer_precision"] >= 0.8


def test_changed_qa_file_changes_the_fingerprint(qa_file, tmp_path):
    changed = tmp_path / "qa.csv"
    shutil.copy(qa_file, changed)
    before = FaissAnswerRetriever.fingerprint_addon(config(changed))
    changed.write_text(changed.read_text() + "do you sell gift boxes?,Yes: $4 at checkout.\n")
    assert FaissAnswerRetriever.fingerprint_addon(config(changed)) != before


def test_untrained_is_off_and_corrupt_index_is_a_clear_error(trained, qa_file, tmp_path):
    off = FaissAnswerRetriever.load(config(qa_file), LocalModelStorage(tmp_path), Resource("never_trained"), CONTEXT)
    assert parse(off, "do you gift wrap?").get("kb")["match"] == "none"
    storage, resource = trained
    with storage.read_from(resource) as directory:
        faiss_file = directory / KB_SUBDIR / "index.faiss"
        original = faiss_file.read_bytes()
        faiss_file.write_bytes(original[:64])
    try:
        with pytest.raises(KnowledgeBaseError, match="rasa train"):
            FaissAnswerRetriever.load(config(qa_file), storage, resource, CONTEXT)
    finally:
        with storage.read_from(resource) as directory:
            (directory / KB_SUBDIR / "index.faiss").write_bytes(original)


def test_bad_config_and_bad_qa_data_are_clear_errors(tmp_path):
    with pytest.raises(InvalidConfigException, match="answer_precision"):
        FaissAnswerRetriever.validate_config({"answer_precision": 1.5})
    broken = tmp_path / "broken.csv"
    broken.write_text("question\nno answer column here\n")
    component = FaissAnswerRetriever.create(config(broken), LocalModelStorage(tmp_path / "s"), Resource("r"), CONTEXT)
    with pytest.raises(KnowledgeBaseError, match="broken.csv"):
        component.train(TrainingData([]))


def test_a_repeated_question_gets_the_same_decision_without_searching_again(trained, qa_file, monkeypatch):
    storage, resource = trained
    component = FaissAnswerRetriever.load(config(qa_file), storage, resource, CONTEXT)
    searched = []
    respond = component.knowledge_base.respond
    monkeypatch.setattr(component.knowledge_base, "respond", lambda texts, *rest, **named: searched.append(list(texts)) or respond(texts, *rest, **named))
    question = "how long do I have to return an item"
    first = parse(component, question, "faq", 0.4)
    again = parse(component, question, "faq", 0.4)
    assert again.get("kb") == first.get("kb") and again.get("intent") == first.get("intent")
    # Another intent or confidence from the classifier is another decision.
    other = parse(component, question, "order_status", 0.99)
    assert searched == [[question], [question]]
    assert other.get("kb")["intent_before"] == "order_status"


def test_the_query_pass_started_early_gives_the_same_decision_and_is_not_run_twice(trained, qa_file, monkeypatch):
    """The classifier starts the knowledge base's query pass on the side thread (early_work); the decision is the
    one the retriever reaches on its own, from that one pass, and an offer lapses with its component."""
    storage, resource = trained
    component = FaissAnswerRetriever.load(config(qa_file), storage, resource, CONTEXT)
    question = component.knowledge_base.index.pairs[0].question
    monkeypatch.setenv("KEFU_OVERLAP", "off")
    alone = parse(component, question, "out_of_scope", 0.6).get("kb")
    component.memo.clear()

    passes = []
    encode = component.knowledge_base.index.embedder.encode_queries
    monkeypatch.setattr(component.knowledge_base.index.embedder, "encode_queries",
                        lambda texts: passes.append(threading.current_thread().name) or encode(texts))
    monkeypatch.setenv("KEFU_OVERLAP", "on")
    message = Message(data={"text": question})
    message.set("intent", {"name": "out_of_scope", "confidence": 0.6})
    message.set("intent_ranking", [{"name": "out_of_scope", "confidence": 0.6}])
    early_work.start(storage, [message])
    component.process([message])
    assert message.get("kb") == alone
    assert len(passes) == 1 and passes[0].startswith("kefu-side")

    del component
    gc.collect()
    later = Message(data={"text": question})
    early_work.start(storage, [later])
    assert not [key for key in later.data if key.startswith("kefu_early_")]


def test_a_message_copied_after_the_early_start_still_gets_its_decision(trained, qa_file, monkeypatch):
    """A custom component between the classifier and the retriever may deepcopy or pickle messages: the
    copy carries no future that cannot be copied, and the retriever still decides for it."""
    storage, resource = trained
    component = FaissAnswerRetriever.load(config(qa_file), storage, resource, CONTEXT)
    question = component.knowledge_base.index.pairs[0].question
    expected = parse(component, question).get("kb")
    monkeypatch.setenv("KEFU_OVERLAP", "on")
    for duplicate in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        component.memo.clear()
        message = Message(data={"text": question})
        early_work.start(storage, [message])
        copied = duplicate(message)
        component.process([copied])
        assert copied.get("kb") == expected
