"""bot.speedups: Rasa's check of the action server's answers accepts and refuses exactly what it did before."""

from __future__ import annotations

import pytest
from jsonschema import SchemaError, ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot import speedups

ANSWERS = {
    "valid": {"events": [{"event": "slot", "name": "order_number", "value": "104233"}],
              "responses": [{"text": "Your order has shipped."}]},
    "no events": {"responses": []},
    "responses not a list": {"events": [], "responses": "Your order has shipped."},
    "unknown event": {"events": [{"event": "no_such_event"}], "responses": []},
    "slot without a name": {"events": [{"event": "slot", "value": 1}], "responses": []},
}


def outcome(action: RemoteAction, answer) -> str:
    try:
        return str(action._validate_action_result(answer))
    except ValidationError as e:
        return e.message


def test_the_same_answers_pass_and_fail_with_the_same_message(monkeypatch):
    action = RemoteAction("action_order_status", EndpointConfig("http://127.0.0.1:5055/webhook"))
    before = {name: outcome(action, answer) for name, answer in ANSWERS.items()}
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setattr(speedups, "_installed", False)
    speedups.install()
    speedups.install()  # idempotent
    after = {name: outcome(action, answer) for name, answer in ANSWERS.items()}
    assert after == before
    assert before["valid"] == "True" and "Failed to validate Action server response" in before["responses not a list"]


def test_a_schema_that_is_not_valid_is_still_refused(monkeypatch):
    class Broken(RemoteAction):
        @staticmethod
        def action_response_format_spec():
            return {"type": "no such type"}

    monkeypatch.setattr(RemoteAction, "_validate_action_result", speedups._validate_action_result)
    with pytest.raises(SchemaError):
        Broken("action_x", EndpointConfig("http://127.0.0.1:5055/webhook"))._validate_action_result({})
