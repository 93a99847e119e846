"""The SQLite tracker store Rasa loads from endpoints.yml (stores/tracker_store.py)."""

import asyncio
import sqlite3
from pathlib import Path

from rasa.core.tracker_store import create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from stores.tracker_store import SQLiteTrackerStore

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = Domain.load(str(ROOT / "domain.yml"))


def _store(tmp_path, monkeypatch) -> SQLiteTrackerStore:
    # endpoints.yml's own section, as Rasa reads it (db relative to the cwd).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store")
    return create_tracker_store(config, DOMAIN)


def test_endpoints_yml_loads_our_store_not_rasas_in_memory_fallback(tmp_path, monkeypatch):
    # Rasa falls back to InMemoryTrackerStore with only a warning when the
    # class cannot be imported; customer care would then find no conversations.
    store = _store(tmp_path, monkeypatch)
    assert isinstance(store, SQLiteTrackerStore)
    assert Path(store.engine.url.database) == Path("var/trackers.db")


def test_a_saved_conversation_comes_back_and_is_in_the_file_in_wal_mode(tmp_path, monkeypatch):
    store = _store(tmp_path, monkeypatch)
    tracker = DialogueStateTracker.from_events(
        "alice",
        [
            ActionExecuted("action_listen"),
            UserUttered("ابي اجدد هويتي", {"name": "renew_national_id", "confidence": 0.9}),
            SlotSet("service", "renew_national_id"),
        ],
        slots=DOMAIN.slots,
    )
    asyncio.run(store.save(tracker))
    tracker.update(UserUttered("كم الرسوم", {"name": "ask_fees", "confidence": 0.8}))
    asyncio.run(store.save(tracker))

    again = asyncio.run(store.retrieve("alice"))
    assert again.get_slot("service") == "renew_national_id"
    assert again.latest_message.text == "كم الرسوم"

    # A second reader (customer care) sees every event while Rasa holds its connection.
    with sqlite3.connect(tmp_path / "var" / "trackers.db") as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        count = reader.execute("SELECT count(*) FROM events WHERE sender_id='alice'").fetchone()[0]
    assert count == len(again.events) == 4


def test_one_connection_is_reused(tmp_path, monkeypatch):
    store = _store(tmp_path, monkeypatch)
    tracker = DialogueStateTracker.from_events("bob", [ActionExecuted("action_listen")], slots=DOMAIN.slots)
    asyncio.run(store.save(tracker))
    with store.session_scope() as s1:
        first = s1.connection().connection.dbapi_connection
    asyncio.run(store.retrieve("bob"))
    with store.session_scope() as s2:
        assert s2.connection().connection.dbapi_connection is first
