"""Review queue merging, pseudo-label caps and the gate's decision, without training anything."""

import os
import time
from collections import Counter

from desk.proposals import add_entries
from finetune.model import Prediction
from kefu.core.payloads import HANDOFF_ACTION
from retrain.config import GateConfig, PseudoLabelConfig, RetrainConfig, ReviewConfig
from retrain.gate import decide
from retrain.intake import Conversation, Turn
from retrain.pipeline import _curated_qa_change, _knowledge_base_pairs, curated_qa_files
from retrain.review import MESSAGE, ReviewRow, merge_queue, read_review, reviewed_labels, write_review
from retrain.signals import MessageStat, accepted_questions, message_stats, pseudo_labels, review_queue, without_kb_questions


def stat(text, intent, confidence, count=1, live=None):
    return MessageStat(text, count, Counter({live or intent: count}), intent, confidence, 0.5)


def test_pseudo_labels_are_confident_agreed_new_and_capped_per_intent():
    stats = [stat(f"where is parcel {i}", "order_status", 0.99, count=10 - i) for i in range(8)]
    stats += [stat("hello there", "greet", 0.99), stat("hi", "greet", 0.99),  # "hi" is already training data
              stat("maybe refund", "refund_status", 0.6),                     # not confident
              stat("parcel or refund", "order_status", 0.99, live="refund_status")]  # live bot disagreed
    chosen = pseudo_labels(stats, PseudoLabelConfig(threshold=0.95, cap_per_intent=3, max_total_per_intent=100),
                           {"order_status", "greet", "refund_status"}, {"hi"}, Counter())
    assert chosen == [("hello there", "greet"), ("where is parcel 0", "order_status"),
                      ("where is parcel 1", "order_status"), ("where is parcel 2", "order_status")]
    # Across runs: an intent at its total cap gets no more.
    assert pseudo_labels(stats, PseudoLabelConfig(threshold=0.95, cap_per_intent=3, max_total_per_intent=5),
                         {"order_status"}, set(), Counter(order_status=5)) == []


def test_a_message_the_customer_then_took_to_a_person_is_no_pseudo_label():
    """The bot was sure ("can I return something after 30 days": return_item 0.99), the customer still needed a
    person: that reading vouches for nothing. After the bot is handed the conversation back, its messages count again."""
    def user(text, intent="return_item"):
        return Turn("user", text, 0.0, intent=intent, confidence=0.99)

    conversations = [
        Conversation("a", "tracker_store", [user("can I return something after 30 days"), Turn("bot", "Sure, what's your order number?", 0.0),
                                            user("I want a person", "human_handoff"), Turn("action", None, 0.0, action=HANDOFF_ACTION),
                                            user("still there?", "greet"), Turn("agent", "Yes: 30 days, but we accept 45 for faulty items.", 0.0),
                                            Turn("resume", None, 0.0), user("i want to return my shoes")]),
        Conversation("b", "tracker_store", [user("i want to return my shoes")]),
    ]

    class Model:
        def predict(self, texts):
            return [Prediction(intent="return_item", confidence=0.99, ranking=[("return_item", 0.99), ("greet", 0.01)]) for _ in texts]

    stats = {s.text: s for s in message_stats(conversations, Model())}
    assert stats["can I return something after 30 days"].handed_off == 1
    assert stats["I want a person"].handed_off == 1
    assert stats["still there?"].handed_off == 1  # sent while waiting, before the agent's reply
    assert stats["i want to return my shoes"].handed_off == 0 and stats["i want to return my shoes"].count == 2
    chosen = pseudo_labels(list(stats.values()), PseudoLabelConfig(threshold=0.95), {"return_item", "human_handoff", "greet"}, set(), Counter())
    assert chosen == [("i want to return my shoes", "return_item")]


def test_review_queue_is_sorted_by_usefulness_and_keeps_labels(tmp_path):
    stats = [stat("rare unsure", "a", 0.3, count=1), stat("frequent unsure", "a", 0.3, count=9),
             stat("sure", "a", 0.99, count=50), stat("disputed", "a", 0.8, count=1, live="b")]
    rows = review_queue(stats, ReviewConfig(confidence_below=0.7), known_texts=set())
    assert [r.text for r in rows] == ["frequent unsure", "rare unsure", "disputed"]
    path = tmp_path / "review.csv"
    write_review(path, merge_queue([], rows, [], max_open=10))
    edited = read_review(path)
    edited[1].label = "order_status"
    merged = merge_queue(edited, review_queue([stat("rare unsure", "a", 0.3, count=4)], ReviewConfig(), set()), [], 10)
    row = next(r for r in merged if r.text == "rare unsure")
    assert (row.label, row.count) == ("order_status", 5)
    labelled, unknown = reviewed_labels(merged + [ReviewRow(MESSAGE, "x", label="no_such_intent")], ["order_status"])
    assert labelled == [("rare unsure", "order_status")] and unknown == [("x", "no_such_intent")]


def test_gate_refuses_any_drop_beyond_its_tolerance():
    gate = GateConfig(tolerance={"intent_accuracy": 0.01, "story_accuracy": 0.0})
    champion = {"intent_accuracy": 0.90, "story_accuracy": 1.0}
    assert decide(champion, {"intent_accuracy": 0.895, "story_accuracy": 1.0}, gate)[0]
    promote, reasons = decide(champion, {"intent_accuracy": 0.95, "story_accuracy": 0.9}, gate)
    assert not promote and any("story_accuracy" in r and "WORSE" in r for r in reasons)


def test_answers_accepted_in_the_desk_make_the_next_retrain_train(tmp_path):
    """The curated Q&A (with data/qa/desk_answers.csv, where the desk writes accepted entries) is fingerprinted:
    a change since the champion is something new to learn, even with no other signal."""
    (tmp_path / "config.yml").write_text("pipeline:\n  - name: bot.components.FaissAnswerRetriever\n    qa_files: [data/qa]\n")
    qa = tmp_path / "data" / "qa"
    qa.mkdir(parents=True)
    (qa / "faq.csv").write_text("id,question,answer\nq1,how do returns work,Send it back within 30 days, free label.\n")
    archive = tmp_path / "models" / "kefu.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"not a real archive")
    os.utime(qa / "faq.csv", (time.time() - 60, time.time() - 60))
    config = RetrainConfig.from_dict({"project": str(tmp_path)})

    class Registry:
        saved = {}

        def save_metrics(self, version, values):
            self.saved[version] = values

    registry = Registry()
    champion = {"version": "initial", "archive": archive, "metrics": {"origin": str(archive)}}
    assert curated_qa_files(config) == [qa / "faq.csv"]
    # A champion registered before fingerprints: trained after the files changed, so nothing new; its fingerprint is kept.
    fp, changed = _curated_qa_change(config, registry, champion, dry_run=False)
    assert not changed and registry.saved["initial"]["qa_fingerprint"] == fp
    champion["metrics"] = registry.saved["initial"]
    assert _curated_qa_change(config, registry, champion, dry_run=False) == (fp, False)
    # A lead accepts an answer in the desk: the next run has something to learn.
    (qa / "desk_answers.csv").write_text("id,question,answer\ndesk-1,do you gift wrap,Yes, tick gift wrap at checkout for $3.\n")
    new_fp, changed = _curated_qa_change(config, registry, champion, dry_run=False)
    assert changed and new_fp != fp
    # Same for a champion without a fingerprint whose archive is older than the accepted entry.
    os.utime(archive, (time.time() - 30, time.time() - 30))
    assert _curated_qa_change(config, Registry(), {"version": "x", "archive": archive, "metrics": {}}, dry_run=True)[1]


def test_answers_a_lead_accepted_teach_the_classifier_the_knowledge_base_intent(tmp_path):
    """Questions of rows the desk wrote for a lead become examples of the retriever's `retrieval_intent`;
    no knowledge-base question stays a pseudo-label (the bot was sure it was return_item the night before)."""
    (tmp_path / "config.yml").write_text("pipeline:\n  - name: bot.components.FaissAnswerRetriever\n"
                                         "    qa_files: [data/qa]\n    retrieval_intent: kb_question\n")
    qa = tmp_path / "data" / "qa"
    qa.mkdir(parents=True)
    (qa / "faq.csv").write_text("id,question,answer\nwrap-1,do you gift wrap,\"Yes: tick gift wrap at checkout, $3.\"\n")
    answer = "Items can come back up to 45 days after delivery if they are faulty; otherwise 30 days."
    add_entries(qa / "desk_answers.csv", [
        {"id": "desk-1", "question": q, "answer": answer, "source": "human agent", "tags": "handoff;desk", "timestamp": ""}
        for q in ("can I return something after 30 days", "I missed the return deadline by a few days", "hi there")])
    config = RetrainConfig.from_dict({"project": str(tmp_path)})
    pairs, intent = _knowledge_base_pairs(config)
    assert intent == "kb_question" and len(pairs) == 4
    # "hi there" is already an example of greet in the NLU data: it keeps that label.
    assert accepted_questions(pairs, intent, {"hi there"}) == [("can I return something after 30 days", "kb_question"),
                                                               ("I missed the return deadline by a few days", "kb_question")]
    pseudo = [("Can I return something after 30 days?", "return_item"), ("i want to return my shoes", "return_item"),
              ("do you gift wrap", "product_availability")]
    assert without_kb_questions(pseudo, pairs) == [("i want to return my shoes", "return_item")]
    # Without a knowledge base in the pipeline the retrain adds nothing of the kind.
    (tmp_path / "config.yml").write_text("pipeline:\n  - name: WhitespaceTokenizer\n")
    assert _knowledge_base_pairs(config) == ([], "faq")
