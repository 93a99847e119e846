"""The store's PostgreSQL adapter: the few methods of sqlite_utils.Database the store uses.

The store writes its SQL once, in the dialect both engines share (``?``
placeholders, ``ON CONFLICT`` upserts, partial unique indexes); this
adapter turns it into what psycopg2 takes and maps the three SQLite-isms
of the migrations. psycopg2 because Rasa already brings it (its SQL
tracker store on PostgreSQL uses it): no second driver to install.

Like the SQLite connection, this one runs in autocommit and the store opens
its own transactions (`musaed.store.transaction`), so a read outside one
sees the latest commit, as on SQLite.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

import psycopg2
import psycopg2.extras

# SQLite's spelling in the migrations → PostgreSQL's.
_DDL = {
    "INTEGER PRIMARY KEY": "BIGSERIAL PRIMARY KEY",
    "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')": (
        "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"
    ),
}

IntegrityError = psycopg2.IntegrityError


def translate(sql: str) -> str:
    """The store's SQL as psycopg2 takes it: ``?`` → ``%s`` (and a literal ``%`` doubled)."""
    for sqlite, postgres in _DDL.items():
        sql = sql.replace(sqlite, postgres)
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase:
    """A PostgreSQL connection with the interface the store uses (execute, query, table_names)."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True

    def execute(self, sql: str, params: Optional[Sequence[Any]] = None):
        """Run one statement; the cursor, with tuple rows (fetchone()[0] works as on SQLite)."""
        cur = self.conn.cursor()
        cur.execute(translate(sql), list(params or ()))
        return cur

    def query(self, sql: str, params: Optional[Sequence[Any]] = None) -> Iterator[Dict[str, Any]]:
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(translate(sql), list(params or ()))
            rows: List[Dict[str, Any]] = [dict(r) for r in cur.fetchall()] if cur.description else []
        yield from rows

    def table_names(self) -> List[str]:
        cur = self.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
        return [row[0] for row in cur.fetchall()]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            psycopg2.extras.execute_batch(cur, translate(sql), [list(r) for r in rows])
