from __future__ import annotations

import json

import pytest

from retrieval import QADataError, load_qa
from retrieval.qa import stable_id


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_with_all_columns(small_csv):
    pairs = load_qa([small_csv])
    assert len(pairs) == 30
    first = pairs[0]
    assert first.id == "ship-1"
    assert first.question == "How long does shipping take?"
    assert first.answer.startswith("Standard shipping takes 3-5 business days")
    assert first.source == "https://help.example.com/shipping"
    assert first.tags == ["shipping", "delivery"]
    assert first.timestamp == "2024-03-01T10:00:00Z"
    # `|` separates tags too; empty optional cells become None / [].
    third = pairs[2]
    assert third.tags == ["shipping", "delivery"] and third.timestamp is None


def test_csv_with_only_question_and_answer_gets_stable_ids(tmp_path):
    path = write(tmp_path / "qa.csv", "Question , ANSWER\nWhere is my order?,\"Check Orders, then Track.\"\nHi,Hello\n")
    pairs = load_qa([path])
    assert [(p.question, p.answer) for p in pairs] == [("Where is my order?", "Check Orders, then Track."), ("Hi", "Hello")]
    assert pairs[0].id == stable_id("Where is my order?", "Check Orders, then Track.")
    assert pairs[0].id != pairs[1].id
    assert [p.id for p in load_qa([path])] == [p.id for p in pairs]
    assert pairs[0].source is None and pairs[0].tags == [] and pairs[0].timestamp is None


def test_csv_with_bom_crlf_and_multiline_answer(tmp_path):
    path = write(tmp_path / "qa.csv", "\ufeffquestion,answer\r\nReturns?,\"Line one\r\nline two\"\r\n\r\nHours?,9-5\r\n")
    pairs = load_qa([path])
    assert [p.question for p in pairs] == ["Returns?", "Hours?"]
    assert "line two" in pairs[0].answer


def test_jsonl(tmp_path):
    lines = [
        {"question": "Where is my order?", "answer": "Track it under Orders.", "tags": ["orders", "shipping"], "id": 7},
        {},
        {"question": "Refund?", "answer": "5-7 days.", "tags": "refunds|money", "timestamp": "2024-01-02", "source": "kb"},
    ]
    path = write(tmp_path / "qa.jsonl", "\n".join(json.dumps(x) if x else "" for x in lines) + "\n")
    pairs = load_qa([path])
    assert [p.id for p in pairs][0] == "7"
    assert pairs[0].tags == ["orders", "shipping"]
    assert pairs[1].tags == ["refunds", "money"] and pairs[1].source == "kb" and pairs[1].timestamp == "2024-01-02"


def test_rasa_retrieval_intents_pair_examples_with_responses(tmp_path):
    nlu = write(tmp_path / "nlu.yml", """version: "3.1"
nlu:
- intent: faq/ask_shipping_time
  examples: |
    - how long does shipping take
    - when will my [parcel](item) arrive
- intent: faq/ask_returns
  examples: |
    - can I return an item
- intent: greet
  examples: |
    - hello
""")
    domain = write(tmp_path / "domain.yml", """version: "3.1"
responses:
  utter_faq/ask_shipping_time:
  - text: Shipping takes 3-5 business days.
  - text: About 3-5 business days.
  utter_faq/ask_returns:
  - text: You can return items within 30 days.
  utter_greet:
  - text: Hi!
""")
    pairs = load_qa([nlu, domain])
    assert [(p.id, p.question, p.answer) for p in pairs] == [
        ("faq/ask_shipping_time", "how long does shipping take", "Shipping takes 3-5 business days."),
        ("faq/ask_shipping_time", "when will my parcel arrive", "Shipping takes 3-5 business days."),
        ("faq/ask_returns", "can I return an item", "You can return items within 30 days."),
    ]


def test_rasa_retrieval_intent_without_response_is_an_error(tmp_path):
    nlu = write(tmp_path / "nlu.yml", 'version: "3.1"\nnlu:\n- intent: faq/ask_gift\n  examples: |\n    - gift wrap?\n')
    with pytest.raises(QADataError, match=r"faq/ask_gift has no text response utter_faq/ask_gift.*pass the domain"):
        load_qa([nlu])


@pytest.mark.parametrize(
    "content, message",
    [
        ("question\nWhere?\n", r"qa.csv, line 1: missing column\(s\) answer in the header row \(found: question\)"),
        ("question,answer\nWhere?,Here\nWhen?,Now,extra\n", r"qa.csv, line 3: expected 2 fields .*found 3"),
        ("question,answer\nWhere?,Here\n\nWhen?,  \n", r"qa.csv, line 4: empty answer"),
        ("question,answer\n  ,Here\n", r"qa.csv, line 2: empty question"),
        ("question,answer,timestamp\nWhere?,Here,yesterday\n", r"qa.csv, line 2: timestamp 'yesterday' is not ISO 8601"),
        ('question,answer\nWhere?,"Here\n', r"qa.csv, line \d: malformed CSV"),
        ("question,answer,answer\nWhere?,Here,There\n", r"column\(s\) named twice: answer"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path, content, message):
    path = write(tmp_path / "qa.csv", content)
    with pytest.raises(QADataError, match=message):
        load_qa([path])


def test_non_utf8_file_names_the_line(tmp_path):
    path = write(tmp_path / "qa.csv", "question,answer\nWhere?,Here\nCafé?,Oui\n", encoding="latin-1")
    with pytest.raises(QADataError, match=r"qa.csv, line 3: not UTF-8 text .*save the file as UTF-8"):
        load_qa([path])


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"qa.jsonl, line 2: invalid JSON"),
        ("[1, 2]", r"qa.jsonl, line 2: expected a JSON object, found list"),
        ('{"question": "Where?"}', r"qa.jsonl, line 2: missing key\(s\) answer"),
        ('{"question": "Where?", "answer": 42}', r"qa.jsonl, line 2: answer must be text"),
        ('{"question": "Where?", "answer": "Here", "tags": [1]}', r"qa.jsonl, line 2: tags must be text"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "qa.jsonl", '{"question": "Hi?", "answer": "Hello"}\n' + line + "\n")
    with pytest.raises(QADataError, match=message):
        load_qa([path])


def test_missing_path_unsupported_type_and_empty_data(tmp_path):
    with pytest.raises(QADataError, match="Q&A data not found"):
        load_qa([tmp_path / "nope.csv"])
    with pytest.raises(QADataError, match=r"unsupported Q&A file type '.txt'"):
        load_qa([write(tmp_path / "qa.txt", "hi")])
    with pytest.raises(QADataError, match="No Q&A pairs found"):
        load_qa([write(tmp_path / "qa.csv", "question,answer\n")])


def test_directory_loads_every_supported_file(tmp_path, small_csv):
    (tmp_path / "a.csv").write_bytes(small_csv.read_bytes())
    write(tmp_path / "b.jsonl", '{"question": "Hi?", "answer": "Hello"}\n')
    write(tmp_path / "notes.txt", "ignored")
    assert len(load_qa([tmp_path])) == 31
