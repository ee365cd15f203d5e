"""The `kb` parse-data payload: what the component writes is what the actions read."""

from __future__ import annotations

from kefu.core.payloads import KBCandidate, KBResult


def test_round_trip_and_tolerance_of_old_or_foreign_payloads():
    result = KBResult(match="high", route="answer", p_answer=0.97, intent_before="out_of_scope", answer="Yes, $3.99.",
                      question="gift wrap?", source="faq.csv", id="gift-1", score=0.91,
                      top_k=[KBCandidate("Yes, $3.99.", "gift wrap?", "faq.csv", "gift-1", 0.91)])
    assert KBResult.from_payload(result.to_payload()) == result
    assert KBResult.from_payload(None).match == "none"
    odd = KBResult.from_payload({"match": "maybe", "extra": 1, "top_k": [{"answer": "a"}, "junk"]})
    assert odd.match == "none" and len(odd.top_k) == 1 and odd.top_k[0].answer == "a"
    assert "answer" not in KBResult(intent_before="greet").to_payload()
