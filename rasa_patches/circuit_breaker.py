"""A tripped circuit breaker costs one turn, not the rest of the session.

What Rasa does: Rasa 3.6 counts the actions predicted since the latest
`action_listen` (`MessageProcessor.is_action_limit_reached`). When the
breaker trips it adds no `action_listen`, so on every later message the
count is still over the limit: the breaker trips at once, nothing is said,
and the conversation stays wedged until the session expires («مرحبا»,
«ضاعت هويتي» and `/restart` all got «الخدمة غير متاحة»).

What we do instead: the count also stops at the person's latest message,
and a trip is logged as an error.

Why: rules and actions must never loop (actions/fallback.py;
tests/test_fuzz_conversations.py); this is the net under them, and a net
should cost the turn that tripped it, not the conversation.

Guarded by: tests/test_circuit_breaker.py — test_the_patch_replaces_rasas_method
(the method is still there and replaced), test_ten_actions_in_one_turn_trip_it
and test_the_next_message_is_not_counted_against_the_tripped_turn.
"""

from __future__ import annotations

import logging

from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, UserUttered

logger = logging.getLogger(__name__)


def actions_this_turn(events) -> int:
    """Actions predicted since the latest listen, session start or user message."""
    count = 0
    for event in reversed(events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, ActionExecuted):
            if event.action_name in (ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME):
                break
            count += 1
    return count


def is_action_limit_reached(self: MessageProcessor, tracker, should_predict_another_action: bool) -> bool:
    reached = should_predict_another_action and actions_this_turn(tracker.events) >= self.max_number_of_predictions
    if reached:
        logger.error("Circuit breaker: %d actions in one turn (a rule loops)", self.max_number_of_predictions)
    return reached


def apply() -> None:
    """Replace `MessageProcessor.is_action_limit_reached` (once: a second call finds it replaced)."""
    if getattr(MessageProcessor.is_action_limit_reached, "__module__", "") != __name__:
        MessageProcessor.is_action_limit_reached = is_action_limit_reached  # type: ignore[method-assign]
