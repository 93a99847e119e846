"""Custom Rasa graph components (the only place, with actions/, that imports Rasa)."""

# The Rasa server imports this package when it loads the model, and with it
# three changes to Rasa: the action server gets the latest turns, not the
# whole history (action_payload.py); its replies are checked by a validator
# built once (action_replies.py); and each event name's class is looked up
# once, not found anew for every event read back (event_types.py).
from components import action_payload, action_replies, event_types  # noqa: F401
