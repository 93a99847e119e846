"""When no rule knows what to do next: one reply, then the step again or listening.

Rasa's RulePolicy falls back to `core_fallback_action_name` when no rule fits
the turn, typically when a form rejects a message none of its asides covers
(«وين وصل طلبي» at the id step of tracking). Rasa's own fallback action
reverts the message; a plain action in its place ran again after itself
until the circuit breaker stopped it, ten menus a message, and the
conversation was wedged (issue 25). This action answers once per turn and
always ends the turn: it hands the turn back to the form, which asks its step
again, or to the person.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.guidance import service_buttons
from actions.turn import catalogue_for

NAME = "action_core_fallback"


def ran_this_turn(tracker: Tracker, action: str) -> bool:
    """Whether `action` already ran since the person's latest message."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "action" and event.get("name") == action:
            return True
    return False


class ActionCoreFallback(Action):
    def name(self) -> Text:
        return NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        listen = [FollowupAction("action_listen")]
        # An earlier run this turn means something sent the turn round again: stop it here.
        if ran_this_turn(tracker, NAME):
            return listen
        loop = (tracker.active_loop or {}).get("name")
        if loop:  # a message the form would not take and no aside covers: the form asks its step again
            return [FollowupAction(loop)]
        cat = catalogue_for(tracker)
        dispatcher.utter_message(text=cat.labels["capabilities"], buttons=service_buttons(cat))
        return listen
