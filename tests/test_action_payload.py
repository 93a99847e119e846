"""The action server gets the latest turns only, otherwise exactly Rasa's payload (rasa_patches/action_payload.py)."""

from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

import components  # noqa: F401  (what the Rasa server imports with the model)
from rasa_patches import action_payload

DOMAIN = Domain.load("domain.yml")
ACTION = RemoteAction("action_explain_service", None)


def conversation(turns: int) -> DialogueStateTracker:
    events = [ActionExecuted("action_listen")]
    for i in range(turns):
        events += [
            UserUttered(f"message {i}", {"name": "greet", "confidence": 1.0}),
            SlotSet("service", f"s{i}"),
            ActionExecuted("utter_greet"),
            BotUttered(f"reply {i}"),
            ActionExecuted("action_listen"),
        ]
    return DialogueStateTracker.from_events("someone", events, DOMAIN.slots)


def test_the_rasa_server_uses_the_trimmed_payload():
    assert RemoteAction._action_call_format is action_payload._action_call_format


def test_a_short_conversation_gets_exactly_rasas_payload():
    tracker = conversation(1)  # fewer user messages than USER_TURNS: nothing to leave out
    assert ACTION._action_call_format(tracker, DOMAIN) == action_payload._rasa_call_format(ACTION, tracker, DOMAIN)


def test_a_long_conversation_sends_the_last_two_turns_with_every_slot():
    tracker = conversation(300)
    ours = ACTION._action_call_format(tracker, DOMAIN)
    rasa = action_payload._rasa_call_format(ACTION, tracker, DOMAIN)
    events = ours["tracker"]["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["message 298", "message 299"]
    assert events == rasa["tracker"]["events"][-len(events) :] and len(events) == 10
    # Everything but the events is Rasa's: slots, latest message, loop, the rest of the call.
    assert {k: v for k, v in ours["tracker"].items() if k != "events"} == {
        k: v for k, v in rasa["tracker"].items() if k != "events"
    }
    assert ours["tracker"]["slots"]["service"] == "s299"
    assert {k: v for k, v in ours.items() if k != "tracker"} == {k: v for k, v in rasa.items() if k != "tracker"}
