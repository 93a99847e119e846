"""Custom Rasa graph components (the only place, with actions/, that imports Rasa)."""

# The Rasa server imports this package when it loads the model: check action
# replies with a validator built once (see action_replies.py).
from components import action_replies  # noqa: F401
