from __future__ import annotations

import numpy as np
import pytest

from retrieval import IndexConfig, QADataError, QAPair, RetrievalError, build, evaluate
from retrieval.qa import normalize_text

TRACKING = "Use the tracking link in your shipping confirmation email, or open Orders and choose 'Track package'."
REFUNDS = "Refunds go back to your original payment method within 5-7 business days after we receive the return."


def answer_of(index, question):
    return index.search(question, k=5)[0].answers[0].answer


def test_paraphrases_find_the_right_answer(small_index, paraphrases):
    report = evaluate(small_index, paraphrases, latency_samples=0)
    assert report["top1_accuracy"] >= 0.8
    assert report["top5_accuracy"] == 1.0
    assert answer_of(small_index, "how soon is my money refunded") == REFUNDS


def test_results_group_questions_by_answer(small_index):
    result = small_index.search(["when does my package get here"], k=5)[0]
    assert len(result.hits) == 5 and len(result.answers) == 5
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    answers = [normalize_text(a.answer) for a in result.answers]
    assert len(set(answers)) == len(answers)
    top = result.answers[0]
    assert top.answer.startswith("Standard shipping")
    # Several shipping questions support it; its score is the mean of its best question's and its own
    # text's (answer_text_weight 1.0, no bonus by default).
    best_question = next(h.score for h in top.hits if "answer-text" not in h.pair.tags)
    own_text = next(h.score for h in top.hits if "answer-text" in h.pair.tags)
    assert len(top.hits) >= 3 and top.score == pytest.approx((best_question + own_text) / 2)
    assert {h.pair.answer for h in top.hits} == {top.answer}


def test_what_the_answer_says_counts_next_to_the_stored_questions(embedder):
    """Held-out questions worded like another answer's questions, asking what their own answer says."""
    from pathlib import Path

    from retrieval import load_qa

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    index = build(load_qa([fixtures / "qa_support.csv"]), IndexConfig(kind="flat"), embedder=embedder, progress=False)
    questions = {"can I use my Amex": "We accept Visa", "is customer service available on Sunday": "Our support team",
                 "use my bonus points on an order": "You earn one point"}
    index.config.answer_text_weight = 0.0  # the better of question and answer text: all three go elsewhere
    assert not any(answer_of(index, q).startswith(a) for q, a in questions.items())
    index.config.answer_text_weight = 1.0
    assert all(answer_of(index, q).startswith(a) for q, a in questions.items())


def test_answer_bonus_adds_supporting_questions(small_index):
    small_index.config.answer_bonus = 0.1
    small_index.config.answer_text_weight = 0.0
    top = small_index.search("when does my package get here")[0].answers[0]
    assert top.score == pytest.approx(top.hits[0].score + 0.1 * sum(h.score for h in top.hits[1:]))


def test_search_accepts_vectors_and_several_queries(small_index, embedder):
    vectors = embedder.encode(["where is my parcel right now", "can I pay with Apple Pay"])
    by_vector = small_index.search(vectors * 3.0, k=3)  # not unit length: normalised on the way in
    by_text = small_index.search(["where is my parcel right now", "can I pay with Apple Pay"], k=3)
    assert [r.answers[0].answer for r in by_vector] == [r.answers[0].answer for r in by_text]
    assert by_text[1].answers[0].pair.id.startswith("pay-")
    assert by_vector[0].query is None
    assert small_index.search(["  ", "hi"])[0].answers == []
    with pytest.raises(RetrievalError, match="dimension 5"):
        small_index.search(np.ones((1, 5), dtype=np.float32))


def test_build_merges_duplicates_and_reports_them(embedder):
    pairs = [
        QAPair("a", "How do I track my order?", TRACKING),
        QAPair("b", "How can I track my order", TRACKING),
        QAPair("c", "how do I track my order", TRACKING),
        QAPair("d", "Where is my refund?", REFUNDS),
    ]
    index = build(pairs, IndexConfig(), embedder=embedder, progress=False)
    assert len(index) == 2
    assert sorted(m.reason for m in index.merges) == ["exact duplicate", "near duplicate"]
    assert index.stats["merged"] == {"exact duplicate": 1, "near duplicate": 1, "conflicting answer": 0}
    with pytest.raises(QADataError, match="No Q&A pairs"):
        build([], embedder=embedder)


def test_add_is_incremental_and_deduplicated_against_the_index(small_index):
    faiss_before = small_index.vectors.index
    result = small_index.add([
        QAPair("gw", "Do you offer gift wrapping?", "Yes: tick 'Add gift wrap' at checkout ($3.99)."),
        QAPair("dup", "how can I track my ORDER", TRACKING),  # already there (track-1)
    ], progress=False)
    assert (result.added, result.replaced) == (1, 0)
    assert [m.reason for m in result.merges] == ["exact duplicate"]
    assert small_index.vectors.index is faiss_before  # no rebuild
    assert len(small_index) == 31
    assert answer_of(small_index, "can you wrap my present") == "Yes: tick 'Add gift wrap' at checkout ($3.99)."


def test_add_with_a_newer_answer_replaces_the_old_one(small_index):
    result = small_index.add([QAPair("pay-3", "Which payment methods do you accept?", "Cards, PayPal, Apple Pay and Klarna.", timestamp="2025-01-01")], progress=False)
    assert (result.added, result.replaced) == (1, 1)
    assert result.merges[0].reason == "conflicting answer"
    assert answer_of(small_index, "Which payment methods do you accept?") == "Cards, PayPal, Apple Pay and Klarna."


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_delete_without_rebuild(small_pairs, embedder, kind):
    index = build(small_pairs, IndexConfig(kind=kind, ivf_nprobe=8), embedder=embedder, progress=False)
    faiss_before = index.vectors.index
    assert answer_of(index, "Do you ship internationally?").startswith("We ship to the US")
    assert index.delete(["intl-1", "intl-2"]) == 2
    assert index.vectors.index is faiss_before
    assert len(index) == 28
    result = index.search("Do you ship internationally?", k=30)[0]
    assert all(not h.pair.id.startswith("intl-") for h in result.hits)
    with pytest.raises(RetrievalError, match="No entry with id 'nope'"):
        index.delete(["nope", "ship-1"])
    assert len(index) == 28  # nothing deleted when an id is unknown


def test_delete_by_shared_rasa_id_removes_every_question(embedder):
    pairs = [QAPair("faq/ship", q, "3-5 days.") for q in ("shipping time?", "how long is delivery")]
    pairs.append(QAPair("faq/pay", "payment options?", "Cards."))
    index = build(pairs, embedder=embedder, progress=False)
    assert index.delete(["faq/ship"]) == 2
    assert {p.id for p in index.pairs.values()} == {"faq/pay"} and len(index) == 1


def test_auto_index_moves_to_ivf_when_it_outgrows_flat(small_pairs, embedder):
    index = build(small_pairs[:20], IndexConfig(flat_max=25, index_answers=False), embedder=embedder, progress=False)
    assert index.kind == "flat"
    index.add(small_pairs[20:], progress=False)
    assert index.kind == "ivf" and len(index) == 30
    assert answer_of(index, "How can I track my order?").startswith("Use the tracking link")


def test_answer_texts_are_indexed_and_follow_their_questions(embedder):
    """A question worded like the answer, not like any stored question, still finds it."""
    from retrieval.qa import is_answer_text

    pairs = [
        QAPair("care-1", "how do I wash my wool jumper", "Hand wash merino in cold water with wool detergent and dry it flat."),
        QAPair("care-2", "can knitwear go in the washing machine", "Hand wash merino in cold water with wool detergent and dry it flat."),
        QAPair("pay-1", "which cards do you take", "Visa, Mastercard and Amex."),
    ]
    index = build(pairs, IndexConfig(kind="flat"), embedder=embedder, progress=False)
    assert (len(index), index.entries) == (3, 5)
    best = index.search("should merino be dried flat", k=1)[0].answers[0]
    assert best.answer.startswith("Hand wash merino") and is_answer_text(best.pair)
    # Deleting one of two questions keeps the answer text; deleting the last removes it.
    assert index.delete(["care-1"]) == 1 and index.entries == 4
    assert index.delete(["care-2"]) == 1 and index.entries == 2
    assert all(not p.answer.startswith("Hand wash") for p in index.pairs.values())
    without = build(pairs, IndexConfig(kind="flat", index_answers=False), embedder=embedder, progress=False)
    assert without.entries == 3


def test_a_score_missing_from_the_candidates_counts_as_the_lowest_candidate():
    """An answer matched by its text alone is not scored as if its questions matched as well."""
    from retrieval.qa import ANSWER_TEXT_TAG
    from retrieval.ranking import Hit, group_by_answer

    def question(answer, score):
        return Hit(score, QAPair(answer, f"a question of {answer}", answer))

    def own_text(answer, score):
        return Hit(score, QAPair(answer, answer, answer, tags=[ANSWER_TEXT_TAG]))

    hits = [question("A", 0.8), own_text("B", 0.75), question("C", 0.5), own_text("C", 0.6)]
    assert [(a.answer, round(a.score, 3)) for a in group_by_answer(hits, answer_text_weight=1.0)] == [
        ("A", 0.65), ("B", 0.625), ("C", 0.55)]
    assert [a.answer for a in group_by_answer(hits)] == ["A", "B", "C"]  # weight 0: the better of the two
    assert group_by_answer(hits)[1].score == 0.75
