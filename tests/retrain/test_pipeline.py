"""The nightly retrain end to end on a tiny project: real `rasa train`, `rasa test`, Rasa server.

One module-scoped story, in order: a deliberately weak champion is served by a
live bot; scripted customers talk to it (and a human agent answers a handed-off
customer through Rasa's HTTP API); a first run queues what it was unsure about,
proposes a new intent and keeps the agent's answer; a support lead labels the
queue; the second run continues training from the champion, passes the gate,
is promoted and the running server swaps to it; wrong labels are refused before
training, and with that check off they make a worse challenger that is refused; a run killed during training leaves the champion
serving and the next run cleans up; two runs never overlap; rollback restores
the previous model.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from retrain.registry import sha256
from tests.live_bot import LiveBot

HERE = Path(__file__).parent
KEFU = str(Path(sys.executable).with_name("kefu"))
RASA = str(Path(sys.executable).with_name("rasa"))

# Customers asking about their order in words the weak champion never saw.
ORDER_QUESTIONS = [
    "where is my parcel", "has my package been dispatched", "when does my delivery come", "my shipment is late",
    "track my parcel please", "is my package on its way", "when will my parcel get here", "my delivery still hasn't arrived",
    "can you track my delivery", "where's my shipment", "has my stuff shipped", "status of my parcel",
    "my email is jo.bloggs@example.org, where is my parcel now", "the courier never came, where is the package",
]
PET_QUESTIONS = ["do you sell dog food", "do you have cat food", "do you stock pet food", "any dog treats for sale",
                 "do you sell food for cats", "can i buy puppy food here"]
AGENT_ANSWER = "Hi, this is Anna. Yes, we match any UK retailer's price within 14 days of purchase, call 020 7946 0958."


def kefu(project: Path, *args, env=None, timeout=900):
    return subprocess.run([KEFU, "retrain", "--config", str(project / "retrain.yml"), *args], cwd=project,
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def latest(project: Path) -> dict:
    return json.loads((project / "var/retrain/reports/latest.json").read_text())


def review_rows(project: Path):
    with open(project / "var/retrain/review.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def label(project: Path, intent: str) -> int:
    """The support lead: labels every queued message that asks about an order."""
    path = project / "var/retrain/review.csv"
    rows = review_rows(project)
    labelled = 0
    for row in rows:
        if row["kind"] == "message" and any(w in row["text"] for w in ("parcel", "package", "deliver", "ship", "stuff")):
            row["label"] = intent
            labelled += 1
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return labelled


def parse(bot: LiveBot, text: str) -> str:
    status, body = bot.request("POST", "/model/parse", json.dumps({"text": text}), {"Content-Type": "application/json"})
    assert status == 200, body
    return json.loads(body)["intent"]["name"]


def champion_sha(project: Path) -> str:
    return sha256(project / "models" / "champion.tar.gz")


@pytest.fixture(scope="module", autouse=True)
def this_checkout_first():
    """The subprocesses (kefu, rasa) import this checkout's code, wherever the venv's editable install points."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.resolve().parents[1])] + ([saved] if saved else []))
    # `kefu retrain` tells the live server to load the new champion: with the server's API token.
    saved_token = os.environ.get("KEFU_API_TOKEN")
    os.environ["KEFU_API_TOKEN"] = LiveBot.TOKEN
    yield
    if saved_token is None:
        os.environ.pop("KEFU_API_TOKEN", None)
    else:
        os.environ["KEFU_API_TOKEN"] = saved_token
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain") / "project"
    shutil.copytree(HERE / "tiny_project", root)
    result = subprocess.run([RASA, "train", "--data", "data", "--out", "models", "--fixed-model-name", "weak"],
                            cwd=root, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def bot(project):
    live = LiveBot(project / "models" / "weak.tar.gz", project).start()
    (project / "endpoints.yml").write_text(f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{live.tracker_db}"\n')
    (project / "retrain.yml").write_text(yaml.safe_dump({
        "data": ["data"],
        "gate": {"heldout_nlu": "tests/nlu.yml", "stories": "tests/test_stories.yml",
                 "tolerance": {"intent_accuracy": 0.0, "intent_macro_f1": 0.02, "story_accuracy": 0.0, "action_accuracy": 0.0}},
        "signals": {"pseudo_labels": {"enabled": False}, "review": {"confidence_below": 0.9},
                    "new_intents": {"min_cluster_size": 4, "distance_threshold": 0.6}},
        "training": {"continued_overrides": {"epochs": 8}},
        "server": {"url": live.url},
    }))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def transcripts(bot):
    """Scripted conversations with the running weak champion, and one human agent."""
    for i, text in enumerate(ORDER_QUESTIONS):
        bot.say(f"order-{i}", "hello" if i % 3 == 0 else "hi")
        bot.say(f"order-{i}", text)
        bot.say(f"order-{i}", "thanks")
    for i, text in enumerate(PET_QUESTIONS):
        bot.say(f"pets-{i}", text)
    bot.say("handoff-1", "can I talk to a person please")
    agent = {"event": "bot", "metadata": {"agent": "human"}}
    status, body = bot.request("POST", "/conversations/handoff-1/tracker/events",
                               json.dumps(dict(agent, text="Hello, you're through to a person. How can I help?", timestamp=time.time())),
                               {"Content-Type": "application/json"})
    assert status == 200, body
    bot.say("handoff-1", "do you price match other shops? I'm Laura, order 104233")
    status, body = bot.request("POST", "/conversations/handoff-1/tracker/events",
                               json.dumps(dict(agent, text=AGENT_ANSWER, timestamp=time.time())), {"Content-Type": "application/json"})
    assert status == 200, body
    return bot


def test_first_run_queues_review_proposes_an_intent_and_keeps_agent_answers(project, transcripts):
    result = ok(kefu(project))
    report = latest(project)
    assert report["decision"] == "nothing new to learn", result.stdout
    assert report["intake"]["per_source"]["tracker_store"]["conversations"] == len(ORDER_QUESTIONS) + len(PET_QUESTIONS) + 1
    assert report["intake"]["redacted"].get("email") == 1

    rows = review_rows(project)
    queued = {r["text"] for r in rows if r["kind"] == "message"}
    assert "where is my parcel" in queued or "status of my parcel" in queued
    assert "my email is customer@example.com, where is my parcel now" in queued
    assert not any("jo.bloggs" in r["text"] for r in rows)
    priorities = [float(r["priority"]) for r in rows if r["kind"] == "message"]
    assert priorities == sorted(priorities, reverse=True)
    candidates = [r["examples"] for r in rows if r["kind"] == "candidate_intent"]
    pets = [c for c in candidates if sum(w in c for w in ("dog", "cat", "pet", "puppy")) >= 3]
    assert pets, candidates
    assert not any(w in pets[0] for w in ("parcel", "package", "deliver")), pets[0]

    qa = list(csv.DictReader(open(project / "var/retrain/learned/qa_handoffs.csv", newline="")))
    assert len(qa) == 1
    assert qa[0]["question"].startswith("do you price match other shops?")
    assert "Anna" not in qa[0]["answer"] and "7946" not in qa[0]["answer"] and "14 days" in qa[0]["answer"]
    assert "Laura" not in qa[0]["question"] and "104233" not in qa[0]["question"]

    # Nothing new since: the watermark holds, the next run reads no conversation.
    ok(kefu(project, "--dry-run"))
    assert latest(project)["intake"]["conversations"] == 0


def test_labelled_queue_improves_the_weak_model_which_is_promoted_and_served(project, transcripts):
    bot = transcripts
    probe = "has my package been dispatched"
    assert parse(bot, probe) != "order_status"  # the weak champion gets it wrong
    before = champion_sha(project)
    assert label(project, "order_status") >= 8

    result = ok(kefu(project))
    report = latest(project)
    assert report["decision"] == "promoted", result.stdout
    assert report["training"]["mode"] == "continued"
    assert report["review_labels"]["agreement"] >= 0.5 and report["review_labels"]["top_k"] == 1  # 5 intents
    m = report["metrics"]
    assert all(m["challenger"][k] >= m["champion"][k] for k in ("intent_accuracy", "story_accuracy"))
    assert m["challenger"]["story_accuracy"] > m["champion"]["story_accuracy"]  # the weak model fell back on parcels
    assert report["server"]["notified"] is True
    assert champion_sha(project) != before
    # The running server answers with the new model, without a restart.
    assert parse(bot, probe) == "order_status"
    assert bot.alive()
    assert "new champion" in result.stdout and "continued" in result.stdout


def test_a_careless_review_is_refused_before_training(project, transcripts):
    before = champion_sha(project)
    label(project, "thanks")  # a careless review: order questions labelled as thanks
    result = ok(kefu(project))
    report = latest(project)
    assert report["decision"] == "refused", result.stdout
    assert "training" not in report and "metrics" not in report  # no training run spent on it
    found = report["review_labels"]
    assert found["judged"] >= 5 and found["agreement"] < 0.5, found
    assert all(miss["label"] == "thanks" for miss in found["misses"])
    [line] = report["refused_because"]
    assert line.startswith("review_label_agreement") and "relabel them in the review queue" in line
    assert "refused before training" in result.stdout
    assert champion_sha(project) == before


def test_a_worse_challenger_is_refused(project, transcripts):
    """With the label check off, the same careless review trains a challenger that the tests refuse."""
    before = champion_sha(project)
    settings = yaml.safe_load((project / "retrain.yml").read_text())
    settings["gate"]["review_labels_floor"] = None
    (project / "retrain.yml").write_text(yaml.safe_dump(settings))
    result = ok(kefu(project))
    report = latest(project)
    assert report["decision"] == "refused", result.stdout
    assert "review_labels" not in report
    assert any("WORSE" in line for line in report["metrics"]["comparison"])
    assert champion_sha(project) == before
    assert parse(transcripts, "has my package been dispatched") == "order_status"


def test_a_crash_during_training_leaves_the_champion_serving_and_the_next_run_cleans_up(project, transcripts):
    before = champion_sha(project)
    result = kefu(project, env={"KEFU_RETRAIN_FAULT": "crash_during_training"})
    assert result.returncode == -9
    assert list((project / "var/retrain/runs").iterdir())  # the crashed run's folder is still there
    assert champion_sha(project) == before
    assert parse(transcripts, "where is my parcel") == "order_status"

    ok(kefu(project, "--dry-run"))
    report = latest(project)
    assert report["recovered_crashed_runs"]
    assert not list((project / "var/retrain/runs").iterdir())


def test_two_runs_never_overlap(project, transcripts):
    first = subprocess.Popen([KEFU, "retrain", "--config", str(project / "retrain.yml"), "--dry-run"], cwd=project,
                             env=dict(os.environ, KEFU_RETRAIN_FAULT="hold_lock:15"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        lock = project / "var/retrain/retrain.lock"
        while time.monotonic() < deadline and f"pid {first.pid}" not in (lock.read_text() if lock.exists() else ""):
            time.sleep(0.2)
        second = kefu(project, "--dry-run")
        assert second.returncode == 2
        assert "another retrain is running" in second.stderr and f"pid {first.pid}" in second.stderr
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err


def test_rollback_restores_the_previous_champion(project, transcripts):
    state = json.loads((project / "var/retrain/registry/state.json").read_text())
    assert len(state["history"]) == 2
    initial = json.loads((project / "var/retrain/registry" / state["history"][0] / "metrics.json").read_text())["sha256"]
    result = ok(kefu(project, "rollback"))
    assert "reloaded" in result.stdout
    assert champion_sha(project) == initial
    assert parse(transcripts, "has my package been dispatched") != "order_status"
    again = kefu(project, "rollback")
    assert again.returncode == 2 and "no earlier model" in again.stderr
