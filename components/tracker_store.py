"""Rasa's SQL tracker store, set up for one SQLite file.

Rasa 3.6 opens its SQLite tracker store with SQLAlchemy 1.4's defaults for a
file: a new connection for every read and write (NullPool) and a rollback
journal that is synced to disk on every commit. The server does this on its
one event loop, twice per message. Here one connection is kept per thread
and the file is in WAL mode with `synchronous=NORMAL`: a commit appends to
the log, and customer care can read conversations while Rasa writes them.
If Rasa crashes, nothing is lost. A power cut can lose the last few
commits, but never corrupts the file.

endpoints.yml:
    tracker_store:
      type: components.tracker_store.SQLiteTrackerStore
      db: var/trackers.db
"""

from typing import Any, Optional, Text

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain

# How long a write waits for care's reader or another writer before failing.
BUSY_TIMEOUT_S = 10


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SQLiteTrackerStore(SQLTrackerStore):
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
