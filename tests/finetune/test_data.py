import pytest

from finetune import DataError, Example, load_nlu_examples
from finetune.data import check_examples, clean_text, continued_split, held_out_examples, split_record, stratified_split


def test_loads_rasa_yaml_with_entities_stripped(tiny_examples):
    intents = {e.intent for e in tiny_examples}
    assert intents == {"greet", "order_status", "reset_password", "thanks"}
    assert Example("status of order 104233", "order_status") in tiny_examples


def test_loads_every_file_of_a_directory(tmp_path, tiny_nlu):
    (tmp_path / "a.yml").write_text(tiny_nlu.read_text())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text('version: "3.1"\nnlu:\n- intent: goodbye\n  examples: |\n    - bye\n    - see you\n')
    examples = load_nlu_examples([tmp_path])
    assert {"goodbye", "greet"} <= {e.intent for e in examples}


def test_broken_yaml_names_the_file(tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n  - oops: [unclosed\n')
    with pytest.raises(DataError, match="broken.yml"):
        load_nlu_examples([bad])


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_nlu_examples([tmp_path / "nope.yml"])


def test_single_intent_cannot_train():
    with pytest.raises(DataError, match="at least two intents"):
        check_examples([Example("hi", "greet"), Example("hello", "greet")])


def test_split_keeps_one_example_intents_in_training():
    examples = [Example(f"hi {i}", "greet") for i in range(10)] + [Example("only one", "rare")]
    train, held_out = stratified_split(examples, 0.2, seed=1)
    assert Example("only one", "rare") in train
    assert len(held_out) == 2 and all(e.intent == "greet" for e in held_out)


def test_a_continued_split_never_validates_on_what_the_model_trained_on():
    """Nights add data and continue from the champion: its training examples stay out of validation."""
    intents = ["greet", "order_status", "refund", "thanks"]
    before = [Example(f"message {i} about {intent}", intent) for intent in intents for i in range(40)]
    added = [Example(f"new message {i} about {intent}", intent) for intent in intents for i in range(15)]
    added += [Example(f"gift wrap question {i}", "gift_wrap") for i in range(5)]
    train_before, held_before = stratified_split(before, 0.25, seed=42)
    record = split_record(train_before, held_before, 0.25, seed=42)
    assert "message 1 about greet" not in str(record)  # hashes, no customer text in the manifest

    train_after, held_after = continued_split(list(reversed(before + added)), record, 0.25, seed=42)
    assert not set(train_before) & set(held_after)
    assert set(held_before) <= set(held_after)
    # new examples are split as a fresh split would split them: a share of each intent, the new one included
    held_new = set(held_after) - set(held_before)
    for intent in intents + ["gift_wrap"]:
        assert any(e.intent == intent for e in held_new)
        assert any(e.intent == intent and e in set(added) for e in train_after)
    assert sorted(train_after + held_after) == sorted(before + added)


def test_a_models_held_out_examples_are_found_again_in_its_data():
    """bench/ood_quantile.py refits a model's calibration on the very messages it was validated on."""
    examples = [Example(f"message {i} about {intent}", intent) for intent in ("greet", "refund") for i in range(20)]
    train, held = stratified_split(examples, 0.2, seed=7)
    record = split_record(train, held, 0.2, seed=7)
    found = held_out_examples(list(reversed(examples)) + [Example("never seen", "greet")], record)
    assert sorted(found) == sorted(held) and len(found) == 8


def test_undecodable_bytes_become_replacement_characters():
    text = b"caf\xe9 order".decode("utf-8", "surrogateescape")
    assert clean_text(text) == "caf\ufffd order"
