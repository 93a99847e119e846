"""The action server gets a conversation's latest turns, not its whole history.

What Rasa does: for every custom action, Rasa 3.6's
`RemoteAction._action_call_format` sends the tracker with every event of the
session (`EventVerbosity.ALL`): about 0.4 KB an event, over 1 MB after 300
messages, made into dicts and JSON by the Rasa server and parsed back by the
action server two or three times a message.

What we do instead: Rasa's own `_action_call_format`, called as it is, with
only the events of its state replaced by those since the person's previous
message (this turn and the one before, `USER_TURNS`).

Why: a reply got slower with every message of a long conversation
(bench/NOTES.md, round 8). Musaed's actions read the slots, the latest
message, the active loop and the latest action, which the tracker state
carries apart from its events, and the events of the current turn
(actions/turn.asked_this_turn; rasa-sdk's slots_to_validate reads the slot
events at the end).

Guarded by: tests/test_action_payload.py — test_the_rasa_server_uses_the_trimmed_payload
(the method is still there and replaced), test_a_short_conversation_gets_exactly_rasas_payload
and test_a_long_conversation_sends_the_last_two_turns_with_every_slot.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import UserUttered

# User messages whose turns the action server gets: this one and the one before.
USER_TURNS = 2

_rasa_call_format = RemoteAction._action_call_format


def recent_events(events) -> List[Any]:
    """The events since the USER_TURNS-th last user message (all, if there are fewer)."""
    recent: List[Any] = []
    users = 0
    for event in reversed(events):
        recent.append(event)
        if isinstance(event, UserUttered):
            users += 1
            if users == USER_TURNS:
                break
    recent.reverse()
    return recent


class _Recent:
    """The tracker as `_action_call_format` reads it, its state made with only the recent events."""

    def __init__(self, tracker) -> None:
        self._tracker = tracker

    def current_state(self, event_verbosity) -> Dict[str, Any]:
        from rasa.shared.core.trackers import EventVerbosity

        state = self._tracker.current_state(EventVerbosity.NONE)  # slots, latest message, loop: no events
        if event_verbosity != EventVerbosity.NONE:
            state["events"] = [e.as_dict() for e in recent_events(self._tracker.events)]
        return state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracker, name)


def _action_call_format(self: RemoteAction, tracker, domain) -> Dict[str, Any]:
    return _rasa_call_format(self, _Recent(tracker), domain)


def apply() -> None:
    """Replace `RemoteAction._action_call_format` (once: a second call finds it replaced)."""
    if getattr(RemoteAction._action_call_format, "__module__", "") != __name__:
        RemoteAction._action_call_format = _action_call_format
