"""Rasa's training cache does not hand back a component trained by older kefu code."""

from __future__ import annotations

from bot.components import answer_retriever, intent_classifier
from bot.components.code_version import code_digest
from bot.components.intent_classifier import TransformerIntentClassifier
from tests.retrieval.conftest import FIXTURES


def test_a_changed_source_file_changes_the_digest(tmp_path, monkeypatch):
    package = tmp_path / "kefu_fake_trainer"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "schedule.py").write_text("STEPS = 10\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_digest("kefu_fake_trainer")
    code_digest.cache_clear()
    assert code_digest("kefu_fake_trainer") == before  # same code, same digest
    code_digest.cache_clear()
    (package / "sub" / "schedule.py").write_text("STEPS = 11\n")
    assert code_digest("kefu_fake_trainer") != before


def test_both_components_fingerprint_their_training_code(monkeypatch):
    config = {"qa_files": [str(FIXTURES / "qa_support.csv")]}
    retriever = answer_retriever.FaissAnswerRetriever.fingerprint_addon(config)
    classifier = TransformerIntentClassifier.fingerprint_addon(TransformerIntentClassifier.get_default_config())
    assert classifier == code_digest("finetune", "kefu.core", "bot.components")
    monkeypatch.setattr(answer_retriever, "code_digest", lambda *packages: "upgraded")
    monkeypatch.setattr(intent_classifier, "code_digest", lambda *packages: "upgraded")
    assert answer_retriever.FaissAnswerRetriever.fingerprint_addon(config) != retriever
    assert TransformerIntentClassifier.fingerprint_addon(TransformerIntentClassifier.get_default_config()) != classifier
