"""Export-file intake, the watermark and the human-agent convention (the tracker store is read in test_pipeline)."""

import json

import pytest

from retrain.config import RetrainConfig, RetrainError
from retrain.intake import Watermark, read_new_transcripts
from retrain.signals import handoff_pairs


def events(sender, start):
    return [
        {"event": "action", "name": "action_session_start", "timestamp": start},
        {"event": "user", "text": "i want a person", "timestamp": start + 1,
         "parse_data": {"intent": {"name": "human_handoff", "confidence": 0.98}}},
        {"event": "action", "name": "action_handoff_to_human", "timestamp": start + 2},
        {"event": "bot", "text": "Hi, how can I help?", "metadata": {"agent": "human"}, "timestamp": start + 3},
        {"event": "user", "text": "can I change the gift wrap message?", "timestamp": start + 4,
         "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.2}}},
        {"event": "bot", "text": "Yes, until the order ships: open the order and edit the gift note.", "metadata": {"agent": "human"}, "timestamp": start + 5},
        {"event": "bot", "text": "Bot reply, not an agent.", "timestamp": start + 6},
    ]


def config(tmp_path, files):
    return RetrainConfig.from_dict({"project": str(tmp_path), "intake": {"tracker_store": False, "export_files": files}})


def test_tracker_json_and_exported_event_lines_are_read_once(tmp_path):
    (tmp_path / "tracker.json").write_text(json.dumps({"sender_id": "a", "events": events("a", 100)}))
    (tmp_path / "export.jsonl").write_text("\n".join(json.dumps(dict(e, sender_id="b")) for e in events("b", 200)))
    cfg = config(tmp_path, ["tracker.json", "*.jsonl"])
    watermark = Watermark(tmp_path / "wm.json")
    found = read_new_transcripts(cfg, watermark)
    assert sorted(c.id for c in found.conversations) == ["a", "b"]
    assert found.per_source["export_files"] == {"conversations": 2, "new_user_messages": 4}
    pairs = handoff_pairs(found.conversations, cfg.signals.handoff_qa)
    assert [(p.question, p.answer[:9]) for p in pairs] == [("can I change the gift wrap message?", "Yes, unti")] * 2

    watermark.advance(found.watermarks)
    assert read_new_transcripts(cfg, Watermark(tmp_path / "wm.json")).conversations == []
    # A new event in a known conversation: the whole conversation comes back, only the new turn is new.
    more = events("b", 200) + [{"event": "user", "text": "and the colour?", "timestamp": 300}]
    (tmp_path / "export.jsonl").write_text("\n".join(json.dumps(dict(e, sender_id="b")) for e in more))
    again = read_new_transcripts(cfg, Watermark(tmp_path / "wm.json"))
    assert [t.text for t in again.conversations[0].new_user_turns()] == ["and the colour?"]


def test_bad_files_are_clear_errors(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"sender_id": "a", "event": "user"}\nnot json\n')
    with pytest.raises(RetrainError, match="bad.jsonl:2"):
        read_new_transcripts(config(tmp_path, ["bad.jsonl"]), Watermark(tmp_path / "wm.json"))
    (tmp_path / "wm.json").write_text("{broken")
    with pytest.raises(RetrainError, match="watermark"):
        Watermark(tmp_path / "wm.json")
