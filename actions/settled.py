"""The actions that settle a turn: after one, no rule reads what came before.

A long conversation is read back from its latest checkpoint: the slots as
they stand and the person's latest message, not the turns before
(stores/tracker_store.py). The store writes a checkpoint only right after one
of these actions, so that a rule that reads earlier turns never loses them: a
form's step, a «نعم» that answers an offer (a guide's, a follow-up's, a switch
offer). An action belongs here only if its turn ends the matter; take it out
when a rule starts reading past it (data/rules/).
"""

SETTLED_ACTIONS = frozenset(
    {
        "utter_you_are_welcome",
        "utter_greet",
        "utter_goodbye",
        "utter_iamabot",
        "utter_anything_else",
        "action_show_capabilities",
        "action_hand_over",
        "action_show_tracking",
        "action_submit_request",
        "action_cancel_form",
    }
)
