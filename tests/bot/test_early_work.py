"""A loaded kefu model parses the same with its encoder passes overlapped (kefu.core.side_work, early_work) as without.

Needs the trained test model (`make test` sets KEFU_TEST_MODEL).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest

from bot.components import FaissAnswerRetriever, TransformerIntentClassifier

MODEL = os.environ.get("KEFU_TEST_MODEL")
pytestmark = pytest.mark.skipif(not MODEL, reason="needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")

# English, Chinese (read by the multilingual view), a knowledge-base question, a scripted intent, a blank.
TEXTS = ["where is my order", "I want to talk to a person", "do you ship to Canada?", "how long do refunds take",
         "我的订单在哪里", "我想退货", "你们周末发货吗", "hello", "104233", "   "]


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    os.environ["KEFU_INFERENCE_CACHE"] = "0"  # every parse runs the passes
    try:
        yield Agent.load(MODEL)
    finally:
        os.environ.pop("KEFU_INFERENCE_CACHE", None)


def components(agent):
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    found = {type(n._component): n._component for n in nodes if hasattr(n, "_component")}
    return found[TransformerIntentClassifier], found[FaissAnswerRetriever]


def parse_all(agent):
    async def run():
        return [json.dumps(await agent.parse_message(text), sort_keys=True, default=str) for text in TEXTS]

    return asyncio.run(run())


def test_overlapped_passes_give_the_same_parse_and_run_on_the_side_thread(agent, monkeypatch):
    classifier, retriever = components(agent)
    threads = {"usem3": [], "kb": []}
    usem3, kb = classifier.model.encoder.encode, retriever.knowledge_base.index.embedder.encode_queries
    monkeypatch.setattr(classifier.model.encoder, "encode", lambda texts: threads["usem3"].append(threading.current_thread().name) or usem3(texts))
    monkeypatch.setattr(retriever.knowledge_base.index.embedder, "encode_queries",
                        lambda texts: threads["kb"].append(threading.current_thread().name) or kb(texts))

    monkeypatch.setenv("KEFU_OVERLAP", "off")
    alone = parse_all(agent)
    before = {kind: list(names) for kind, names in threads.items()}
    assert before["kb"] and before["usem3"] and not any(n.startswith("kefu-side") for names in before.values() for n in names)
    for names in threads.values():
        names.clear()
    monkeypatch.setenv("KEFU_OVERLAP", "on")
    overlapped = parse_all(agent)
    assert overlapped == alone
    # As many passes as without overlapping (none run twice), all of them on the side thread.
    assert {kind: len(names) for kind, names in threads.items()} == {kind: len(names) for kind, names in before.items()}
    assert all(n.startswith("kefu-side") for names in threads.values() for n in names), threads
