"""Notifications (issue 30): the outbox, its worker and the rules of when and how, without Rasa.

The store on SQLite and PostgreSQL; the worker in this process against the fake Telegram,
Graph and SMS APIs on loopback (tests/fake_apis.py), with the clock given to it: a reminder
a month ahead, quiet hours and back-offs are times passed in, never waited for. Two real
worker processes, one killed mid-send, on PostgreSQL at the end.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from musaed import catalogue, help_desk, notifications, retention, seed, sms, store
from musaed.notify_worker import Senders, Telegram, WhatsApp, Worker
from musaed.store import notifications as outbox

from fake_apis import BOT_TOKEN, FakeGraph, FakeSms, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
ID = seed.ids()
TODAY = date.today()  # the seed's dates are relative to it (Khalid's ID expires in 30 days)
WA_TOKEN, WA_PHONE = "EAAGfakeAccessToken", "106540352242922"
KHALID_MOBILE = "0551000001"
NONE_QUIET = notifications.QuietHours()
FAST = notifications.RetryPolicy(attempts=3, first=timedelta(seconds=30), longest=timedelta(hours=1))
# A whole id, a dependent's or the person's name: never in what a notification says.
PERSONAL = re.compile(r"\d{10}|أمل|خالد|سعود|ريم|Amal|Khalid")


def riyadh(hour: int, minute: int = 0, days: int = 1) -> datetime:
    """That time, Asia/Riyadh, `days` after today (in the future: rows made now are due then)."""
    day = notifications.today_in_riyadh() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=notifications.RIYADH).astimezone(timezone.utc)


@pytest.fixture
def db(open_store):
    db = open_store()
    seed.seed(db)
    return db


@pytest.fixture
def tg():
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
def graph():
    fake = FakeGraph(WA_TOKEN, WA_PHONE, enforce_window=True).start()
    yield fake
    fake.stop()


@pytest.fixture
def gateway():
    fake = FakeSms().start()
    yield fake
    fake.stop()


def worker(db, tg=None, graph=None, gateway=None, quiet=NONE_QUIET, retry=FAST, languages="ar,en") -> Worker:
    senders = Senders(
        telegram=Telegram(BOT_TOKEN, tg.url) if tg else None,
        whatsapp=WhatsApp(WA_TOKEN, WA_PHONE, graph.url + "/v19.0", "musaed_notice", languages) if graph else None,
        sms=sms.HttpGateway(gateway.sms_url) if gateway else sms.OutboxOnly(),
    )
    return Worker(db, senders, name="worker-a", quiet=quiet, retry=retry)


def new_request(
    db, who="khalid", service="renew_national_id", beneficiary=None, conversation="telegram:700100", lang="ar"
):
    request, created = store.create_request(
        db,
        service_id=service,
        applicant_id=ID[who],
        beneficiary_id=ID[beneficiary or who],
        conversation_id=conversation,
        language=lang,
    )
    assert created
    return request["tracking_number"]


def rows(db, **where):
    found = list(db.query("SELECT * FROM notifications ORDER BY id"))
    return [r for r in found if all(r[k] == v for k, v in where.items())]


# -- the outbox and the status change ------------------------------------------------------


def test_a_status_change_and_its_notification_are_one_transaction(db):
    number = new_request(db)
    help_desk.change_status(db, number, "approved", "huda")
    [row] = rows(db)
    assert row["kind"] == "status" and row["state"] == "queued" and row["tracking_number"] == number
    assert row["conversation"] == "telegram:700100" and row["channel"] == "telegram"
    assert json.loads(row["payload"]) == {"service": "renew_national_id", "status": "approved"}
    event = store.request_events(db, number)[-1]
    assert row["dedupe_key"] == f"status:{number}:{event['id']}"  # one change, announced once
    help_desk.change_status(db, number, "printed", "huda")
    assert [r["tracking_number"] for r in rows(db)] == [number, number]
    # A refused change announces nothing.
    with pytest.raises(help_desk.CareError):
        help_desk.change_status(db, number, "rejected", "huda")  # no reason
    assert len(rows(db)) == 2
    # The announcement cannot be lost while the change stays: a failing enqueue undoes the change.
    with pytest.raises(ZeroDivisionError):
        store.set_request_status(db, number, "out_for_delivery", actor="agent:huda", notice=lambda r, e: 1 / 0)
    assert store.get_request(db, number)["status"] == "printed" and len(rows(db)) == 2
    assert [e["status"] for e in store.request_events(db, number)] == ["submitted", "approved", "printed"]


def test_one_dedupe_key_is_queued_once(db):
    row = notifications.status_notice(
        {
            "tracking_number": "MSD-00000001",
            "conversation_id": "rest:x",
            "applicant_id": ID["khalid"],
            "service_id": "renew_national_id",
        },
        "approved",
        event_id=7,
    )
    assert outbox.enqueue(db, row) is True
    assert outbox.enqueue(db, row) is False
    assert len(rows(db)) == 1 and rows(db)[0]["language"] == "ar"


def test_one_row_one_sender_however_many_race_for_it(open_store):
    db = open_store()
    seed.seed(db)
    help_desk.change_status(db, new_request(db), "approved", "huda")
    [row] = rows(db)
    now = datetime.now(timezone.utc)
    won, barrier = [], threading.Barrier(8)

    def race(n):
        mine = open_store()  # each sender its own connection, as each process has
        barrier.wait()
        if outbox.claim(mine, row["id"], f"sender-{n}", store.now_iso(now), store.now_iso(now + timedelta(seconds=60))):
            won.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    later = now + timedelta(seconds=30)
    assert not outbox.claim(db, row["id"], "late", store.now_iso(later), store.now_iso(later + timedelta(seconds=60)))
    # The holder died: once its lease runs out, another takes the row (and the dead one can no longer mark it).
    after = now + timedelta(seconds=61)
    assert outbox.claim(db, row["id"], "heir", store.now_iso(after), store.now_iso(after + timedelta(seconds=60)))
    assert not outbox.mark_sent(db, row["id"], f"sender-{won[0]}", "telegram", store.now_iso(after))
    assert outbox.mark_sent(db, row["id"], "heir", "telegram", store.now_iso(after))
    assert outbox.get(db, row["id"])["attempts"] == 2


# -- what is said ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_what_a_notification_says_is_the_service_and_its_state_only(db, lang):
    cat = catalogue.load(lang)
    for status in help_desk.AGENT_STATUSES:
        row = {"kind": "status", "language": lang, "payload": {"service": "renew_resident_id", "status": status}}
        said = notifications.render(row)
        assert cat.services["renew_resident_id"].name in said["text"] and cat.status_text(status) in said["text"]
        assert said["buttons"] == [{"title": cat.labels["button_track"], "payload": "/track_request"}]
    notifications.subscribe(db, ID["khalid"], "telegram:700100", lang, today=TODAY)
    for row in rows(db, kind="reminder"):
        said = notifications.render(row)
        assert not PERSONAL.search(said["text"]), said["text"]
        assert re.search(r"\b(30|20)\b", said["text"])


# -- reminders -----------------------------------------------------------------------------


def test_a_reminder_for_khalids_id_with_the_clock_moved(db, tg):
    # He says yes: what is due today is queued at once (his ID in 30 days, his wife's iqama in 20).
    now = riyadh(10)
    assert notifications.subscribe(db, ID["khalid"], "telegram:700200", "ar", now=now, today=TODAY) == 2
    reminders = rows(db, kind="reminder")
    assert [json.loads(r["payload"])["days"] for r in reminders] == [30, 20]
    assert worker(db, tg=tg).run_once(now) == 2
    sent = [c["params"] for c in tg.delivered("700200")]
    assert len(sent) == 2
    own, wife = sent
    assert "هويتك الوطنية" in own["text"] and "30" in own["text"] and "أبشر" not in own["text"]
    assert own["reply_markup"]["inline_keyboard"] == [[{"text": "جدّد الآن", "callback_data": "/renew_national_id"}]]
    assert "(الزوجة)" in wife["text"] and "20" in wife["text"]
    assert (
        wife["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == '/renew_resident_id{"family_member": "wife"}'
    )
    assert not PERSONAL.search(own["text"] + wife["text"])
    # The daily job again, the same day and the next: nothing twice.
    assert notifications.scan_reminders(db, TODAY, now) == 0
    assert notifications.scan_reminders(db, TODAY + timedelta(days=1), now) == 0
    # 23 days on his ID has 7 days left: the second window, once; his wife's has expired: no reminder.
    assert notifications.scan_reminders(db, TODAY + timedelta(days=23), now) == 1
    assert notifications.scan_reminders(db, TODAY + timedelta(days=23), now) == 0
    assert notifications.scan_reminders(db, TODAY + timedelta(days=24), now) == 0
    [late] = rows(db, kind="reminder", state="queued")
    assert json.loads(late["payload"])["days"] == 7 and json.loads(late["payload"])["window"] == 7
    # A renewed card (a new expiry) is a new document: reminded again in its own time only.
    db.execute(
        "UPDATE people SET id_expiry = ? WHERE national_id = ?",
        [(TODAY + timedelta(days=3650)).isoformat(), ID["khalid"]],
    )
    assert notifications.scan_reminders(db, TODAY + timedelta(days=25), now) == 0
    # Nobody who did not say yes is reminded: Fahd's ID expires in 60 days, Noura's in 45.
    assert {r["national_id"] for r in rows(db, kind="reminder")} == {ID["khalid"]}


def test_the_worker_queues_the_days_reminders_once_a_day(db, gateway):
    outbox.subscribe(db, ID["khalid"], "rest:k", "rest", "en", store.now_iso())
    w = worker(db, gateway=gateway)
    assert w.daily(riyadh(0, 5)) == 2
    assert w.daily(riyadh(23, 55)) == 0  # the same day (Riyadh): not scanned again
    assert w.run_once(riyadh(9)) == 2  # REST has no push: SMS, in English
    texts = gateway.sent_to(KHALID_MOBILE)
    assert len(texts) == 2 and all(t.startswith("Musaed:") for t in texts), texts


def test_opting_out_stops_them_at_once(db, tg):
    notifications.subscribe(db, ID["khalid"], "telegram:700300", "ar", now=riyadh(10))
    assert len(rows(db, kind="reminder", state="queued")) == 2
    # «أوقف التنبيهات» in that chat (no code needed): the subscription and what it queued go.
    assert notifications.unsubscribe(db, "telegram:700300") is True
    assert rows(db, kind="reminder") == [] and not notifications.subscribed(db, ID["khalid"])
    assert notifications.scan_reminders(db, TODAY, riyadh(10)) == 0
    assert notifications.scan_reminders(db, TODAY + timedelta(days=23), riyadh(10)) == 0
    assert worker(db, tg=tg).run_once(riyadh(10)) == 0 and tg.delivered() == []
    # Nothing to stop: said so (the action's "none" reply).
    assert notifications.unsubscribe(db, "telegram:700300") is False
    # Stopped from another conversation once verified: found by the person.
    notifications.subscribe(db, ID["khalid"], "telegram:700300", "ar", now=riyadh(10))
    assert notifications.unsubscribe(db, "web:other", ID["khalid"]) is True


def test_quiet_hours_hold_phones_until_they_end(db, tg):
    quiet = notifications.parse_quiet("22:00-08:00")
    help_desk.change_status(db, new_request(db, conversation="telegram:700400"), "approved", "huda")
    w = worker(db, tg=tg, quiet=quiet)
    assert w.run_once(riyadh(23)) == 1  # postponed
    [row] = rows(db)
    assert (
        row["state"] == "queued"
        and row["attempts"] == 0
        and row["next_attempt_at"] == store.now_iso(riyadh(8, 0, days=2))
    )
    assert w.run_once(riyadh(7, 59, days=2)) == 0 and tg.delivered() == []
    assert w.run_once(riyadh(8, 0, days=2)) == 1
    assert len(tg.delivered("700400")) == 1 and rows(db)[0]["state"] == "sent"
    assert quiet.until(riyadh(12)) is None and quiet.until(riyadh(3)) == riyadh(8)
    assert notifications.parse_quiet("none").until(riyadh(23)) is None
    with pytest.raises(ValueError):
        notifications.parse_quiet("late")


def test_a_widget_open_in_quiet_hours_gets_it_and_no_sms_follows(tmp_path, monkeypatch, gateway):
    from channels import care_delivery

    db = store.open_db(tmp_path / "musaed.db")
    seed.seed(db)
    monkeypatch.setenv("MUSAED_DB", str(tmp_path / "musaed.db"))
    now = datetime.now(timezone.utc)
    local = now.astimezone(notifications.RIYADH)
    around_now = f"{(local - timedelta(hours=1)):%H:%M}-{(local + timedelta(hours=1)):%H:%M}"
    monkeypatch.setenv("MUSAED_QUIET_HOURS", around_now)  # it is quiet now
    help_desk.change_status(db, new_request(db, conversation="web:open"), "approved", "huda")
    help_desk.change_status(
        db, new_request(db, who="sara", service="report_lost_id", conversation="web:closed"), "approved", "huda"
    )
    pushed = []

    async def push(message):
        pushed.append(message)

    sent = asyncio.run(care_delivery.deliver_once("web", push, lambda c: c == "web:open", notices=True))
    assert sent == 1 and [m["conversation"] for m in pushed] == ["web:open"]
    assert pushed[0]["side"] == "system" and "تمت الموافقة" in pushed[0]["text"]
    assert json.loads(pushed[0]["buttons"])[0]["payload"] == "/track_request"
    assert [(r["conversation"], r["state"], r["route"]) for r in rows(db)] == [
        ("web:open", "sent", "widget"),
        ("web:closed", "queued", None),
    ]
    # The closed widget's: the worker's, after the grace, by SMS, once quiet hours end.
    w = worker(db, gateway=gateway, quiet=notifications.quiet_from_env())
    assert w.run_once(now + notifications.WEB_GRACE - timedelta(seconds=2)) == 0
    assert w.run_once(now + notifications.WEB_GRACE + timedelta(seconds=1)) == 1  # postponed: quiet
    assert gateway.snapshot() == []
    assert w.run_once(now + timedelta(hours=1, minutes=2)) == 1
    assert len(gateway.sent_to("0551000005")) == 1 and gateway.sent_to(KHALID_MOBILE) == []
    assert asyncio.run(care_delivery.deliver_once("web", push, lambda c: True, notices=True)) == 0  # sent once


# -- the channels' rules -----------------------------------------------------------------


def test_whatsapp_past_24_hours_gets_the_approved_template(db, graph):
    wa_id = "966500000001"
    conversation = f"whatsapp:{wa_id}"
    number = new_request(db, conversation=conversation, lang="en")
    w = worker(db, graph=graph)
    # Never wrote (or wrote 25 hours ago): only the template goes.
    help_desk.change_status(db, number, "approved", "huda")
    assert w.run_once(riyadh(10)) == 1
    [template] = graph.delivered(wa_id)
    assert template["type"] == "template" and "text" not in template and "interactive" not in template
    assert [c["json"]["type"] for c in graph.snapshot()] == ["template"]  # nothing else was even tried
    assert template["template"]["name"] == "musaed_notice" and template["template"]["language"] == {"code": "en"}
    [parameter] = template["template"]["components"][0]["parameters"]
    assert "Approved" in parameter["text"] and "Renew National ID" in parameter["text"]
    assert rows(db)[0]["route"] == "whatsapp_template"
    # Wrote an hour ago (the channel records it; WhatsApp knows it too): an interactive message.
    outbox.record_inbound(db, conversation, store.now_iso(riyadh(9)))
    graph.last_inbound[wa_id] = time.time()
    help_desk.change_status(db, number, "printed", "huda")
    assert w.run_once(riyadh(10)) == 1
    interactive = graph.delivered(wa_id)[-1]
    assert interactive["type"] == "interactive"
    assert interactive["interactive"]["action"]["buttons"][0]["reply"] == {
        "id": "/track_request",
        "title": "Track the request",
    }
    assert rows(db)[-1]["route"] == "whatsapp"
    # The window closing during the send (WhatsApp says 131047): the template, in the same attempt.
    del graph.last_inbound[wa_id]
    help_desk.change_status(db, number, "out_for_delivery", "huda")
    assert w.run_once(riyadh(10)) == 1
    assert [c["json"]["type"] for c in graph.snapshot()[-2:]] == ["interactive", "template"]
    assert rows(db)[-1]["state"] == "sent" and rows(db)[-1]["route"] == "whatsapp_template"
    # Just inside 24 hours counts as outside (the send takes time too): the template.
    outbox.record_inbound(db, conversation, store.now_iso(riyadh(10) - timedelta(hours=23, minutes=55)))
    assert notifications.window_open(outbox.contact(db, conversation), riyadh(10)) is False
    assert notifications.window_open(outbox.contact(db, conversation), riyadh(10) - timedelta(hours=1)) is True


def test_a_template_not_approved_fails_with_why(db, graph):
    graph.templates = {"musaed_notice": {"ar"}}  # approved in Arabic only (WHATSAPP_TEMPLATE_LANGUAGE=ar)
    help_desk.change_status(db, new_request(db, conversation="whatsapp:966500000002", lang="en"), "approved", "huda")
    assert worker(db, graph=graph, languages="ar").run_once(riyadh(10)) == 1
    assert graph.delivered("966500000002")[0]["template"]["language"] == {"code": "ar"}
    graph.templates = {}
    help_desk.change_status(
        db,
        new_request(db, who="sara", service="report_lost_id", conversation="whatsapp:966500000003"),
        "approved",
        "huda",
    )
    worker(db, graph=graph).run_once(riyadh(10))
    failed = rows(db, state="failed")
    assert len(failed) == 1 and failed[0]["last_error"] == "whatsapp: HTTP 404, error 132001"


def test_a_blocked_telegram_chat_gets_no_more_sends(db, tg, gateway):
    tg.blocked = {"700500"}
    sub = {"national_id": ID["khalid"], "conversation": "telegram:700500", "channel": "telegram", "language": "ar"}
    notifications.subscribe(db, ID["khalid"], "telegram:700500", "ar", today=TODAY)  # two reminders queued
    number = new_request(db, conversation="telegram:700500")
    help_desk.change_status(db, number, "approved", "huda")
    w = worker(db, tg=tg, gateway=gateway)
    w.run_once(riyadh(10))
    # The first reminder meets the 403: the chat is marked blocked and the subscription ends (the
    # other reminder with it); the status change goes by SMS instead.
    assert len([c for c in tg.snapshot() if c["method"] == "sendMessage"]) == 1
    assert outbox.contact(db, "telegram:700500")["blocked_at"] is not None
    assert not notifications.subscribed(db, ID["khalid"])
    assert [(r["kind"], r["state"], r["route"]) for r in rows(db)] == [
        ("reminder", "failed", "telegram"),
        ("status", "sent", "sms"),
    ]
    assert rows(db, state="failed")[0]["last_error"] == "telegram: the chat blocked the bot (HTTP 403)"
    # Nothing more goes to that chat: a status change by SMS, a reminder not at all.
    help_desk.change_status(db, number, "printed", "huda")
    for row in notifications.reminder_notices(db, sub, TODAY):
        outbox.enqueue(db, row)  # one queued before the block was known
    w.run_once(riyadh(10))
    assert len([c for c in tg.snapshot() if c["method"] == "sendMessage"]) == 1
    assert len(gateway.sent_to(KHALID_MOBILE)) == 2
    assert rows(db)[-1]["state"] == "failed" and rows(db)[-1]["route"] == "blocked"
    # They unblock the bot and write: the chat is written to again.
    tg.blocked = set()
    outbox.record_inbound(db, "telegram:700500", store.now_iso(riyadh(10)))
    help_desk.change_status(db, number, "out_for_delivery", "huda")
    w.run_once(riyadh(10))
    assert len(tg.delivered("700500")) == 1


def test_a_failing_send_is_tried_again_later_and_later_then_failed_with_why(db, tg, tmp_path):
    tg.fail_with = 500
    help_desk.change_status(db, new_request(db, conversation="telegram:700600"), "approved", "huda")
    w = worker(db, tg=tg)
    t0 = riyadh(10)
    tries = lambda: len([c for c in tg.snapshot() if c["method"] == "sendMessage"])  # noqa: E731
    assert w.run_once(t0) == 1 and tries() == 1
    [row] = rows(db)
    assert (
        row["state"] == "queued"
        and row["attempts"] == 1
        and row["next_attempt_at"] == store.now_iso(t0 + timedelta(seconds=30))
    )
    assert row["last_error"] == "telegram: HTTP 500"
    assert w.run_once(t0 + timedelta(seconds=29)) == 0 and tries() == 1
    assert w.run_once(t0 + timedelta(seconds=30)) == 1 and tries() == 2
    assert rows(db)[0]["next_attempt_at"] == store.now_iso(t0 + timedelta(seconds=90))  # the wait doubled
    assert w.run_once(t0 + timedelta(seconds=89)) == 0 and tries() == 2
    assert w.run_once(t0 + timedelta(seconds=90)) == 1 and tries() == 3
    [row] = rows(db)
    assert row["state"] == "failed" and row["attempts"] == 3 and row["last_error"] == "telegram: HTTP 500"
    assert w.run_once(t0 + timedelta(hours=5)) == 0 and tries() == 3
    # Customer care sees it: per channel, and the failed one with why.
    overview = help_desk.notification_overview(db, "huda")
    assert overview["channels"] == [{"channel": "telegram", "queued": 0, "sent": 0, "failed": 1}]
    [failed] = overview["failed"]
    assert failed["last_error"] == "telegram: HTTP 500" and failed["attempts"] == 3 and failed["about"] == "approved"
    assert store.care_audit(db, agent="huda")[0]["action"] == "read_notifications"


def test_a_refusal_that_will_not_change_fails_at_once(db, tg):
    tg.fail_with = 400  # "chat not found": trying again will not help
    help_desk.change_status(db, new_request(db, conversation="telegram:700700"), "approved", "huda")
    worker(db, tg=tg).run_once(riyadh(10))
    [row] = rows(db)
    assert row["state"] == "failed" and row["attempts"] == 1 and row["last_error"] == "telegram: HTTP 400"


def test_sms_when_no_chat_can_take_it(db, gateway):
    # REST has no push; a channel not configured here; the SMS gateway takes both.
    help_desk.change_status(db, new_request(db, conversation="rest:someone"), "approved", "huda")
    help_desk.change_status(
        db, new_request(db, who="sara", service="report_lost_id", conversation="telegram:1"), "approved", "huda"
    )
    w = worker(db, gateway=gateway)
    assert w.run_once(riyadh(10)) == 2
    assert len(gateway.sent_to(KHALID_MOBILE)) == 1 and len(gateway.sent_to("0551000005")) == 1
    assert {r["route"] for r in rows(db)} == {"sms"}
    # The gateway down: tried again; no gateway at all (development): recorded, nothing leaves.
    gateway.fail_with = 503
    help_desk.change_status(db, store.requests_of_person(db, ID["khalid"])[0]["tracking_number"], "printed", "huda")
    w.run_once(riyadh(10))
    assert rows(db)[-1]["state"] == "queued" and rows(db)[-1]["last_error"] == "sms: HTTP 503"
    worker(db).run_once(riyadh(11))
    assert rows(db)[-1]["state"] == "sent" and rows(db)[-1]["route"] == "sms_outbox"


def test_settings_parse_and_refuse_what_they_cannot_read():
    assert notifications.parse_retry(None) == notifications.RetryPolicy()
    policy = notifications.parse_retry("attempts=4, first=2s, max=5s")
    assert [policy.wait_after(n) for n in (1, 2, 3, 4)] == [
        timedelta(seconds=2),
        timedelta(seconds=4),
        timedelta(seconds=5),
        None,
    ]
    assert notifications.parse_retry("first=250ms").first == timedelta(milliseconds=250)
    for wrong in ("attempts=0", "tries=3", "first=soon"):
        with pytest.raises(ValueError):
            notifications.parse_retry(wrong)
    assert notifications.parse_quiet("23:30-06:00").until(riyadh(1)) == riyadh(6)
    assert notifications.window_for(30, [30, 7]) == 30 and notifications.window_for(5, [30, 7]) == 7
    assert notifications.window_for(31, [30, 7]) is None and notifications.window_for(-1, [30, 7]) is None


def test_retention_keeps_notifications_only_as_long_as_their_purpose(db):
    now = datetime.now(timezone.utc)
    number = new_request(db)
    help_desk.change_status(db, number, "approved", "huda")
    help_desk.change_status(db, number, "printed", "huda")
    first, second = rows(db)
    outbox.claim(db, first["id"], "w", store.now_iso(now), store.now_iso(now + timedelta(minutes=1)))
    outbox.mark_sent(db, first["id"], "w", "telegram", store.now_iso(now))
    outbox.record_inbound(db, "whatsapp:1", store.now_iso(now - timedelta(days=2)))
    outbox.record_inbound(db, "whatsapp:2", store.now_iso(now - timedelta(hours=2)))
    outbox.mark_blocked(db, "telegram:3", store.now_iso(now - timedelta(days=10)))
    policy = retention.parse("notifications=7d")
    counts = retention.purge_records(db, policy, now + timedelta(days=8))
    # The sent one is gone; the queued one is still owed; a last message past the window tells
    # nothing; a blocked chat is kept (as long as verified conversations).
    assert counts["notifications"] == 1 and [r["id"] for r in rows(db)] == [second["id"]]
    assert counts["messenger_contacts"] == 2
    assert outbox.contact(db, "telegram:3") is not None and outbox.contact(db, "whatsapp:1") is None
    assert retention.Policy().notifications == timedelta(days=30)
    assert retention.parse(retention.DEFAULT) == retention.Policy()


def test_musaed_care_notifications_lists_each_channel_and_the_failed_with_why(tmp_path):
    db = store.open_db(tmp_path / "musaed.db")
    seed.seed(db)
    help_desk.change_status(db, new_request(db, conversation="telegram:1"), "approved", "huda")
    [row] = rows(db)
    now = store.now_iso()
    outbox.claim(db, row["id"], "w", now, now)
    outbox.mark_failed(db, row["id"], "w", "telegram: HTTP 500", "telegram")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MUSAED_DB": str(tmp_path / "musaed.db"),
        "MUSAED_CARE_TOKENS": "huda:tok-huda-1234567890",
        "MUSAED_CARE_TOKEN": "tok-huda-1234567890",
        "MUSAED_CARE_LOG": str(tmp_path / "cli.log"),
    }
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "care.cli", "notifications", *a], cwd=ROOT, env=env, capture_output=True, text=True
    )
    shown = run()
    assert shown.returncode == 0, shown.stderr
    assert "telegram | 0 | 0 | 1" in shown.stdout and "telegram: HTTP 500" in shown.stdout
    assert row["tracking_number"] in shown.stdout
    data = json.loads(run("--json").stdout)
    assert data["failed"][0]["last_error"] == "telegram: HTTP 500"
    env["MUSAED_CARE_TOKEN"] = "wrong"
    assert run().returncode == 2  # an agent's token, as for every care command


# -- two workers, one killed mid-send (PostgreSQL, real processes) -------------------------------


def test_two_workers_one_killed_mid_send_each_notification_goes_once(pg_url, tg, tmp_path):
    db = store.open_db(url=pg_url)
    seed.seed(db)
    people = ["khalid", "sara", "fahd", "noura", "abdullah", "ahmed"]
    for n, who in enumerate(people):
        help_desk.change_status(db, new_request(db, who=who, conversation=f"telegram:{800000 + n}"), "approved", "huda")
    tg.hold = 2.0  # each send waits for its answer: long enough to kill a worker in it
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MUSAED_DATABASE_URL": pg_url,
        "TELEGRAM_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_URL": tg.url,
        "MUSAED_QUIET_HOURS": "none",
    }
    env.pop("MUSAED_DB", None)
    procs = {}
    for name in ("a", "b"):
        log = open(tmp_path / f"notify-{name}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "musaed.notify_worker", "--poll", "0.1", "--lease", "4"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs[proc.pid] = proc
    try:
        # Both sending; kill one while the API holds its request.
        deadline = time.monotonic() + 30
        victim = None
        while victim is None and time.monotonic() < deadline:
            held = [r for r in rows(db, state="queued") if r["leased_by"]]
            pids = {int(r["leased_by"].rsplit(":", 1)[1]) for r in held}
            if tg.in_flight >= 2 and len(pids) == 2:
                victim = sorted(pids)[0]
            time.sleep(0.05)
        assert victim is not None, "the two workers did not both send at once"
        os.kill(victim, signal.SIGKILL)
        procs[victim].wait(10)
        deadline = time.monotonic() + 60
        while rows(db, state="queued") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rows(db, state="queued") == []
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)
    # The killed worker's send never got its answer; the other sent it after the lease.
    assert len(tg.abandoned) >= 1
    for n in range(len(people)):
        assert len(tg.delivered(800000 + n)) == 1, (n, tg.delivered(800000 + n))
    assert {r["state"] for r in rows(db)} == {"sent"}
    taken_over = [r for r in rows(db) if r["attempts"] == 2]  # tried by the victim, sent by the survivor
    assert len(taken_over) == len(tg.abandoned)
    assert all(r["leased_by"] is None and r["route"] == "telegram" for r in rows(db))
