"""Metrics recorded per message, the retrain collector, and log lines without the customer's text."""

from __future__ import annotations

import json
from types import SimpleNamespace

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from bot import observability
from bot.retrain_metrics import RetrainCollector


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_parse_records_intent_confidence_outcome_and_kb():
    before = (value("kefu_nlu_outcomes_total", outcome="fallback"), value("kefu_kb_decisions_total", match="high"),
              value("kefu_intent_confidence_count"), value("kefu_stage_seconds_count", stage="nlu"))
    state = {"channel": "rest"}
    observability.record_parse(state, {"intent": {"name": "nlu_fallback", "confidence": 0.31}, "kb": {"match": "high"}}, 0.012)
    after = (value("kefu_nlu_outcomes_total", outcome="fallback"), value("kefu_kb_decisions_total", match="high"),
             value("kefu_intent_confidence_count"), value("kefu_stage_seconds_count", stage="nlu"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1, 1]
    assert state["intent"] == "nlu_fallback" and state["kb"] == "high"


def test_handoff_action_counts_per_channel():
    before = value("kefu_handoffs_total", channel="slack")
    observability.record_action({"channel": "slack"}, "action_handoff_to_human", 0.05, True)
    assert value("kefu_handoffs_total", channel="slack") == before + 1
    assert value("kefu_actions_total", action="action_handoff_to_human", outcome="ok") >= 1


def test_the_log_line_is_json_without_the_text_unless_debug(capsys, monkeypatch):
    processor = SimpleNamespace(model_metadata=SimpleNamespace(model_id="m-1"))
    message = SimpleNamespace(sender_id="conv-9", text="my card number is 4111 1111")
    monkeypatch.delenv("KEFU_LOG_TEXT", raising=False)
    observability._finish(processor, message, {"channel": "rest", "intent": "greet"}, 0.2, True)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "kefu.message" and line["conversation_id"] == "conv-9" and line["model_id"] == "m-1"
    assert line["latency_ms"] == 200.0 and "4111" not in json.dumps(line)
    monkeypatch.setenv("KEFU_LOG_TEXT", "1")
    observability._finish(processor, message, {"channel": "rest"}, 0.2, True)
    assert "4111" in capsys.readouterr().err


def test_retrain_outcomes_come_from_the_reports(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    for run_id, decision in (("r1", "promoted"), ("r2", "refused"), ("r3", "promoted")):
        (reports / f"{run_id}.json").write_text(json.dumps({"decision": decision}))
    (reports / "latest.json").write_text(json.dumps({"decision": "promoted", "started_at": "2026-01-01T00:00:00+00:00", "seconds": 42}))
    registry = CollectorRegistry()
    registry.register(RetrainCollector(tmp_path))
    text = generate_latest(registry).decode()
    assert 'kefu_retrain_runs{decision="promoted"} 2.0' in text and 'kefu_retrain_runs{decision="refused"} 1.0' in text
    assert "kefu_retrain_last_run_duration_seconds 42.0" in text
