"""The conversation reader (musaed/conversations.py) on a hand-made Rasa tracker store.

The same reader runs against the real one in tests/test_care.py (e2e); the
hand-made store is conftest's `tracker_db` fixture.
"""

import sqlite3

import pytest

from musaed import catalogue, conversations

CAT = catalogue.load()


# -- conversation review on a hand-made tracker store --------------------------------


def test_transcript_has_each_message_with_intent_and_the_bots_replies(any_tracker_db):
    tracker_db = any_tracker_db
    messages = conversations.transcript(tracker_db, "alice")
    assert [m["role"] for m in messages] == ["user", "bot", "bot", "user", "bot", "handover"]
    assert messages[0] == {
        "role": "user",
        "time": "2026-11-23T09:01:00+00:00",
        "text": "ضاعت هويتي",
        "intent": "report_lost_id",
        "confidence": 0.98,
        "entities": [],
    }
    assert messages[1]["text"] == CAT.howto("report_lost_id")
    assert messages[2]["buttons"] == [CAT.labels["button_start"], CAT.labels["button_no"]]
    assert messages[3]["intent"] == "request_human"
    assert conversations.transcript(tracker_db, "nobody") == []


def test_handovers_are_the_conversations_still_handed_over_newest_first(any_tracker_db):
    tracker_db = any_tracker_db
    found = conversations.handovers(tracker_db)
    assert [c["sender_id"] for c in found] == ["dave", "alice"]  # carol went back to the bot
    assert found[1]["text"] == "ابي اكلم موظف" and found[1]["intent"] == "request_human"
    assert found[1]["time"] == "2026-11-23T09:07:00+00:00"


def test_fallbacks_show_the_original_top_intent_newest_first(any_tracker_db):
    tracker_db = any_tracker_db
    found = conversations.fallbacks(tracker_db)
    assert [(m["sender_id"], m["text"]) for m in found] == [("dave", "؟؟ ههه"), ("bob", "زززز قققق")]
    assert found[1]["original_intent"] == {"name": "thank", "confidence": 0.28}
    assert found[1]["confidence"] == 0.45
    assert len(conversations.fallbacks(tracker_db, limit=1)) == 1
    # The bot's fallback is shown as such in the transcript too.
    assert conversations.transcript(tracker_db, "bob")[0]["original_intent"]["name"] == "thank"


def test_the_tracker_store_is_only_read(tracker_db, tmp_path):
    before = tracker_db.read_bytes()
    (
        conversations.transcript(tracker_db, "alice"),
        conversations.handovers(tracker_db),
        conversations.fallbacks(tracker_db),
    )
    assert tracker_db.read_bytes() == before
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conversations._connect_ro(tracker_db).execute("DELETE FROM events")
    # No tracker store yet (nobody has talked to the bot): empty lists, no file created.
    missing = tmp_path / "none.db"
    assert (
        conversations.handovers(missing)
        == conversations.fallbacks(missing)
        == conversations.transcript(missing, "x")
        == []
    )
    assert not missing.exists()


def test_on_postgresql_the_reader_cannot_write(pg_tracker_db):
    import psycopg2.errors

    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        conversations._postgres_rows(pg_tracker_db, "DELETE FROM events", [])
    assert len(conversations.transcript(pg_tracker_db, "alice")) == 6
    # No events table yet (nobody has talked to the bot): empty lists.
    empty = pg_tracker_db.replace("search_path%3D", "search_path%3Dnone_")
    assert conversations.handovers(empty) == conversations.fallbacks(empty) == []
