"""Personal data never reaches training data: measured on the labelled sample, and the forms scrubadub misses."""

from pathlib import Path

import pytest

from retrain.redact import PLACEHOLDER, evaluate_sample, redact

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "pii_sample.yml"


def test_recall_and_precision_on_the_labelled_sample():
    report = evaluate_sample(SAMPLE)
    report.pop("_missed")
    for kind in ("email", "credit_card", "order_number"):
        assert report[kind]["recall"] == 1.0, report
    assert report["phone"]["recall"] >= 0.85 and report["name"]["recall"] >= 0.8, report
    for kind, r in report.items():
        assert r["precision"] is None or r["precision"] >= 0.85, (kind, r)


@pytest.mark.parametrize("text, leaked, expected", [
    ("my card 4111 1111 1111 1111 was declined", "4111", "my card 0000 0000 0000 0000 was declined"),
    ("where is #583920", "583920", "where is #000000"),
    ("contact me at maria.garcia@company.org", "garcia", "contact customer@example.com"),
    ("my name is Wojciech, account locked", "Wojciech", "my name is Alex, account locked"),
])
def test_surrogates_keep_the_shape_and_drop_the_value(text, leaked, expected):
    redacted, counts = redact(text)
    assert leaked not in redacted and sum(counts.values()) == 1
    assert redacted == expected


def test_placeholders_and_text_without_personal_data():
    assert redact("call 415-555-0199 about 104233", PLACEHOLDER)[0] == "call [PHONE] about [ORDER_NUMBER]"
    for clean in ("I am stuck on the payment page", "the jacket is size 42 and cost 120", "do you ship to Canada?"):
        assert redact(clean) == (clean, {})
