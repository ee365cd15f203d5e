"""Per-message metrics and one structured JSON log line per message, by wrapping Rasa's MessageProcessor.

`install()` (idempotent; called when the metrics channel is built, before the
model loads) wraps, keeping their behaviour and signatures:
- `MessageProcessor.handle_message`: total latency, messages by channel, errors,
  and the log line (conversation id, channel, intent, confidence, latency,
  model id; the message text only with KEFU_LOG_TEXT=1, for debugging);
- `parse_message`: NLU latency, intent, confidence, fallback / out-of-scope,
  the knowledge-base decision (only for customer messages, not `/model/parse`);
- `_predict_next_with_tracker`: policy latency (each prediction);
- `_run_action`: action latency, outcome, handoffs;
- `__init__`: the served model's id (kefu_model_info);
- `rasa.core.agent._load_and_set_updated_model`: model-server loads, ok or failed.
Everything is measured around Rasa's own calls; a metrics error never reaches a customer.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import rasa.core.agent as rasa_agent
import structlog
from rasa.core.processor import MessageProcessor

from bot import metrics
from kefu.core.payloads import HANDOFF_ACTION, KB_KEY, NLU_FALLBACK, OUT_OF_SCOPE

logger = logging.getLogger(__name__)
_current: contextvars.ContextVar[Optional[Dict[str, Any]]] = contextvars.ContextVar("kefu_message", default=None)
_installed = False


class _Stderr:
    """Whatever sys.stderr is when a line is written (a test capture, a redirect)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def json_logger() -> Any:
    """structlog writing one JSON object per line to stderr (independent of Rasa's own logging set-up)."""
    return structlog.wrap_logger(
        structlog.PrintLogger(file=_Stderr()),
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(ensure_ascii=False)],
    )


log = json_logger()


def log_text_enabled() -> bool:
    return os.environ.get("KEFU_LOG_TEXT", "").lower() in ("1", "true", "yes")


def _safely(record, *args) -> None:
    try:
        record(*args)
    except Exception:  # noqa: BLE001 - metrics never break a conversation
        logger.exception("observability: could not record a metric")


def record_parse(state: Dict[str, Any], parse_data: Dict[str, Any], seconds: float) -> None:
    metrics.STAGE_SECONDS.labels("nlu").observe(seconds)
    intent = (parse_data.get("intent") or {}).get("name") or "none"
    confidence = float((parse_data.get("intent") or {}).get("confidence") or 0.0)
    state.update(intent=intent, confidence=round(confidence, 4), nlu_ms=round(seconds * 1000, 1))
    metrics.INTENTS.labels(intent).inc()
    metrics.CONFIDENCE.observe(confidence)
    outcome = "fallback" if intent == NLU_FALLBACK else "out_of_scope" if intent == OUT_OF_SCOPE else "intent"
    metrics.NLU_OUTCOMES.labels(outcome).inc()
    kb = parse_data.get(KB_KEY)
    match = kb.get("match") if isinstance(kb, dict) else None
    metrics.KB_DECISIONS.labels(match or "none").inc()
    if match:
        state["kb"] = match


def record_action(state: Optional[Dict[str, Any]], name: str, seconds: float, ok: bool) -> None:
    metrics.STAGE_SECONDS.labels("action").observe(seconds)
    metrics.ACTIONS.labels(name, "ok" if ok else "error").inc()
    if state is not None:
        state.setdefault("actions", []).append(name)
        if name == HANDOFF_ACTION:
            metrics.HANDOFFS.labels(state.get("channel", "unknown")).inc()


def record_model(processor: MessageProcessor) -> None:
    model_id = str(getattr(processor.model_metadata, "model_id", "") or "")
    metrics.MODEL_INFO.clear()
    metrics.MODEL_INFO.labels(model_id, Path(str(processor.model_filename)).name).set(1)
    metrics.MODEL_LOADED_AT.set_to_current_time()
    log.info("kefu.model.loaded", model_id=model_id, model_file=Path(str(processor.model_filename)).name)


def _wrap_handle_message(original):
    @functools.wraps(original)
    async def handle_message(self, message, *args, **kwargs):
        channel = message.input_channel or "unknown"
        state: Dict[str, Any] = {"channel": channel}
        token = _current.set(state)
        started = time.perf_counter()
        ok = False
        try:
            result = await original(self, message, *args, **kwargs)
            ok = True
            return result
        finally:
            _current.reset(token)
            seconds = time.perf_counter() - started
            _safely(_finish, self, message, state, seconds, ok)

    return handle_message


def _finish(processor: MessageProcessor, message: Any, state: Dict[str, Any], seconds: float, ok: bool) -> None:
    channel = state["channel"]
    metrics.MESSAGES.labels(channel).inc()
    metrics.STAGE_SECONDS.labels("total").observe(seconds)
    if not ok:
        metrics.ERRORS.labels(channel).inc()
    fields = dict(state, conversation_id=message.sender_id, latency_ms=round(seconds * 1000, 1),
                  model_id=getattr(processor.model_metadata, "model_id", None), ok=ok)
    if log_text_enabled():
        fields["text"] = message.text
    (log.info if ok else log.error)("kefu.message", **fields)


def _wrap_parse_message(original):
    @functools.wraps(original)
    async def parse_message(self, message, *args, **kwargs):
        started = time.perf_counter()
        parse_data = await original(self, message, *args, **kwargs)
        state = _current.get()
        if state is not None and "intent" not in state:
            _safely(record_parse, state, parse_data, time.perf_counter() - started)
        return parse_data

    return parse_message


def _wrap_predict(original):
    @functools.wraps(original)
    def _predict_next_with_tracker(self, tracker, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, tracker, *args, **kwargs)
        finally:
            _safely(metrics.STAGE_SECONDS.labels("policy").observe, time.perf_counter() - started)

    return _predict_next_with_tracker


def _wrap_run_action(original):
    @functools.wraps(original)
    async def _run_action(self, action, *args, **kwargs):
        started = time.perf_counter()
        ok = False
        try:
            result = await original(self, action, *args, **kwargs)
            ok = True
            return result
        finally:
            _safely(record_action, _current.get(), action.name(), time.perf_counter() - started, ok)

    return _run_action


def _wrap_init(original):
    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        _safely(record_model, self)

    return __init__


def _wrap_model_load(original):
    @functools.wraps(original)
    def _load_and_set_updated_model(*args, **kwargs):
        try:
            result = original(*args, **kwargs)
        except Exception:
            metrics.MODEL_LOADS.labels("failed").inc()
            log.error("kefu.model.refused", reason="the archive from the model server did not load; the previous model stays")
            raise
        metrics.MODEL_LOADS.labels("ok").inc()
        fingerprint = args[2] if len(args) > 2 else kwargs.get("fingerprint")
        metrics.MODEL_FINGERPRINT.clear()
        metrics.MODEL_FINGERPRINT.labels(str(fingerprint)).set(1)
        log.info("kefu.model.pulled", fingerprint=str(fingerprint))
        return result

    return _load_and_set_updated_model


def install() -> None:
    """Wraps Rasa's processor once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    for outcome in ("intent", "fallback", "out_of_scope"):  # every rate panel has its series from the start
        metrics.NLU_OUTCOMES.labels(outcome)
    for match in ("high", "low", "none"):
        metrics.KB_DECISIONS.labels(match)
    for outcome in ("ok", "failed"):
        metrics.MODEL_LOADS.labels(outcome)
    MessageProcessor.handle_message = _wrap_handle_message(MessageProcessor.handle_message)
    MessageProcessor.parse_message = _wrap_parse_message(MessageProcessor.parse_message)
    MessageProcessor._predict_next_with_tracker = _wrap_predict(MessageProcessor._predict_next_with_tracker)
    MessageProcessor._run_action = _wrap_run_action(MessageProcessor._run_action)
    MessageProcessor.__init__ = _wrap_init(MessageProcessor.__init__)
    rasa_agent._load_and_set_updated_model = _wrap_model_load(rasa_agent._load_and_set_updated_model)
