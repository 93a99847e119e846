import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from musaed import catalogue, seed, store
from scripts.servers import MODEL, Servers, free_port

ROOT = Path(__file__).resolve().parent.parent


def start_servers(tmp_path_factory, name: str = "server") -> Servers:
    """A real Rasa server and action server on free loopback ports, on a seeded database of their own."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test does it for you)")
    db_file = tmp_path_factory.mktemp(f"{name}-db") / "musaed.db"
    seed.seed(store.open_db(db_file))
    # The widget's page (web_port) and a site embedding it (embed_port) are the browser
    # origins these servers accept (MUSAED_WEB_ORIGINS, musaed/web_security.py).
    web_port, embed_port = free_port(), free_port()
    s = Servers(
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path_factory.mktemp(f"{name}-logs"),
        env={
            "MUSAED_DB": str(db_file),
            "MUSAED_WEB_ORIGINS": f"http://127.0.0.1:{web_port} http://127.0.0.1:{embed_port}",
            # Receipts are linked on the widget's page's server, as in `make run`.
            "MUSAED_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        },
    ).start()
    s.db_file = db_file
    s.web_port, s.embed_port = web_port, embed_port
    return s


@pytest.fixture(scope="module")
def web_url(servers):
    """The widget's page (web.serve) for the shared servers, on the origin they accept."""
    port = servers.web_port  # an origin the Rasa server accepts (MUSAED_WEB_ORIGINS)
    env = {**os.environ, "MUSAED_DB": servers.env["MUSAED_DB"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.serve", "--port", str(port), "--rasa-url", servers.url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """The servers most end-to-end tests share."""
    s = start_servers(tmp_path_factory)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL server on a free loopback port, for the whole test session."""
    from scripts.backing import Postgres, ensure_installed

    ensure_installed(("postgresql",))
    server = Postgres(tmp_path_factory.mktemp("postgres") / "data", free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    """A PostgreSQL database of this test's own: a new schema, first on the search path."""
    import psycopg2

    schema = f"test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(pg_server.url)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE SCHEMA {schema}")
    conn.close()
    return f"{pg_server.url}?options=-csearch_path%3D{schema}"


def pg_tracker_store(pg, domain):
    """Rasa's tracker store as the cluster runs it, on a new database of the test server `pg`:
    (the store, the database's URL)."""
    import psycopg2

    from stores.tracker_store import PostgresTrackerStore

    name = f"trackers_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(pg.url)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    store = PostgresTrackerStore(
        domain=domain,
        dialect="postgresql",
        host="127.0.0.1",
        port=pg.port,
        db=name,
        username=pg.SUPERUSER,
        password=pg.password,
    )
    return store, pg.url_for(pg.SUPERUSER, pg.password, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request, tmp_path):
    """Opens this test's own application database, on each engine in turn: call it
    in every thread that needs a connection (each thread opens its own)."""
    if request.param == "sqlite":
        path = tmp_path / "musaed.db"
        return lambda: store.open_db(path)
    url = request.getfixturevalue("pg_url")
    return lambda: store.open_db(url=url)


@pytest.fixture(autouse=True)
def fresh_records(request):
    """Each end-to-end test starts from the demo records, with no requests, codes or
    identity locks left by another test (a person may have one open request per
    service and three codes in 15 minutes: tests must not spend each other's)."""
    for name in ("servers", "bot"):
        if name in request.fixturenames:
            seed.seed(store.open_db(request.getfixturevalue(name).db_file))


class Conversation:
    """One user talking to the bot over Rasa's REST channel."""

    def __init__(self, url: str, token: str = "") -> None:
        self.url = f"{url}/webhooks/rest/webhook"
        self.sender = f"test-{uuid.uuid4().hex[:12]}"
        # The conversation the REST channel files this sender's messages under.
        self.conversation_id = f"rest:{self.sender}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def say(self, text: str) -> list:
        r = requests.post(self.url, json={"sender": self.sender, "message": text}, headers=self.headers, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    def send_file(self, data: bytes) -> list:
        """A document, as REST takes one (channels/rest.py): the bytes as the body."""
        url = self.url.rsplit("/", 1)[0] + "/document"
        r = requests.post(url, params={"sender": self.sender}, data=data, headers=self.headers, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def chat(servers):
    return Conversation(servers.url)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download).

    Module-scoped: Playwright's sync API holds an event loop while it runs,
    which the async tests of other modules must not meet.
    """
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("chromium is missing: `make test` installs Debian's chromium (scripts/ensure-chromium)")
    with sync_playwright() as p:
        # The flags keep Chromium off the network it cannot reach here.
        b = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


# -- a hand-made Rasa tracker store (customer care's conversation reader) ---------

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc).timestamp()


def _user(text, intent, confidence, ranking=None):
    return {
        "event": "user",
        "text": text,
        "parse_data": {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": [],
            "intent_ranking": ranking or [{"name": intent, "confidence": confidence}],
        },
    }


EVENTS_TABLE = (
    "CREATE TABLE events (id {id}, sender_id VARCHAR(255) NOT NULL, "
    "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
    "action_name VARCHAR(255), data TEXT)"
)
EVENT_INSERT = (
    "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
    "VALUES ({m}, {m}, {m}, {m}, {m}, {m})"
)


@pytest.fixture
def tracker_db(tmp_path):
    """The schema of Rasa's SQLTrackerStore (a SQLite file), with four conversations."""
    path = tmp_path / "trackers.db"
    conn = sqlite3.connect(path)
    conn.execute(EVENTS_TABLE.format(id="INTEGER PRIMARY KEY"))
    for row in tracker_rows():
        conn.execute(EVENT_INSERT.format(m="?"), row)
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def pg_tracker_db(pg_url):
    """The same conversations in Rasa's `events` table on PostgreSQL (a postgresql:// URL)."""
    import psycopg2

    conn = psycopg2.connect(pg_url)
    with conn, conn.cursor() as cur:
        cur.execute(EVENTS_TABLE.format(id="SERIAL PRIMARY KEY"))
        for row in tracker_rows():
            cur.execute(EVENT_INSERT.format(m="%s"), row)
    conn.close()
    return pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_tracker_db(request):
    return request.getfixturevalue("tracker_db" if request.param == "sqlite" else "pg_tracker_db")


def tracker_rows():
    """(sender, type, timestamp, intent, name, data) rows as Rasa's SQLTrackerStore writes them."""
    rows = [
        ("alice", 0, {"event": "session_started"}),
        ("alice", 1, _user("ضاعت هويتي", "report_lost_id", 0.98)),
        ("alice", 2, {"event": "action", "name": "action_explain_service"}),
        ("alice", 3, {"event": "bot", "text": catalogue.load().howto("report_lost_id"), "data": {}}),
        (
            "alice",
            4,
            {
                "event": "bot",
                "text": catalogue.load().labels["offer"],
                "data": {
                    "buttons": [
                        {"title": catalogue.load().labels["button_start"], "payload": "/affirm"},
                        {"title": catalogue.load().labels["button_no"], "payload": "/deny"},
                    ]
                },
            },
        ),
        ("alice", 5, _user("ابي اكلم موظف", "request_human", 0.99)),
        ("alice", 6, {"event": "bot", "text": catalogue.load().call_centre_text(), "data": {}}),
        ("alice", 7, {"event": "slot", "name": "handed_over", "value": True}),
        (
            "bob",
            10,
            _user(
                "زززز قققق",
                "nlu_fallback",
                0.45,
                [
                    {"name": "nlu_fallback", "confidence": 0.45},
                    {"name": "thank", "confidence": 0.28},
                    {"name": "affirm", "confidence": 0.24},
                ],
            ),
        ),
        ("bob", 11, {"event": "bot", "text": catalogue.load().labels["not_understood"], "data": {}}),
        # Handed over, then back with the bot: not waiting any more.
        ("carol", 20, _user("ابي موظف", "request_human", 0.97)),
        ("carol", 21, {"event": "slot", "name": "handed_over", "value": True}),
        ("carol", 22, {"event": "slot", "name": "handed_over", "value": False}),
        ("dave", 30, _user("ابغى احد يكلمني", "request_human", 0.95)),
        ("dave", 31, {"event": "slot", "name": "handed_over", "value": True}),
        (
            "dave",
            32,
            _user(
                "؟؟ ههه",
                "nlu_fallback",
                0.45,
                [{"name": "nlu_fallback", "confidence": 0.45}, {"name": "greet", "confidence": 0.31}],
            ),
        ),
    ]
    for sender, minutes, data in rows:
        data = {**data, "timestamp": T0 + minutes * 60}
        intent = data.get("parse_data", {}).get("intent", {}).get("name")
        yield [sender, data["event"], data["timestamp"], intent, data.get("name"), json.dumps(data)]
