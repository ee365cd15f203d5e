"""Per-message savings in Rasa's dialogue path, found by profiling kefu under load (bench/throughput.py --profile).

`install()` (idempotent; called by bot/rasa_server.py before Rasa starts, so every
Sanic worker inherits it) changes how, never what, Rasa computes:

- Rasa checks every answer of the action server with `jsonschema.validate(result,
  schema)` (rasa/core/actions/action.py `RemoteAction._validate_action_result`),
  which first validates the schema itself against JSON Schema's meta-schema: on
  kefu's order-status conversation that was about 20 ms of CPU per message, a third
  of the Rasa server's time. Here the validator is built once per schema and only
  the answer is validated; an invalid answer raises the same `ValidationError` with
  Rasa's message.
"""

from __future__ import annotations

from typing import Any, Dict

_installed = False


_validators: Dict[type, Any] = {}


def _validator(action: Any) -> Any:
    """The validator of the action class's (static) answer schema, checked against the meta-schema once."""
    validator = _validators.get(type(action))
    if validator is None:
        from jsonschema.validators import validator_for

        schema = action.action_response_format_spec()
        cls = validator_for(schema)
        cls.check_schema(schema)  # what jsonschema.validate does on every call
        validator = _validators[type(action)] = cls(schema)
    return validator


def _validate_action_result(self, result: Dict[str, Any]) -> bool:
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_validator(self).iter_errors(result))
    if error is None:
        return True
    assert isinstance(error, ValidationError)
    error.message += (". Failed to validate Action server response from API, make sure your response from the Action "
                      f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions")
    raise error


def install() -> None:
    global _installed
    if _installed:
        return
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result
    _installed = True
