"""Events are read back as Rasa reads them, each name's class looked up once (rasa_patches/event_types.py)."""

import pytest
from rasa.shared.core.events import Event, SlotSet, UserUttered, deserialise_events
from rasa.shared.utils.common import all_subclasses

import components  # noqa: F401  (what the Rasa server imports with the model)
from rasa_patches import event_types


def test_the_rasa_server_uses_the_remembered_lookup():
    assert Event.resolve_by_type is event_types.resolve_by_type


def test_every_event_name_resolves_to_rasa_s_class():
    names = {cls.type_name for cls in all_subclasses(Event)}
    assert {"user", "slot", "action", "bot", "session_started", "active_loop"} <= names
    for name in names:
        expected = event_types._rasa_resolve_by_type(name)
        assert Event.resolve_by_type(name) is expected
        assert Event.resolve_by_type(name) is expected  # the second time, from the dict


def test_unknown_names_behave_as_in_rasa():
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):  # the default is not remembered for the name
        Event.resolve_by_type("no_such_event")
    assert Event.resolve_by_type("topic") is None  # Rasa's old TopicSet events


def test_stored_events_come_back_as_they_were():
    events = [UserUttered("ابي اجدد هويتي", {"name": "renew_national_id", "confidence": 0.9}), SlotSet("service", "x")]
    assert deserialise_events([e.as_dict() for e in events]) == events
