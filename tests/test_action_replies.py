"""Action-server replies are still checked against Rasa's schema, faster (rasa_patches/action_replies.py)."""

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

import components  # noqa: F401  (what the Rasa server imports with the model)
from rasa_patches import action_replies

ACTION = RemoteAction("action_explain_service", None)


def test_the_rasa_server_uses_the_prebuilt_validator():
    assert RemoteAction._validate_action_result is action_replies._validate_action_result


def test_a_valid_reply_passes():
    reply = {
        "events": [{"event": "slot", "name": "service", "value": "digital_id"}],
        "responses": [{"text": "١. افتح تطبيق أبشر"}],
    }
    assert ACTION._validate_action_result(reply) is True
    assert ACTION._validate_action_result({"events": [], "responses": []}) is True


@pytest.mark.parametrize(
    "reply",
    [
        {"events": "not a list"},
        {"events": [{"event": "no_such_event"}]},
        {"responses": ["not an object"]},
    ],
)
def test_an_invalid_reply_fails_as_rasa_makes_it_fail(reply):
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        ACTION._validate_action_result(reply)
