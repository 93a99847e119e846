"""Rasa's lookup of an event's class by its name, remembered.

What Rasa does: Rasa 3.6 turns every stored event back into an object
through `Event.resolve_by_type`, which walks every subclass of `Event`
(recursively, building the list anew) until one has the name.

What we do instead: a name found once is looked up in a dict; a name not
seen yet goes to Rasa's own method, so unknown names behave exactly as
before.

Why: a conversation's events are read on every message, and each action
server reply is read the same way: this walk was about 4 % of the Rasa
server's time per message (bench/NOTES.md, round 9).

Guarded by: tests/test_event_types.py — test_the_rasa_server_uses_the_remembered_lookup
(the method is still there and replaced), test_every_event_name_resolves_to_rasa_s_class
and test_unknown_names_behave_as_in_rasa.
"""

from rasa.shared.core.events import Event

_rasa_resolve_by_type = Event.resolve_by_type
_found: dict = {}


def resolve_by_type(type_name, default=None):
    cls = _found.get(type_name)
    if cls is None:
        cls = _rasa_resolve_by_type(type_name, default)
        if cls is not None and cls is not default:
            _found[type_name] = cls
    return cls


def apply() -> None:
    """Replace `Event.resolve_by_type` (once: a second call finds it replaced)."""
    if getattr(Event.resolve_by_type, "__module__", "") != __name__:
        Event.resolve_by_type = staticmethod(resolve_by_type)
