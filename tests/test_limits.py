"""Limits on volume and webhook replays, the parts without servers: the limiter on a
clock the test moves, addresses, the size cap, and the store's delivery ids on both
engines. End to end through the channels: tests/test_channels.py."""

from datetime import datetime, timedelta, timezone

import pytest

from channels import limits, replays
from channels.limits import GO, QUIET, SLOW_DOWN, Limiter, Limits, Rate, parse_rates
from musaed import catalogue, store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def default_limits(clock) -> Limits:
    return Limits(parse_rates(limits.DEFAULT_SENDER_RATE), parse_rates(limits.DEFAULT_ADDRESS_RATE), clock=clock)


def test_the_default_rates_are_what_the_readme_says():
    assert parse_rates(limits.DEFAULT_SENDER_RATE) == [Rate(20, 10), Rate(60, 60)]
    assert parse_rates(limits.DEFAULT_ADDRESS_RATE) == [Rate(60, 10), Rate(300, 60)]
    assert limits.DEFAULT_MAX_BYTES == 4096
    with pytest.raises(ValueError):
        parse_rates("lots")


def test_a_sender_gets_20_in_any_10_s():
    clock = Clock()
    lim = Limiter(parse_rates("20/10s,60/60s"), clock)
    assert all(lim.allow("web:a") for _ in range(20))
    assert not lim.allow("web:a")
    assert lim.allow("web:b")  # someone else is not held up
    clock.now += 9.9
    assert not lim.allow("web:a")
    clock.now += 0.2  # the first 20 are over 10 s old
    assert all(lim.allow("web:a") for _ in range(20))  # the refused ones used up nothing
    assert not lim.allow("web:a")


def test_a_steady_sender_is_held_to_60_a_minute():
    clock = Clock()
    lim = Limiter(parse_rates("20/10s,60/60s"), clock)
    allowed = 0
    for _ in range(120):  # two a second for a minute: within 20 in any 10 s, over 60 a minute
        allowed += lim.allow("telegram:1")
        clock.now += 0.5
    assert allowed == 60


def test_drained_keys_are_forgotten():
    clock = Clock()
    lim = Limiter([Rate(2, 1)], clock)
    for n in range(limits._SWEEP_EVERY - 1):
        lim.allow(f"k{n}")
    assert len(lim) == limits._SWEEP_EVERY - 1
    clock.now += 2
    lim.allow("last")  # the sweep runs every _SWEEP_EVERY calls
    assert len(lim) == 1


def test_a_burst_is_told_to_slow_down_once():
    clock = Clock()
    lim = default_limits(clock)
    verdicts = [lim.check("rest:flood", "203.0.113.5") for _ in range(30)]
    assert verdicts[:20] == [GO] * 20
    assert verdicts[20:] == [SLOW_DOWN] + [QUIET] * 9
    clock.now += 10.1
    verdicts = [lim.check("rest:flood", "203.0.113.5") for _ in range(22)]
    assert verdicts == [GO] * 20 + [SLOW_DOWN, QUIET]  # a new burst is told again, once


def test_an_address_is_limited_across_its_senders():
    clock = Clock()
    lim = default_limits(clock)
    verdicts = [lim.check(f"web:{n}", "198.51.100.7") for n in range(65)]
    assert verdicts == [GO] * 60 + [SLOW_DOWN] * 5  # each sender hears it once
    assert lim.check("web:other", "198.51.100.8") == GO
    assert lim.check("web:other", None) == GO
    # This machine's own address is trusted, as tokenless REST is: only its senders are limited.
    assert [lim.check(f"web:local{n}", "127.0.0.1") for n in range(65)] == [GO] * 65


def test_a_message_refused_for_its_sender_does_not_count_against_its_address():
    clock = Clock()
    lim = default_limits(clock)
    assert [lim.check("rest:one", "198.51.100.9") for _ in range(100)].count(GO) == 20
    # The address let 20 through, not 100: 40 more senders still fit in its 60.
    assert [lim.check(f"rest:other{n}", "198.51.100.9") for n in range(41)] == [GO] * 40 + [SLOW_DOWN]


def test_the_size_cap_counts_utf8_bytes():
    lim = default_limits(Clock())
    assert not lim.too_long("a" * 4096)
    assert lim.too_long("a" * 4097)
    assert not lim.too_long("ه" * 2048)  # two bytes each: 4096
    assert lim.too_long("ه" * 2049)
    assert lim.too_long("ه" * 500_000)
    assert not lim.too_long(None)
    assert lim.too_long(["x" * 5000]) and not lim.too_long(12)  # a REST caller may send any JSON


def test_replies_are_in_the_persons_language():
    ar, en = catalogue.load("ar").labels, catalogue.load("en").labels
    assert limits.reply("too_long", "ابي اجدد هويتي " * 1000) == ar["too_long"]
    assert limits.reply("too_long", "I want to renew my id " * 1000) == en["too_long"]
    assert limits.reply("slow_down", "/affirm") == ar["slow_down"]
    assert limits.reply("slow_down", "hello there") == en["slow_down"] != ar["slow_down"]


@pytest.mark.parametrize(
    "peer, headers, expected",
    [
        ("203.0.113.9", {}, "203.0.113.9"),
        # Only a proxy on loopback is believed.
        ("203.0.113.9", {"X-Real-IP": "10.0.0.1"}, "203.0.113.9"),
        ("127.0.0.1", {"X-Real-IP": "198.51.100.4"}, "198.51.100.4"),
        ("127.0.0.1", {"X-Forwarded-For": "1.2.3.4, 198.51.100.4"}, "198.51.100.4"),
        ("127.0.0.1", {"X-Real-IP": "not an address"}, "127.0.0.1"),
        ("127.0.0.1", {}, "127.0.0.1"),
        ("::1", {"X-Real-IP": "2001:db8::1"}, "2001:db8::1"),
        (None, {}, None),
    ],
)
def test_client_address(peer, headers, expected):
    assert limits.client_address(peer, headers) == expected


def test_the_address_in_the_metadata_is_always_the_servers():
    assert limits.with_address({"musaed_address": "6.6.6.6", "x": 1}, "203.0.113.9") == {
        "musaed_address": "203.0.113.9",
        "x": 1,
    }
    assert limits.with_address({"musaed_address": "6.6.6.6"}, None) == {}
    assert limits.with_address("junk", "203.0.113.9") == {"musaed_address": "203.0.113.9"}


def test_old_webhook_bodies():
    now = 1_800_000_000
    assert not replays.too_old(now - 299, now)
    assert not replays.too_old(str(now - 10), now)  # WhatsApp sends a string
    assert replays.too_old(now - 301, now)
    assert replays.too_old(now - 365 * 86400, now)
    assert replays.too_old(None, now) and replays.too_old("soon", now)


def test_a_delivery_id_is_remembered_for_a_day(open_store):
    db = open_store()
    t0 = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)

    def seen(channel, delivery, at):
        return store.first_delivery(
            db, channel, delivery, at=store.now_iso(at), forget_before=store.now_iso(at - replays.REMEMBER)
        )

    assert "004_webhook_replays" in store.applied_migrations(db)
    assert seen("whatsapp", "wamid.A", t0)
    assert not seen("whatsapp", "wamid.A", t0 + timedelta(hours=23))
    assert seen("telegram", "wamid.A", t0)  # each channel its own ids
    assert seen("whatsapp", "wamid.B", t0 + timedelta(hours=1))
    # A day later it is forgotten (and the table does not grow without end).
    assert seen("whatsapp", "wamid.A", t0 + timedelta(days=1, minutes=1))
    rows = db.execute("SELECT channel, delivery_id FROM webhook_deliveries ORDER BY channel, delivery_id").fetchall()
    assert [tuple(r) for r in rows] == [("whatsapp", "wamid.A"), ("whatsapp", "wamid.B")]


# -- tokenless REST on loopback: trusted local callers ----------------------------


@pytest.mark.e2e
def test_open_rest_on_loopback_has_no_address_and_no_rate_limit(servers):
    import json
    import sqlite3
    import uuid

    import requests

    sender = f"local-{uuid.uuid4().hex[:8]}"
    url = f"{servers.url}/webhooks/rest/webhook"
    forged = {"musaed_address": "6.6.6.6"}
    replies = [
        requests.post(url, json={"sender": sender, "message": "مرحبا", "metadata": forged}, timeout=60).json()
        for _ in range(22)
    ]
    slow_down = catalogue.load().labels["slow_down"]
    assert all(r and r[0]["text"] != slow_down for r in replies)  # past 20 in 10 s: still answered
    conn = sqlite3.connect(servers.tracker_db)
    rows = conn.execute(
        "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'", [f"rest:{sender}"]
    ).fetchall()
    conn.close()
    assert len(rows) == 22
    assert all("musaed_address" not in (json.loads(d).get("metadata") or {}) for (d,) in rows)
    # Too long is too long on every channel.
    assert (
        requests.post(url, json={"sender": sender, "message": "hello " * 1000}, timeout=60).json()[0]["text"]
        == (catalogue.load("en").labels["too_long"])
    )


# -- the cluster's nginx: limits per address in front of the replicas -------------


class Upstream:
    """A stand-in for the Rasa replicas behind nginx: answers every request with the X-Real-IP it got."""

    def __enter__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = (self.headers.get("X-Real-IP") or "").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def front(tmp_path):
    """nginx with scripts/cluster.py's configuration, its Rasa upstream a stand-in; its port."""
    import shutil
    import subprocess
    import time

    if not shutil.which("nginx"):
        pytest.fail("nginx is missing: `make install` installs it (scripts/backing.py)")
    from scripts.cluster import nginx_conf
    from scripts.servers import free_port

    for sub in ("run", "logs", "nginx"):
        (tmp_path / sub).mkdir()
    port = free_port()
    with Upstream() as upstream:
        conf = tmp_path / "nginx.conf"
        conf.write_text(nginx_conf(tmp_path, port, free_port(), [upstream.port], [free_port()], free_port(), 0))
        proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(tmp_path / "run"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while get(port, "/webhooks/rest/")[0] != 200:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "logs" / "nginx.log"
                ).read_text()
                time.sleep(0.1)
            yield port
        finally:
            proc.terminate()
            proc.wait(20)


def get(port: int, path: str, source: str = "127.0.0.1") -> tuple:
    """(status, body) of a GET through nginx from `source` (any 127.x address is this machine's loopback)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    except OSError:
        return 0, ""
    finally:
        conn.close()


@pytest.mark.e2e
def test_nginx_limits_each_outside_address_on_rest_but_not_this_machine_nor_the_messengers(front):
    outside = [get(front, "/webhooks/rest/", "127.0.0.2") for _ in range(100)]
    statuses = [s for s, _ in outside]
    assert 60 <= statuses.count(200) <= 75 and statuses.count(429) == 100 - statuses.count(200), statuses
    assert statuses[:60] == [200] * 60  # a burst of 60 goes through at once
    assert outside[0][1] == "127.0.0.2"  # the replicas are told who the client is
    # Another address has its own allowance; this machine and Telegram's webhook have none.
    assert get(front, "/webhooks/rest/", "127.0.0.3")[0] == 200
    assert [get(front, "/webhooks/rest/")[0] for _ in range(100)] == [200] * 100
    assert [get(front, "/webhooks/telegram/", "127.0.0.2")[0] for _ in range(100)] == [200] * 100


def post(port: int, path: str, body: bytes) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


@pytest.mark.e2e
def test_nginx_lets_a_document_through_to_the_app_and_still_stops_large_bodies_elsewhere(front):
    """Bodies past 1 MB stop at nginx, but a document may be 5 MB (MUSAED_MAX_DOCUMENT_MB): its two
    routes take up to 8 MB, and the app reads no further than the limit and says why (issue 31)."""
    six = b"x" * (6 * 1024 * 1024)
    assert post(front, "/webhooks/socketio/document", six) == 200
    assert post(front, "/webhooks/rest/document", six) == 200
    assert post(front, "/webhooks/rest/webhook", six) == 413
    assert post(front, "/webhooks/socketio/document", b"x" * (9 * 1024 * 1024)) == 413
