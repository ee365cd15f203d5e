"""The lead's review page writes what the retrain reads, in the retrain's formats."""

from __future__ import annotations

import csv
import time

import pytest

from desk import review
from desk.web import SERVICE
from kefu.core.payloads import AGENT_HUMAN, AGENT_KEY
from retrain import review as retrain_review
from retrain.config import HandoffQAConfig
from retrain.intake import Conversation, turns_from_events
from retrain.signals import handoff_pairs
from retrieval.loaders import load_qa
from tests.desk.conftest import post

pytestmark = pytest.mark.asyncio


def _write_queue(path):
    rows = [
        retrain_review.ReviewRow(kind="message", text="can I pay with klarna", predicted="payment_failed",
                                 confidence=0.41, count=3, priority=2.1, reason="low confidence"),
        retrain_review.ReviewRow(kind="candidate_intent", text="do you sell gift wrap", count=6, priority=6,
                                 examples="do you sell gift wrap | can you wrap it as a present | gift wrapping?"),
    ]
    retrain_review.write_review(path, rows)


async def test_columns_are_the_retrains():
    assert review.COLUMNS == retrain_review.COLUMNS


async def test_lead_labels_messages_and_names_new_intents(desk, desk_config):
    path = desk_config.path(desk_config.review_file)
    _write_queue(path)
    make_client, _ = desk
    lead = await make_client("lena")
    data = await (await lead.get("/api/review")).json()
    assert "payment_failed" in data["intents"] and len(data["rows"]) == 2
    assert (await post(lead, "/api/review/0/label", {"label": "update_payment_method"})).status == 200
    assert (await post(lead, "/api/review/0/label", {"label": "Not An Intent!"})).status == 400
    assert (await post(lead, "/api/review/1/label", {"label": "greet"})).status == 404  # a candidate, not a message
    response = await post(lead, "/api/review/1/candidate", {"name": "gift_wrap"})
    assert (await response.json())["labelled_messages"] == 3
    rows = retrain_review.read_review(path)
    labelled, unknown = retrain_review.reviewed_labels(rows, review.domain_intents(desk_config.path(desk_config.domain)))
    assert labelled == [("can I pay with klarna", "update_payment_method")]
    assert sorted(t for t, _ in unknown) == ["can you wrap it as a present", "do you sell gift wrap", "gift wrapping?"]
    exported = await lead.get("/api/review/export")
    assert exported.status == 200 and (await exported.read()).startswith(b"kind,text,label")


async def test_import_checks_the_file(desk, desk_config):
    make_client, _ = desk
    lead = await make_client("lena")
    bad = await lead.post("/api/review/import", data=b"foo,bar\n1,2\n", headers={"X-CSRF-Token": lead.csrf})
    assert bad.status == 400
    good = b"kind,text,label\nmessage,where is my stuff,order_status\n"
    response = await lead.post("/api/review/import", data=good, headers={"X-CSRF-Token": lead.csrf})
    assert response.status == 200
    rows = retrain_review.read_review(desk_config.path(desk_config.review_file))
    assert rows[0].label == "order_status"


async def test_accepted_answers_become_knowledge_base_entries(desk, desk_config):
    make_client, app = desk
    proposals = app[SERVICE].proposals
    first = proposals.propose("c1", "do you sell gift wrap?", "Yes: tick 'gift wrap' at checkout, it costs $3.", "alice")
    second = proposals.propose("c2", "what is the meaning of life", "Sorry, I can't answer that one here.", "bob")
    assert proposals.propose("c3", "hi", "ok", "bob") is None  # too short to be an answer
    lead = await make_client("lena")
    edited = "Yes! Tick 'Gift wrap' at checkout: $3 per item, with a card."
    response = await post(lead, f"/api/proposals/{first}/accept", {"answer": edited})
    assert response.status == 200
    assert (await post(lead, f"/api/proposals/{second}/reject")).status == 200
    assert (await post(lead, f"/api/proposals/{second}/accept")).status == 409
    assert (await post(lead, "/api/proposals/999/accept")).status == 404
    kb_file = desk_config.path(desk_config.kb_file)
    [pair] = load_qa([kb_file])
    assert pair.question == "do you sell gift wrap?" and pair.answer == edited
    with open(kb_file, newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == ["id", "question", "answer", "source", "tags", "timestamp"]


async def test_only_answers_a_lead_accepts_reach_the_knowledge_base(desk, desk_config, queue, fake_rasa):
    """Agents answer through the desk; the lead accepts one (edited) and rejects one. The knowledge base gets
    the accepted entry only, and the next retrain does not take the desk's replies from the transcripts again
    (a rejected answer would come back); a reply posted straight to Rasa's API is still learned as before."""
    make_client, _ = desk
    alice = await make_client("alice")
    talks = [("k1", "do you sell gift wrap?", "Yes: tick 'gift wrap' at checkout, it costs $3 per item."),
             ("k2", "what is the meaning of life", "Forty-two, but our philosophy team can tell you more.")]
    for cid, question, answer in talks:
        fake_rasa.conversation(cid)
        row = queue.enqueue(cid, "customer_asked", "socketio")
        fake_rasa.customer_says(cid, question)
        assert (await post(alice, f"/api/handoffs/{row.id}/claim")).status == 200
        assert (await post(alice, f"/api/handoffs/{row.id}/reply", {"text": answer})).status == 200
        assert (await post(alice, f"/api/handoffs/{row.id}/close")).status == 200
    # Another handoff tool posts its agent's reply straight to Rasa's HTTP API (no desk, no agent id).
    fake_rasa.conversation("api-1")
    fake_rasa.customer_says("api-1", "can I collect my order in store?")
    fake_rasa.trackers["api-1"]["events"].append({"event": "bot", "text": "Not yet, we only deliver to your door.",
                                                  "timestamp": time.time() + 10, "metadata": {AGENT_KEY: AGENT_HUMAN}})

    lead = await make_client("lena")
    proposals = {p["conversation_id"]: p for p in (await (await lead.get("/api/proposals")).json())["proposals"]}
    assert set(proposals) == {"k1", "k2"}
    edited = "Yes! Tick 'Gift wrap' at checkout: $3 per item, card included."
    assert (await post(lead, f"/api/proposals/{proposals['k1']['id']}/accept", {"answer": edited})).status == 200
    assert (await post(lead, f"/api/proposals/{proposals['k2']['id']}/reject")).status == 200

    [entry] = load_qa([desk_config.path(desk_config.kb_file)])
    assert (entry.question, entry.answer) == ("do you sell gift wrap?", edited)

    conversations = [Conversation(cid, "tracker_store", turns_from_events(t["events"], 0.0, AGENT_KEY, AGENT_HUMAN))
                     for cid, t in fake_rasa.trackers.items()]
    desk_replies = [t for c in conversations if c.id in ("k1", "k2") for t in c.turns if t.kind == "agent"]
    assert len(desk_replies) == 2 and all(t.via_desk for t in desk_replies)
    pairs = handoff_pairs(conversations, HandoffQAConfig())
    assert [(p.question, p.answer) for p in pairs] == [("can I collect my order in store?", "Not yet, we only deliver to your door.")]
    assert not any("Forty-two" in p.answer or "gift wrap" in p.question for p in pairs)
