from __future__ import annotations

import numpy as np

from retrieval import QAPair
from retrieval.dedupe import CONFLICT, EXACT, NEAR, find_duplicates


def pair(question, answer, timestamp=None, tags=(), id=None):
    return QAPair(id=id or question, question=question, answer=answer, tags=list(tags), timestamp=timestamp)


def unit(*rows):
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_duplicates_up_to_case_and_punctuation_are_merged_with_their_tags():
    pairs = [
        pair("Where is my order?", "Open Orders.", tags=["orders"]),
        pair("where is my ORDER", "open orders", tags=["shipping"]),
        pair("How do I pay?", "By card."),
    ]
    result = find_duplicates(pairs, unit([1, 0], [1, 0], [0, 1]))
    assert result.keep == [0, 2]
    assert [(m.reason, m.dropped.question) for m in result.merges] == [(EXACT, "where is my ORDER")]
    assert pairs[0].tags == ["orders", "shipping"]
    assert result.counts() == {EXACT: 1, NEAR: 0, CONFLICT: 0}


def test_conflicting_answers_keep_the_newest_by_timestamp():
    pairs = [
        pair("Do you ship to Canada?", "No.", timestamp="2024-05-01T00:00:00Z", id="new"),
        pair("Do you ship to Canada?", "Not yet.", timestamp="2021-01-01", id="old"),
        pair("do you ship to canada", "Yes, since 2022.", timestamp="2023-06-01T12:00:00+02:00", id="middle"),
    ]
    result = find_duplicates(pairs, unit([1, 0], [1, 0], [1, 0]))
    assert result.keep == [0]
    assert {(m.reason, m.kept.id, m.dropped.id) for m in result.merges} == {(CONFLICT, "new", "old"), (CONFLICT, "new", "middle")}
    assert "kept the newer" in result.merges[0].describe()


def test_conflict_without_timestamps_keeps_the_later_pair():
    pairs = [pair("Opening hours?", "9-5", id="first"), pair("Opening hours?", "8-8", id="second")]
    result = find_duplicates(pairs, unit([1, 0], [1, 0]))
    assert result.keep == [1]
    assert result.merges[0].kept.id == "second"


def test_near_duplicates_need_the_same_answer_and_a_high_cosine():
    pairs = [
        pair("How do I track my order?", "Use the tracking link."),
        pair("How can I track my order", "Use the tracking link."),  # cosine 0.99: merged
        pair("Where's my parcel right now?", "Use the tracking link."),  # cosine 0.8: kept
        pair("How can I track my refund", "Refunds take 5 days."),  # cosine 0.99 but another answer: kept
    ]
    vectors = unit([1, 0.1, 0], [1, 0.12, 0], [1, 0.75, 0], [1, 0.11, 0])
    result = find_duplicates(pairs, vectors, threshold=0.95)
    assert result.keep == [0, 2, 3]
    merge = result.merges[0]
    assert (merge.reason, merge.kept.question, merge.dropped.question) == (NEAR, "How do I track my order?", "How can I track my order")
    assert merge.similarity > 0.99
    assert find_duplicates(pairs, vectors, threshold=0.9999).keep == [0, 1, 2, 3]


def test_locked_pairs_survive_duplicates_but_not_newer_conflicting_answers():
    existing = [pair("How do I track my order?", "Use the tracking link."), pair("Refund time?", "10 days", timestamp="2023-01-01")]
    new = [pair("How can I track my order", "Use the tracking link."), pair("refund time", "5-7 days", timestamp="2024-01-01")]
    result = find_duplicates(existing + new, unit([1, 0], [0, 1], [1, 0.01], [0, 1]), locked=[True, True, False, False])
    assert result.keep == [0, 3]
    assert {(m.reason, m.kept.answer, m.dropped.answer) for m in result.merges} == {
        (NEAR, "Use the tracking link.", "Use the tracking link."),
        (CONFLICT, "5-7 days", "10 days"),
    }
