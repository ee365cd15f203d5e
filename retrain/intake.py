"""Transcripts in: Rasa's SQL tracker store and exported tracker files, newer than the watermark.

The store is the one `endpoints.yml` names (`tracker_store: type: SQL`, SQLite
or PostgreSQL), read with SQLAlchemy through Rasa's own URL builder, so any
database Rasa writes to can be read. Export files are Rasa tracker JSON
(`GET /conversations/{id}/tracker`: one object, or a list of them) or JSON
lines as `rasa export` publishes them (one event per line with `sender_id`, or
one tracker per line).

A conversation with anything new is read whole (a human agent's answer may
follow a handoff from the night before); each turn says whether it is new.

Human agents: a handoff tool writes the agent's replies into the conversation
as `bot` events whose metadata marks them, e.g. with Rasa's HTTP API
`POST /conversations/{id}/tracker/events` and body
`{"event": "bot", "text": "...", "metadata": {"agent": "human"}}`
(key and value set in retrain.yml, `signals.handoff_qa`).

Replies sent through the agent desk carry the agent's id as well
(`desk.delivery.agent_event`: metadata `{"agent": "human", "agent_id": NAME}`).
The desk proposes each of them to a lead as a knowledge-base entry; only what a
lead accepts (or edits) becomes one, written to the curated Q&A data
(`data/qa/desk_answers.csv`). Such turns are marked `via_desk`, and the retrain
does not take them from the transcripts a second time (a rejected answer would
come back).
"""

from __future__ import annotations

import glob
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from kefu.core import atomic
from kefu.core.payloads import HANDOFF_ACTION
from retrain.config import RetrainConfig, RetrainError

logger = logging.getLogger(__name__)


@dataclass
class Turn:
    kind: str                      # "user", "bot", "agent" (a human agent's message), "action" or "resume" (bot handed back)
    text: Optional[str]
    timestamp: float
    new: bool = True
    intent: Optional[str] = None   # as the serving model parsed it
    confidence: float = 0.0
    action: Optional[str] = None
    via_desk: bool = False         # an agent's reply sent through the desk (reviewed there, see above)
    kb_match: Optional[str] = None # the knowledge base's match for a customer message (high, low, none)


# Metadata key of the agent's id, which only the desk's agent replies carry (desk.delivery.agent_event).
DESK_AGENT_ID_KEY = "agent_id"


@dataclass
class Conversation:
    id: str
    source: str
    turns: List[Turn] = field(default_factory=list)

    @property
    def handed_off(self) -> bool:
        return any(t.kind == "action" and t.action == HANDOFF_ACTION for t in self.turns) or any(t.kind == "agent" for t in self.turns)

    def new_user_turns(self) -> List[Turn]:
        return [t for t in self.turns if t.kind == "user" and t.new and t.text]


@dataclass
class IntakeResult:
    conversations: List[Conversation]
    watermarks: Dict[str, float]           # source -> newest event time read
    per_source: Dict[str, Dict[str, int]]  # source -> conversations, new user messages


# ---------------------------------------------------------------- watermark
class Watermark:
    """Newest event time processed per source, kept in a JSON file; written only after a run succeeds."""

    def __init__(self, path: Path):
        self.path = path
        self.values: Dict[str, float] = {}
        if path.exists():
            try:
                self.values = {k: float(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError) as exc:
                raise RetrainError(f"watermark file {path} is corrupt ({exc}); fix or delete it (deleting re-reads all transcripts)") from exc

    def get(self, source: str) -> float:
        return self.values.get(source, 0.0)

    def advance(self, values: Dict[str, float]) -> None:
        for source, ts in values.items():
            self.values[source] = max(self.get(source), ts)
        atomic.write_text(self.path, json.dumps(self.values, indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------- events
def turns_from_events(events: Iterable[Dict[str, Any]], since: float, agent_key: str, agent_value: str) -> List[Turn]:
    turns = []
    for event in events:
        kind = event.get("event")
        ts = float(event.get("timestamp") or 0.0)
        new = ts > since
        if kind == "user":
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            kb = parse.get("kb") if isinstance(parse.get("kb"), dict) else {}
            turns.append(Turn("user", event.get("text"), ts, new, intent.get("name"), float(intent.get("confidence") or 0.0),
                              kb_match=kb.get("match")))
        elif kind == "bot":
            metadata = event.get("metadata") or {}
            who = "agent" if str(metadata.get(agent_key, "")) == agent_value else "bot"
            turns.append(Turn(who, event.get("text"), ts, new, via_desk=who == "agent" and bool(metadata.get(DESK_AGENT_ID_KEY))))
        elif kind == "action" and event.get("name"):
            turns.append(Turn("action", None, ts, new, action=event.get("name")))
        elif kind == "resume":
            turns.append(Turn("resume", None, ts, new))
    return turns


# ------------------------------------------------------------ tracker store
def tracker_store_url(config: RetrainConfig):
    """SQLAlchemy URL of the tracker store in endpoints.yml (Rasa's own URL builder)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.utils.endpoints import read_endpoint_config

    endpoints = config.path(config.endpoints)
    if not endpoints.exists():
        raise RetrainError(f"endpoints file not found: {endpoints}")
    store = read_endpoint_config(str(endpoints), "tracker_store")
    if store is None:
        raise RetrainError(f"{endpoints} has no tracker_store: conversations are kept in memory only, nothing to learn from")
    kind = (store.type or "").lower()
    if kind not in ("sql", "rasa.core.tracker_store.sqltrackerstore"):
        raise RetrainError(f"tracker_store type {store.type!r} is not supported by the retrain intake (use type: SQL, "
                           "or export transcripts with `rasa export` and list the files under intake.export_files)")
    kwargs = dict(store.kwargs)
    dialect = kwargs.get("dialect", "sqlite")
    db = kwargs.get("db", "rasa.db")
    if dialect == "sqlite" and db != ":memory:" and not Path(db).is_absolute():
        db = str(config.path(db))
    return SQLTrackerStore.get_db_url(dialect, store.url or kwargs.get("host"), kwargs.get("port"), db,
                                      kwargs.get("username"), kwargs.get("password"), kwargs.get("login_db"), kwargs.get("query"))


def read_tracker_store(config: RetrainConfig, since: float, agent_key: str, agent_value: str) -> Tuple[List[Conversation], float]:
    import sqlalchemy as sa

    url = tracker_store_url(config)
    if str(url).startswith("sqlite:///") and not Path(str(url)[len("sqlite:///"):]).exists():
        logger.warning("tracker store %s does not exist yet: no conversations", url)
        return [], since
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            if not sa.inspect(db).has_table("events"):
                return [], since
            senders = [r[0] for r in db.execute(sa.text("SELECT DISTINCT sender_id FROM events WHERE timestamp > :t"), {"t": since})]
            newest = since
            conversations = []
            for sender in senders:
                rows = db.execute(sa.text("SELECT data, timestamp FROM events WHERE sender_id = :s ORDER BY timestamp, id"), {"s": sender}).fetchall()
                events = []
                for data, ts in rows:
                    try:
                        events.append(json.loads(data))
                    except (TypeError, ValueError):
                        logger.warning("skipping an unreadable event of conversation %s", sender)
                    newest = max(newest, float(ts or 0))
                conversations.append(Conversation(sender, "tracker_store", turns_from_events(events, since, agent_key, agent_value)))
    except sa.exc.SQLAlchemyError as exc:
        raise RetrainError(f"cannot read the tracker store ({engine.url.render_as_string(hide_password=True)}): {exc}") from exc
    finally:
        engine.dispose()
    return conversations, newest


# ------------------------------------------------------------- export files
def _trackers_in_file(path: Path) -> List[Dict[str, Any]]:
    """Tracker dicts from a tracker JSON file, a list of them, or JSON lines (trackers or broker events)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise RetrainError(f"{path}:{number}: not JSON ({exc})") from exc
    trackers: Dict[str, Dict[str, Any]] = {}
    loose: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for item in items:
        if not isinstance(item, dict) or "sender_id" not in item:
            raise RetrainError(f"{path}: expected Rasa trackers or exported events with a sender_id, found {str(item)[:80]!r}")
        if "events" in item:
            trackers.setdefault(item["sender_id"], {"sender_id": item["sender_id"], "events": []})["events"].extend(item["events"] or [])
        else:
            loose[item["sender_id"]].append(item)
    for sender, events in loose.items():
        trackers.setdefault(sender, {"sender_id": sender, "events": []})["events"].extend(events)
    return list(trackers.values())


def read_export_files(patterns: List[str], config: RetrainConfig, watermark: Watermark, agent_key: str, agent_value: str):
    conversations, newest = [], {}
    for pattern in patterns:
        matches = sorted(glob.glob(str(config.path(pattern))))
        if not matches:
            logger.warning("intake.export_files: nothing matches %s", pattern)
        for name in matches:
            path = Path(name)
            source = f"file:{path.resolve()}"
            since = watermark.get(source)
            latest = since
            for tracker in _trackers_in_file(path):
                events = sorted(tracker["events"], key=lambda e: float(e.get("timestamp") or 0))
                if not any(float(e.get("timestamp") or 0) > since for e in events):
                    continue
                latest = max([latest] + [float(e.get("timestamp") or 0) for e in events])
                conversations.append(Conversation(str(tracker["sender_id"]), source, turns_from_events(events, since, agent_key, agent_value)))
            newest[source] = latest
    return conversations, newest


def read_new_transcripts(config: RetrainConfig, watermark: Watermark) -> IntakeResult:
    qa = config.signals.handoff_qa
    conversations: List[Conversation] = []
    watermarks: Dict[str, float] = {}
    if config.intake.tracker_store:
        found, newest = read_tracker_store(config, watermark.get("tracker_store"), qa.agent_key, qa.agent_value)
        conversations += found
        watermarks["tracker_store"] = newest
    if config.intake.export_files:
        found, newest = read_export_files(config.intake.export_files, config, watermark, qa.agent_key, qa.agent_value)
        conversations += found
        watermarks.update(newest)
    per_source: Dict[str, Dict[str, int]] = defaultdict(lambda: {"conversations": 0, "new_user_messages": 0})
    for c in conversations:
        key = "tracker_store" if c.source == "tracker_store" else "export_files"
        per_source[key]["conversations"] += 1
        per_source[key]["new_user_messages"] += len(c.new_user_turns())
    return IntakeResult(conversations, watermarks, dict(per_source))
