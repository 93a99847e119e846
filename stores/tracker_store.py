"""Rasa's SQL tracker store, set up for one SQLite file.

Rasa 3.6 opens its SQLite tracker store with SQLAlchemy 1.4's defaults for a
file: a new connection for every read and write (NullPool) and a rollback
journal that is synced to disk on every commit. The server does this on its
one event loop, twice per message. Here one connection is kept per thread
and the file is in WAL mode with `synchronous=NORMAL`: a commit appends to
the log, and customer care can read conversations while Rasa writes them.
If Rasa crashes, nothing is lost. A power cut can lose the last few
commits, but never corrupts the file.

Subclasses of Rasa's SQLTrackerStore that override its private members
(`_retrieve`, `_additional_events`, `_event_query`): written for the Rasa
release line rasa_patches/ checks at start (stores/__init__.py), guarded by
tests/test_checkpoints.py (test_events_are_stored_in_the_rows_rasa_s_own_store_writes
and the checkpoint tests) and tests/test_tracker_store.py.

endpoints.yml:
    tracker_store:
      type: stores.tracker_store.SQLiteTrackerStore
      db: var/trackers.db
"""

import itertools
import json
from typing import Any, Collection, List, Optional, Text

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain

from actions.settled import SETTLED_ACTIONS
from musaed import privacy

# How long a write waits for care's reader or another writer before failing.
BUSY_TIMEOUT_S = 10


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Set on a tracker this store read or wrote: how many of its events are stored.
_STORED = "_musaed_events_stored"


class Checkpoints:
    """Rasa's SQL tracker store, reading a long conversation from its latest checkpoint
    (checkpoint_events); mixed into each engine's store.

    Also, for less CPU a message (bench/NOTES.md, round 9): a conversation is
    read as its events' JSON only (not as ORM objects), and a save writes, in
    one INSERT, the events after those the tracker was read with; Rasa first
    counted them again in the database with the same query. The conversation's
    lock (the lock store) keeps anyone else from writing between the read and
    the save.
    """

    async def save(self, tracker) -> None:
        """Rasa's `save`, the new events written in one INSERT rather than as ORM objects,
        each as musaed/privacy.py keeps it (no codes, ids masked or encrypted)."""
        # A long conversation gets a checkpoint first: the cost of a message stays flat.
        for event in checkpoint_events(tracker):
            tracker.update(event)
        await self.stream_events(tracker)  # type: ignore[attr-defined]
        with self.session_scope() as session:  # type: ignore[attr-defined]
            new = list(self._additional_events(session, tracker))
            if any(_is_erasure(event) for event in new):
                _erase(session, self.SQLEvent, tracker)  # type: ignore[attr-defined]
            else:
                rows = _rows(tracker, new)
                if rows:
                    session.execute(sa.insert(self.SQLEvent), rows)  # type: ignore[attr-defined]
            session.commit()
        setattr(tracker, _STORED, len(tracker.events))

    def _additional_events(self, session, tracker):
        stored = getattr(tracker, _STORED, None)
        if stored is None:  # a tracker this store did not read (a new conversation, a copy)
            return super()._additional_events(session, tracker)  # type: ignore[misc]
        return itertools.islice(tracker.events, stored, len(tracker.events))

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool):
        """Rasa's `_retrieve`, reading only the events' JSON."""
        from rasa.shared.core.trackers import DialogueStateTracker

        with self.session_scope() as session:  # type: ignore[attr-defined]
            statement = self._read_statement(session, fetch_events_from_all_sessions)
            rows = session.execute(statement, {"sender": sender_id}).all()
        if not rows or not self.domain:  # type: ignore[attr-defined]
            return None
        key = privacy.keys()
        events = [privacy.restore_event(json.loads(data), key) for (data,) in rows]
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)  # type: ignore[attr-defined]
        if not fetch_events_from_all_sessions:  # a full history is saved Rasa's way, counted
            setattr(tracker, _STORED, len(rows))
        return tracker

    def _read_statement(self, session, fetch_events_from_all_sessions: bool):
        """`_event_query`'s SELECT of the events' JSON, made once with the sender as a parameter
        (building the ORM query anew for each read took longer than running it)."""
        statements = self.__dict__.setdefault("_read_statements", {})
        if fetch_events_from_all_sessions not in statements:
            query = self._event_query(session, sa.bindparam("sender"), fetch_events_from_all_sessions)
            statements[fetch_events_from_all_sessions] = query.with_entities(self.SQLEvent.data).statement  # type: ignore[attr-defined]
        return statements[fetch_events_from_all_sessions]

    def _event_query(self, session, sender_id: Text, fetch_events_from_all_sessions: bool):
        """Rasa's query (the latest session's events), from the person's message before the
        latest checkpoint on. Reading a conversation and counting its stored events both use it."""
        query = super()._event_query(session, sender_id, fetch_events_from_all_sessions)  # type: ignore[misc]
        if fetch_events_from_all_sessions:
            return query
        event = self.SQLEvent  # type: ignore[attr-defined]
        checkpoint = (
            session.query(sa.func.max(event.id))
            .filter(event.sender_id == sender_id, event.type_name == "slot", event.data.like(_CHECKPOINT_JSON))
            .scalar_subquery()
        )
        start = (
            session.query(sa.func.coalesce(sa.func.max(event.id), 0))
            .filter(event.sender_id == sender_id, event.type_name == "user", event.id < checkpoint)
            .scalar_subquery()
        )
        return query.filter(sa.or_(checkpoint.is_(None), event.id >= start))


def _rows(tracker, new: list) -> List[dict]:
    """The rows of `new` events (the latest of `tracker`'s), each as privacy.protect_event keeps it:
    a message typed while the code was asked for is not kept."""
    if not new:
        return []
    key = privacy.keys()
    asked = _requested_slots(tracker, len(new))
    return [
        _row(tracker.sender_id, event, key, code_step=asked[i] == "otp" and event.type_name == "user")
        for i, event in enumerate(new)
    ]


def _requested_slots(tracker, last: int) -> List[Optional[str]]:
    """The slot a form was asking for when each of the `last` events of `tracker` happened."""
    from rasa.shared.core.events import ActiveLoop, Restarted, SessionStarted, SlotSet

    def after(event, asked: Optional[str]) -> Optional[str]:
        if isinstance(event, SlotSet) and event.key == "requested_slot":
            return event.value
        if isinstance(event, (Restarted, SessionStarted)) or (isinstance(event, ActiveLoop) and not event.name):
            return None
        return asked

    events = list(tracker.events)
    first = len(events) - last
    asked: Optional[str] = None
    for event in reversed(events[:first]):  # the state before the new events: its latest change
        if after(event, "unchanged") != "unchanged":
            asked = after(event, None)
            break
    found: List[Optional[str]] = []
    for event in events[first:]:
        found.append(asked)
        asked = after(event, asked)
    return found


def _row(sender_id: Text, event, key: Optional[tuple] = None, code_step: bool = False) -> dict:
    """An event as Rasa's SQLTrackerStore.save stores it: its columns and its JSON (protected)."""
    data = privacy.protect_event(event.as_dict(), code_step=code_step, key=key)
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


class PostgresTrackerStore(Checkpoints, SQLTrackerStore):
    """Rasa's SQL tracker store on PostgreSQL (the cluster's), with checkpoints."""


class SQLiteTrackerStore(Checkpoints, SQLTrackerStore):
    """SQLTrackerStore on a SQLite file: pooled connection, WAL journal."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        db: Text = "rasa.db",
        event_broker: Optional[EventBroker] = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("dialect", None)
        kwargs.pop("host", None)  # Rasa passes the endpoint's `url` as host
        super().__init__(domain=domain, dialect="sqlite", db=db, event_broker=event_broker, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        # SingletonThreadPool: one connection per thread, reused. Rasa calls
        # the store from its event-loop thread only.
        self.engine = sa.create_engine(
            url,
            poolclass=sa.pool.SingletonThreadPool,
            connect_args={"timeout": BUSY_TIMEOUT_S},
        )
        sa.event.listen(self.engine, "connect", _set_pragmas)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)


# -- checkpoints: a long session read from its latest turns (issue 19) --------------

# Events read for a conversation past which a checkpoint is written.
CHECKPOINT_AFTER = 150
# Marks a checkpoint's events; customer care's reader leaves them out (musaed/conversations.py).
CHECKPOINT = {"checkpoint": True}
_CHECKPOINT_JSON = '%"checkpoint": true%'


def checkpoint_events(tracker, settled: Collection[str] = SETTLED_ACTIONS) -> list:
    """The slots as they stand, marked, when a long conversation may be read from here on; or none.

    Only where no rule reads what came before: not in a form, and only right
    after one of the `settled` actions, which the dialogue names
    (actions/settled.py).

    Rasa rebuilds a conversation from every event of its session and replays
    them on every message, so each reply of a long conversation was slower
    than the last. After a checkpoint the store reads from the person's
    message before it (`_event_query`): that turn, then the slots exactly as
    they were, verification included. Not a session start: Rasa measures a
    session's expiry from the latest applied user message, which a session
    start would hide.
    """
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted, SlotSet

    if len(tracker.events) < CHECKPOINT_AFTER or tracker.active_loop_name:
        return []
    actions = [e.action_name for e in reversed(tracker.events) if isinstance(e, ActionExecuted)]
    if len(actions) < 2 or actions[0] != ACTION_LISTEN_NAME or actions[1] not in settled:
        return []
    return [
        SlotSet(slot.name, slot.value, metadata=CHECKPOINT)
        for slot in tracker.slots.values()
        if slot.value != slot.initial_value
    ] or [SlotSet("handed_over", tracker.get_slot("handed_over"), metadata=CHECKPOINT)]


# -- erasure: a verified person's conversations deleted at their request --------------

# The slot actions/privacy.py sets once the person confirmed «احذف محادثاتي».
ERASE_SLOT = "erase_conversations"


def _is_erasure(event) -> bool:
    from rasa.shared.core.events import SlotSet

    return isinstance(event, SlotSet) and event.key == ERASE_SLOT and bool(event.value)


def _erase(session, table, tracker) -> None:
    """Delete this conversation's events, and those of every conversation that verified as the
    same person (found by the keyed hash stored with `verified_id`), instead of saving the turn.
    The person's next message starts a new conversation."""
    senders = {tracker.sender_id}
    person = tracker.get_slot("verified_id")
    if person:
        found = session.execute(
            sa.select(table.sender_id)
            .where(table.type_name == "slot", table.action_name == "verified_id")
            # Rows an earlier version wrote hold the id itself (until --protect-existing rewrites them).
            .where(sa.or_(table.data.like(privacy.person_pattern(person)), table.data.like(f'%"value": "{person}"%')))
            .distinct()
        )
        senders.update(sender for (sender,) in found)
    session.execute(sa.delete(table).where(table.sender_id.in_(sorted(senders))))
