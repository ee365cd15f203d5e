"""No acknowledged message only in memory: tracker-store errors fail the request instead of being hidden.

Rasa 3.6 wraps every tracker store in `FailSafeTrackerStore`: when the database
does not answer, `save` writes the conversation to an in-memory store and the
channel still answers 200 (measured: with PostgreSQL restarted mid-load, a
dozen acknowledged messages never reached it, and other replicas could not
see them), and `retrieve` returns None, so the conversation silently restarts.
`install()` makes both raise: the request fails with a 500 for the outage window
(the client or platform retries), and nothing acknowledged is only in memory.

It also installs, in the Rasa server process, the answer to an action server that
is down (a polite message in the customer's language, the conversation kept as it
was) and the refusal of a model whose domain needs actions the action server does
not serve (both below).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from http import HTTPStatus
from pathlib import Path
from typing import List

import rasa.core.agent as rasa_agent
import rasa.server as rasa_server
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction, create_bot_utterance
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import FollowupAction, UserUtteranceReverted
from rasa.shared.exceptions import RasaException

from bot import model_domain
from bot.nlg import in_script, language_of, script_of

logger = logging.getLogger(__name__)
_installed = False


class TrackerStoreUnavailable(RuntimeError):
    """The tracker store did not answer; the message was not stored and is answered with an error."""


def _strict(name: str):
    async def call(self, *args, **kwargs):
        try:
            return await getattr(self._tracker_store, name)(*args, **kwargs)
        except Exception as e:
            logger.error("tracker store %s failed (%s: %s); the request fails instead of being kept only in memory",
                         name, type(e).__name__, e)
            raise TrackerStoreUnavailable(f"tracker store unavailable: {type(e).__name__}") from e

    return functools.wraps(getattr(FailSafeTrackerStore, name))(call)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for name in ("save", "retrieve", "retrieve_full_tracker"):
        setattr(FailSafeTrackerStore, name, _strict(name))
    RemoteAction.run = _remote_run(RemoteAction.run)
    MessageProcessor._run_action = _processor_run_action(MessageProcessor._run_action)
    rasa_server._load_agent = _load_agent(rasa_server._load_agent)
    rasa_agent.Agent.load_model = _agent_load_model(rasa_agent.Agent.load_model)


# ------------------------------------------------------------------ the action server down
#
# Rasa 3.6: when a custom action's HTTP call fails (connection refused, a 502 from
# nginx, a timeout), RemoteAction.run raises RasaException; MessageProcessor._run_action
# logs it, drops the action's events and predicts on: the customer gets silence (REST:
# 200 with []) and a form half-way through keeps an unvalidated slot. Installed here:
# the failing action answers with `utter_action_server_unavailable` (the customer's
# language, through the NLG) and reverts the customer's message (Rasa's own
# UserUtteranceReverted, as its two-stage fallback does: the message stays in the
# tracker, the dialogue state is what it was before it), then listens. When the
# action server is back, the same message (an order number, a question) continues
# the conversation where it was.

POLITE_RESPONSE = "utter_action_server_unavailable"
# Used when the served model's domain predates the response (the texts in domain.yml
# and data/responses_zh.yml are the same; tests/bot/test_faults.py checks it).
POLITE_TEXTS = {
    "en": "Sorry, part of our system isn't responding right now, so I couldn't finish that. "
          "Please send your last message again in a minute or two.",
    "zh": "抱歉，我们这边的系统暂时没有响应，刚才的操作没能完成。请过一两分钟再把您的上一条消息发一次。",
}


class ActionServerUnavailable(RasaException):
    """A custom action could not be run by the action server (down, unreachable, failing)."""

    def __init__(self, action_name: str, cause: BaseException):
        self.action_name = action_name
        self.cause = cause
        super().__init__(f"custom action {action_name} failed: {type(cause).__name__}: {cause}")


def _remote_run(original):
    @functools.wraps(original)
    async def run(self, output_channel, nlg, tracker, domain):
        try:
            return await original(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise  # the action chose not to run: Rasa lets another policy predict
        except Exception as e:  # noqa: BLE001 - any failure of the call: refused, 5xx, timeout, bad answer
            raise ActionServerUnavailable(self.name(), e) from e

    return run


async def polite_events(action_name: str, nlg, tracker, output_channel) -> List:
    """The apology in the customer's language, the customer's message reverted, then listen."""
    message = None
    try:
        message = await nlg.generate(POLITE_RESPONSE, tracker, output_channel.name())
    except Exception:  # noqa: BLE001 - an NLG problem must not turn the apology into silence
        logger.exception("could not generate %s", POLITE_RESPONSE)
    if not message or not message.get("text"):
        message = in_script({"text": POLITE_TEXTS["zh" if language_of(tracker) == "zh" else "en"]}, script_of(tracker))
    message = dict(message, utter_action=POLITE_RESPONSE)
    return [create_bot_utterance(message), UserUtteranceReverted(), FollowupAction(ACTION_LISTEN_NAME)]


class _Guarded:
    """The predicted action, whose `run` answers politely when the action server cannot run it."""

    def __init__(self, action):
        self._action = action

    def __getattr__(self, name):
        return getattr(self._action, name)

    async def run(self, output_channel, nlg, tracker, domain):
        try:
            return await self._action.run(output_channel, nlg, tracker, domain)
        except ActionServerUnavailable as e:
            logger.error("the action server could not run %s (while running %s): %s; the customer is asked to send "
                         "the message again, the conversation state is kept", e.action_name, self._action.name(), e.cause)
            return await polite_events(e.action_name, nlg, tracker, output_channel)


def _processor_run_action(original):
    @functools.wraps(original)
    async def _run_action(self, action, *args, **kwargs):
        return await original(self, _Guarded(action), *args, **kwargs)

    return _run_action


# ------------------------------------------------------------- a model of another domain
#
# A replica given a model whose domain needs custom actions its action server does not
# serve keeps the model it has (bot/model_domain.py). PUT /model answers 409 with the
# reason; a model-server pull is refused like a corrupt archive (the previous model stays).

_served_a_model = False


def _load_agent(original):
    @functools.wraps(original)
    async def load(model_path=None, model_server=None, remote_storage=None, endpoints=None, **kwargs):
        action = getattr(endpoints, "action", None) if endpoints else None
        if model_path and action is not None and getattr(action, "url", None) and os.path.exists(model_path):
            from rasa.model import get_local_model
            from rasa.server import ErrorResponse

            try:
                result = await asyncio.to_thread(model_domain.check, Path(get_local_model(model_path)), action.url)
            except Exception as e:  # noqa: BLE001 - no model there: Rasa's own loading reports it
                logger.warning("could not check the domain of %s: %s", model_path, e)
            else:
                if result.missing:
                    logger.error("refused model %s: %s", model_path, result.reason())
                    raise ErrorResponse(HTTPStatus.CONFLICT, "ModelDomainMismatch", result.reason(),
                                        {"parameter": "model_file", "in": "body", "missing_actions": result.missing})
        return await original(model_path=model_path, model_server=model_server, remote_storage=remote_storage,
                              endpoints=endpoints, **kwargs)

    return load


def _agent_load_model(original):
    @functools.wraps(original)
    def load_model(self, model_path, fingerprint=None):
        global _served_a_model
        action = getattr(self, "action_endpoint", None)
        if action is not None and getattr(action, "url", None):
            from rasa.model import get_local_model

            try:
                result = model_domain.check(Path(get_local_model(str(model_path))), action.url)
            except Exception:  # noqa: BLE001 - no model there: Rasa's own loading says why
                result = None
            if result is not None and result.missing:
                if _served_a_model:
                    raise model_domain.ModelDomainMismatch(f"refused; the previous model keeps serving: {result.reason()}")
                logger.error("serving it anyway (no previous model in this process): %s", result.reason())
        original(self, model_path, fingerprint)
        _served_a_model = True

    return load_model
