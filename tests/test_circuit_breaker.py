"""A tripped circuit breaker ends its turn only (rasa_patches/circuit_breaker.py)."""

from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import ActionExecuted, UserUttered

import components  # noqa: F401  (what the Rasa server imports with the model: it installs the patches)
from rasa_patches import circuit_breaker


def looped_turn(n: int) -> list:
    return [ActionExecuted("action_listen"), UserUttered("وين وصل طلبي")] + [
        ActionExecuted("action_show_capabilities") for _ in range(n)
    ]


class _Processor:
    max_number_of_predictions = 10


class _Tracker:
    def __init__(self, events):
        self.events = events


def test_the_patch_replaces_rasas_method():
    assert MessageProcessor.is_action_limit_reached is circuit_breaker.is_action_limit_reached


def test_ten_actions_in_one_turn_trip_it():
    assert circuit_breaker.is_action_limit_reached(_Processor(), _Tracker(looped_turn(10)), True)
    assert not circuit_breaker.is_action_limit_reached(_Processor(), _Tracker(looped_turn(9)), True)


def test_the_next_message_is_not_counted_against_the_tripped_turn():
    # Rasa adds no action_listen when the breaker trips: its own count would
    # still be over the limit for every later message of the session.
    events = looped_turn(10) + [UserUttered("مرحبا")]
    assert not circuit_breaker.is_action_limit_reached(_Processor(), _Tracker(events), True)
    assert circuit_breaker.actions_this_turn(events + [ActionExecuted("utter_greet")]) == 1
