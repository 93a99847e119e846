"""Custom Rasa graph components (the only place, with actions/, that imports Rasa)."""

# The Rasa server imports this package when it loads the model, and with it
# five changes to Rasa (rasa_patches/): the action server gets the latest turns, not the
# whole history (action_payload.py); its replies are checked by a validator
# built once (action_replies.py); each event name's class is looked up once,
# not found anew for every event read back (event_types.py); and the model's
# graphs run node by node, without dask's scheduler (graph_runner.py); a
# tripped circuit breaker ends its turn only (circuit_breaker.py).
from rasa_patches import action_payload, action_replies, circuit_breaker, event_types, graph_runner  # noqa: F401
