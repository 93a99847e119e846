"""Connections to the application database (SQLite or PostgreSQL) and transactions."""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Union

from sqlite_utils import Database

from musaed import files, settings

if TYPE_CHECKING:
    from musaed.store.postgres import PostgresDatabase


DEFAULT_PATH = Path(settings.DB.default)
TRACKING_PREFIX = "MSD-"


def db_path() -> Path:
    return Path(settings.DB.get())


# One connection per thread and database file, opened and migrated once: an
# action server turn used to open a connection and re-check the migrations
# (under BEGIN IMMEDIATE) for every action call.
_connections = threading.local()

# A connection: sqlite_utils' Database, or the PostgreSQL adapter with the same methods.
Db = Union[Database, "PostgresDatabase"]


def open_db(path: Optional[os.PathLike] = None, url: Optional[str] = None) -> Db:
    """The application database, created and migrated on first use in this thread.

    `url` (or MUSAED_DATABASE_URL when neither is given) names a PostgreSQL
    database; otherwise the SQLite file at `path` or MUSAED_DB. ``:memory:``
    is a new, empty database at every call.
    """
    if path is None and url is None:
        url = settings.DATABASE_URL.given()
    cache = _connections.__dict__
    if url:
        db = cache.get(url)
        if db is None or not _alive(db):
            from musaed.store.postgres import PostgresDatabase
            from musaed.store.schema import migrate

            db = cache[url] = PostgresDatabase(url)
            migrate(db)
        return db
    if path is None:
        path = db_path()
    if str(path) == ":memory:":
        return _connect(":memory:")
    key = str(Path(path).resolve())
    db = cache.get(key)
    if db is None or not _alive(db):
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = cache[key] = _connect(key)
    return db


def dialect(db: Db) -> str:
    return getattr(db, "dialect", "sqlite")


def _alive(db: Db) -> bool:
    try:
        db.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - closed by its user, or the server went away
        return False


def _connect(path: str) -> Db:
    # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE),
    # so two writers never deadlock upgrading a read lock.
    if path != ":memory:":
        # 0600 before SQLite opens it: its -wal and -shm files take the database's mode.
        files.create_private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    db = Database(conn)
    from musaed.store.schema import migrate  # the schema's module uses this one's transactions

    migrate(db)
    return db


@contextmanager
def transaction(db: Db) -> Iterator[Db]:
    """One atomic write: everything inside commits together or not at all.

    On SQLite it holds the database's write lock from the start (BEGIN
    IMMEDIATE), so transactions run one at a time; on PostgreSQL what must
    not interleave takes `serialize` inside it.
    """
    db.execute("BEGIN IMMEDIATE" if dialect(db) == "sqlite" else "BEGIN")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def serialize(db: Db, key: str) -> None:
    """Inside a transaction: wait until no other transaction holds `key`, then hold it to the end.

    A check-then-write (the code limit, a wrong-code count, a migration) must
    not interleave across replicas. SQLite's BEGIN IMMEDIATE already runs
    one transaction at a time; PostgreSQL takes a transaction-level advisory lock.
    """
    if dialect(db) == "postgresql":
        db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [key])


def now_iso(now: Optional[datetime] = None) -> str:
    return (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")


# -- what the store's modules share ----------------------------------------------


def _one(db: Db, sql: str, params) -> Optional[dict]:
    rows = list(db.query(sql, params))
    return rows[0] if rows else None


def _insert(db: Db, table: str, row: dict) -> None:
    """INSERT inside the caller's transaction (sqlite-utils' insert commits itself)."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
