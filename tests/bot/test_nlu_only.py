"""The NLU part of an archive alone (bot.nlu_only, the retrain's knowledge-base probe) parses as the whole agent does.

Needs the trained test model (`make test` sets KEFU_TEST_MODEL).
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from kefu.core.payloads import KB_KEY

MODEL = os.environ.get("KEFU_TEST_MODEL")
pytestmark = pytest.mark.skipif(not MODEL, reason="needs a trained model: run `make test` (sets KEFU_TEST_MODEL)")

# English, Chinese, knowledge-base questions (answered, asked to rephrase), an order number, a blank.
TEXTS = ["where is my order", "do you ship to Canada?", "how long do refunds take", "我的订单在哪里", "你们周末发货吗",
         "箱子到了，可是买的三样东西里少了一样", "order 104233 has not arrived", "what is the meaning of life", "   "]


def test_the_nlu_alone_gives_the_agents_parse_without_loading_the_policies(monkeypatch):
    from rasa.core.agent import Agent

    from bot.nlu_only import NLUParser

    monkeypatch.setenv("KEFU_INFERENCE_CACHE", "0")  # every parse runs the passes
    parser = NLUParser(MODEL)
    nodes = parser._runner._instantiated_nodes
    assert not [name for name in nodes if "policy" in name.lower()], "the NLU alone loaded a dialogue policy"
    alone = [parser.parse(text) for text in TEXTS]
    assert alone[0]["intent"]["name"] == "order_status" and alone[6]["entities"][0]["value"] == "104233"
    assert all(KB_KEY in parse for parse in alone[:-1])

    agent = Agent.load(MODEL)
    served = asyncio.run(_parse_all(agent))
    assert [json.dumps(p, sort_keys=True, default=str) for p in alone] == [json.dumps(p, sort_keys=True, default=str) for p in served]


async def _parse_all(agent):
    return [await agent.parse_message(text) for text in TEXTS]
