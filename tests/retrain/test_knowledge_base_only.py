"""A night whose intent classifier alone fails the gate still ships its knowledge base: the challenger's archive with
the champion's classifier, judged by the same gate (retrain/pipeline.py `_knowledge_base_only`)."""

from __future__ import annotations

import asyncio
import csv
import io
import tarfile
from pathlib import Path

import pytest

from retrain import gate
from retrain.config import GateConfig, RetrainConfig
from retrain.train_candidate import with_champion_classifier
from retrieval import QAPair
from tests.retrain.test_gate_new_entries import ROOT, with_rows

CLASSIFIER = "components/train_bot.components.TransformerIntentClassifier2"
KB = "components/train_bot.components.FaissAnswerRetriever4"


def archive(path: Path, files: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, body in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(body)
            tar.addfile(member, io.BytesIO(body))
    return path


def contents(path: Path) -> dict:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_the_champions_classifier_replaces_the_challengers_and_nothing_else_changes(tmp_path):
    champion = archive(tmp_path / "champion.tar.gz", {
        "metadata.json": b"champion", f"{CLASSIFIER}/model.onnx": b"champion weights", f"{CLASSIFIER}/manifest.json": b"c",
        f"{KB}/pairs.jsonl": b"old rows"})
    challenger = archive(tmp_path / "challenger.tar.gz", {
        "metadata.json": b"challenger", f"{CLASSIFIER}/model.onnx": b"challenger weights", f"{CLASSIFIER}/extra.bin": b"x",
        f"{KB}/pairs.jsonl": b"old rows and the desk's", "components/train_TEDPolicy5/ted.bin": b"policy"})
    out, why = with_champion_classifier(challenger, champion, tmp_path / "kb-only.tar.gz")
    assert out == tmp_path / "kb-only.tar.gz" and "TransformerIntentClassifier2" in why
    assert contents(out) == {
        "metadata.json": b"challenger", f"{CLASSIFIER}/model.onnx": b"champion weights", f"{CLASSIFIER}/manifest.json": b"c",
        f"{KB}/pairs.jsonl": b"old rows and the desk's", "components/train_TEDPolicy5/ted.bin": b"policy"}
    assert not list(tmp_path.glob("*.partial"))


def test_archives_of_other_pipelines_are_not_mixed(tmp_path):
    champion = archive(tmp_path / "champion.tar.gz", {f"{CLASSIFIER}/model.onnx": b"a"})
    challenger = archive(tmp_path / "challenger.tar.gz", {
        "components/train_bot.components.TransformerIntentClassifier3/model.onnx": b"b"})
    out, why = with_champion_classifier(challenger, champion, tmp_path / "kb-only.tar.gz")
    assert out is None and "do not line up" in why and "Classifier2" in why and "Classifier3" in why
    assert not (tmp_path / "kb-only.tar.gz").exists()


def metrics(**changes) -> dict:
    return {"intent_accuracy": 0.935, "intent_macro_f1": 0.95, "story_accuracy": 0.96, "action_accuracy": 0.99,
            "kb_answer_precision": 0.92} | changes


@pytest.mark.parametrize("challenger, only_intents", [
    (metrics(intent_accuracy=0.928, kb_answer_precision=0.95), True),           # night 1b of the learning round
    (metrics(intent_accuracy=0.928, intent_macro_f1=0.93), True),
    (metrics(intent_accuracy=0.928, story_accuracy=0.9), False),                 # the dialogue got worse too
    (metrics(intent_accuracy=0.928, kb_answer_precision=0.80), False),           # so did the knowledge base
    (metrics(), False),                                                          # nothing worse: promoted whole
])
def test_only_a_worse_intent_classifier_lets_the_knowledge_base_ship_alone(challenger, only_intents):
    config = GateConfig()
    promote, reasons = gate.decide(metrics(), challenger, config)
    assert gate.only_intents_worse(reasons) is only_intents
    assert promote is (challenger == metrics())


@pytest.mark.slow
def test_a_real_archive_with_the_champions_classifier_loads_and_keeps_the_nights_rows(model, tmp_path):
    with open(ROOT / "tests/data/qa_paraphrases.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[::12]
    added = [QAPair(f"desk-{i}", r["question"], r["answer"]) for i, r in enumerate(rows)]
    with_rows(model, tmp_path / "challenger.tar.gz", added)
    out, _ = with_champion_classifier(tmp_path / "challenger.tar.gz", model, tmp_path / "kb-only.tar.gz")
    config = RetrainConfig.from_dict({"project": str(ROOT)})
    found = gate.new_entry_metrics(config, model, out, tmp_path / "entries")
    assert found["kb_new_rows"] == len(added) and found[gate.KB_NEW_ENTRIES] >= 0.8, found

    # Rasa serves such an archive (here the served model's own, rebuilt around its classifier).
    from rasa.core.agent import Agent

    out, _ = with_champion_classifier(model, model, tmp_path / "rebuilt.tar.gz")
    agent = Agent.load(str(out))
    parsed = asyncio.run(agent.parse_message("where is my order 104233"))
    assert parsed["intent"]["name"] == "order_status", parsed["intent"]
