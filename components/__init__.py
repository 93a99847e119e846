"""Custom Rasa graph components (the only place, with actions/, that imports Rasa)."""

# The Rasa server imports this package when it loads the model. Two changes to
# how it talks to the action server: send it the latest turns, not the whole
# history (action_payload.py), and check its replies with a validator built
# once (action_replies.py).
from components import action_payload, action_replies  # noqa: F401
