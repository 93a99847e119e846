"""A long conversation is read from its latest checkpoint, with every slot and its expiry kept
(stores/tracker_store.py; issue 19)."""

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from actions.settled import SETTLED_ACTIONS
from musaed import conversations
from stores import tracker_store
from stores.tracker_store import CHECKPOINT_AFTER, SQLiteTrackerStore, checkpoint_events

DOMAIN = Domain.load("domain.yml")
TURNS = CHECKPOINT_AFTER // 4 + 1  # four events a turn: past the checkpoint's size


def turn(i: int, action: str = "utter_you_are_welcome") -> list:
    return [
        UserUttered(f"thanks {i}", {"name": "thank", "confidence": 1.0}),
        ActionExecuted(action),
        BotUttered(f"you are welcome {i}"),
        ActionExecuted("action_listen"),
    ]


def talk(turns: int, last_action: str = "utter_you_are_welcome", loop=None) -> DialogueStateTracker:
    events = [ActionExecuted("action_session_start"), ActionExecuted("action_listen")]
    events += [SlotSet("verified_id", "1010000014"), SlotSet("language", "en"), SlotSet("handed_over", True)]
    for i in range(turns):
        events += turn(i, last_action if i == turns - 1 else "utter_you_are_welcome")
    if loop:
        events.insert(-1, ActiveLoop(loop))
    return DialogueStateTracker.from_events("rest:long", events, DOMAIN.slots)


def test_no_checkpoint_in_a_short_conversation_a_form_or_after_an_offer():
    assert checkpoint_events(talk(10)) == []
    assert checkpoint_events(talk(TURNS, loop="service_request_form")) == []
    assert checkpoint_events(talk(TURNS, last_action="action_explain_service")) == []  # «نعم» may follow
    assert {e.key: e.value for e in checkpoint_events(talk(TURNS))} == {
        "verified_id": "1010000014",
        "language": "en",
        "handed_over": True,
    }


def test_the_dialogue_names_the_actions_that_settle_a_turn_and_the_store_names_none():
    assert "utter_you_are_welcome" in SETTLED_ACTIONS and "action_explain_service" not in SETTLED_ACTIONS
    assert SETTLED_ACTIONS <= set(DOMAIN.user_actions) | set(DOMAIN.responses)  # none renamed away
    source = open(tracker_store.__file__, encoding="utf-8").read()
    assert [name for name in [*DOMAIN.user_actions, *DOMAIN.responses] if f'"{name}"' in source] == []


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """(the store, where customer care reads it): the SQLite file, or the cluster's PostgreSQL."""
    if request.param == "sqlite":
        return SQLiteTrackerStore(domain=DOMAIN, db=str(tmp_path / "trackers.db")), tmp_path / "trackers.db"
    from conftest import pg_tracker_store

    return pg_tracker_store(request.getfixturevalue("pg_server"), DOMAIN)


async def test_a_long_conversation_is_read_from_its_checkpoint_with_its_slots_and_expiry(store):
    trackers, path = store
    tracker = talk(TURNS)
    before = {name: slot.value for name, slot in tracker.slots.items()}
    await trackers.save(tracker)
    again = await trackers.retrieve("rest:long")
    # The last turn and the slots, not the whole conversation.
    assert len(again.events) == 4 + 3
    assert {name: slot.value for name, slot in again.slots.items()} == before  # verification included
    # The session still expires from the person's latest message, which is still applied.
    assert again.get_last_event_for(UserUttered).text == f"thanks {TURNS - 1}"
    # Later turns are saved after it and read with it, until the next checkpoint.
    for i in range(TURNS, TURNS + 3):
        for event in turn(i):
            again.update(event)
        await trackers.save(again)
        again = await trackers.retrieve("rest:long")
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == [
        f"thanks {i}" for i in range(TURNS - 1, TURNS + 3)
    ]
    assert again.get_slot("verified_id") == "1010000014" and again.get_slot("language") == "en"
    # Every event is kept; customer care sees the conversation once: every message, one handover.
    full = await trackers.retrieve_full_tracker("rest:long")
    assert len([e for e in full.events if isinstance(e, UserUttered)]) == TURNS + 3
    transcript = conversations.transcript(path, "rest:long")
    assert [m["role"] for m in transcript].count("handover") == 1
    assert len([m for m in transcript if m["role"] == "user"]) == TURNS + 3
    assert [h["sender_id"] for h in conversations.handovers(path)] == ["rest:long"]


async def test_a_second_checkpoint_moves_the_start_on(store):
    trackers, _ = store
    tracker = talk(TURNS)
    await trackers.save(tracker)
    again = await trackers.retrieve("rest:long")
    for i in range(TURNS, 2 * TURNS + 2):
        for event in turn(i):
            again.update(event)
        await trackers.save(again)
        again = await trackers.retrieve("rest:long")
        assert len(again.events) <= CHECKPOINT_AFTER + 4 + 3
    assert again.get_slot("verified_id") == "1010000014"


@pytest.mark.e2e
def test_a_long_real_conversation_keeps_verification_and_its_flows_after_checkpoints(chat, servers):
    from test_request_flows import ID, joined, latest_code

    from musaed import catalogue

    labels = catalogue.load().labels
    chat.say("طلباتي")
    chat.say(ID["khalid"])
    listed = joined(chat.say(latest_code(servers, ID["khalid"])))
    assert labels["your_requests"] in listed or labels["no_requests"] in listed
    for _ in range(CHECKPOINT_AFTER // 3):
        assert joined(chat.say("شكرا"))  # each turn ends the matter: checkpoints come
    mine = joined(chat.say("طلباتي"))
    assert "رقم هويتك" not in mine  # still verified, an hour not having passed
    chat.say("ابي اجدد هويتي الوطنية")
    assert "ملخص الطلب" in joined(chat.say("نعم"))  # the offer's «نعم» starts the form; no id asked
    import sqlite3

    with sqlite3.connect(servers.tracker_db) as db:
        [(checkpoints,)] = db.execute(
            "SELECT COUNT(DISTINCT timestamp) FROM events WHERE sender_id = ? AND data LIKE '%\"checkpoint\": true%'",
            [chat.conversation_id],
        )
    assert checkpoints >= 1  # the conversation was read from a checkpoint
    transcript = conversations.transcript(servers.tracker_db, chat.conversation_id)
    users = [m["text"] for m in transcript if m["role"] == "user"]
    assert users.count("شكرا") == CHECKPOINT_AFTER // 3  # every message once


async def test_each_save_writes_only_the_events_after_those_it_was_read_with(store):
    # The store remembers how many events a tracker was read with, instead of
    # counting them again in the database before each save.
    trackers, _ = store
    await trackers.save(talk(3))  # a new conversation: Rasa's count (none stored)
    tracker = await trackers.retrieve("rest:long")
    read = len(tracker.events)
    for event in turn(3):
        tracker.update(event)
    await trackers.save(tracker)
    for event in turn(4):  # saved again, the same tracker: only this turn is new
        tracker.update(event)
    await trackers.save(tracker)
    again = await trackers.retrieve("rest:long")
    assert len(again.events) == read + 8
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == [f"thanks {i}" for i in range(5)]
    # A copy (no count remembered) is saved Rasa's way: nothing written twice.
    copy = again.copy()
    copy.update(UserUttered("thanks 5", {"name": "thank", "confidence": 1.0}))
    await trackers.save(copy)
    assert len((await trackers.retrieve("rest:long")).events) == read + 9
    full = await trackers.retrieve_full_tracker("rest:long")
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == [f"thanks {i}" for i in range(6)]


async def test_events_are_stored_in_the_rows_rasa_s_own_store_writes(tmp_path):
    import json
    import sqlite3

    from rasa.core.tracker_store import SQLTrackerStore

    from musaed import privacy

    ours = SQLiteTrackerStore(domain=DOMAIN, db=str(tmp_path / "ours.db"))
    rasa = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "rasa.db"))
    tracker = talk(3)
    tracker.update(ActiveLoop("service_request_form"))
    await ours.save(tracker)
    await rasa.save(tracker)
    columns = "sender_id, type_name, timestamp, intent_name, action_name, data"

    def rows(name):
        with sqlite3.connect(tmp_path / name) as db:
            found = db.execute(f"SELECT {columns} FROM events ORDER BY id").fetchall()
        # Ours keeps the id slots encrypted (musaed/privacy.py): compared as Rasa reads them back.
        return [(*row[:5], privacy.restore_event(json.loads(row[5]))) for row in found]

    assert rows("ours.db") == rows("rasa.db") and len(rows("ours.db")) == len(tracker.events)
    assert any(row[3] == "thank" for row in rows("ours.db")) and any(
        row[4] == "action_listen" for row in rows("ours.db")
    )
