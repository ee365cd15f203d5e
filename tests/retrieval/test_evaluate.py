from __future__ import annotations

from retrieval import QAPair, evaluate

REPORT_KEYS = {"top1_accuracy", "top5_accuracy", "mrr", "latency_ms_p50", "latency_ms_p99"}


def test_report_on_paraphrases(small_index, paraphrases):
    report = evaluate(small_index, paraphrases, latency_samples=20)
    assert REPORT_KEYS <= set(report)
    assert report["queries"] == 14
    assert 0.8 <= report["top1_accuracy"] <= report["top5_accuracy"] <= 1.0
    assert report["top1_accuracy"] <= report["mrr"] <= 1.0
    assert 0 < report["latency_ms_p50"] <= report["latency_ms_p99"]
    assert len(report["misses"]) == round((1 - report["top1_accuracy"]) * 14)
    assert report["answers_not_in_index"] == 0


def test_stored_questions_are_found_exactly(small_index, small_pairs):
    report = evaluate(small_index, small_pairs, latency_samples=0)
    assert report["top1_accuracy"] == report["mrr"] == 1.0
    assert "latency_ms_p50" not in report


def test_answer_ids_count_as_correct_and_unknown_answers_are_reported(small_index):
    reworded = QAPair("ship-1", "how long is shipping", "Shipping: 3 to 5 days (reworded).")
    unknown = QAPair("x", "do you sell cars", "No, we do not sell cars.")
    report = evaluate(small_index, [reworded, unknown], latency_samples=0)
    assert report["top1_accuracy"] == 0.5
    assert report["answers_not_in_index"] == 2
    assert report["misses"][0]["question"] == "do you sell cars"
