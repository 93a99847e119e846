"""Rasa's check of action-server replies, with the validator built once.

What Rasa does: for every custom action, Rasa 3.6's
`RemoteAction._validate_action_result` calls `jsonschema.validate(reply,
schema)`, which first checks the fixed schema itself against the JSON-Schema
metaschema, every time.

What we do instead: a valid reply is checked by a validator made once from
the same schema; anything else goes to Rasa's own method, so an invalid reply
fails exactly as before, with Rasa's message.

Why: checking the schema was a large share of the Rasa server's CPU per
message (bench/NOTES.md, round 2).

Guarded by: tests/test_action_replies.py — test_the_rasa_server_uses_the_prebuilt_validator
(the method is still there and replaced), test_a_valid_reply_passes and
test_an_invalid_reply_fails_as_rasa_makes_it_fail.
"""

from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction

_SCHEMA = RemoteAction.action_response_format_spec()
# The class jsonschema.validate would pick for this schema (no "$schema": the newest draft).
_VALIDATOR = validator_for(_SCHEMA)(_SCHEMA)
_rasa_validate = RemoteAction._validate_action_result


def _validate_action_result(self: RemoteAction, result: dict) -> bool:
    if _VALIDATOR.is_valid(result):
        return True
    return _rasa_validate(self, result)


def apply() -> None:
    """Replace `RemoteAction._validate_action_result` (once: a second call finds it replaced)."""
    if getattr(RemoteAction._validate_action_result, "__module__", "") != __name__:
        RemoteAction._validate_action_result = _validate_action_result
