"""Notifications end to end (issue 30): real Rasa and action servers, the care server, the web page and
the notify worker, each in its own process; the widget in Chromium; fake Telegram, Graph and SMS APIs
on loopback (tests/fake_apis.py).

An agent's status change reaches each channel once; over REST a verified person is offered
reminders, takes them (the due ones arrive by SMS) and stops them; on Telegram «أوقف التنبيهات»
is confirmed at once. The worker runs with MUSAED_QUIET_HOURS=none (quiet hours, back-offs and
the clock are tests/test_notifications.py's).
"""

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from test_live_handover import wait_for_port  # the same servers' start-up wait

from musaed import catalogue, seed, store
from musaed.store import notifications as outbox
from scripts import credentials
from scripts.servers import MODEL, Servers, free_port

from conftest import Conversation
from fake_apis import BOT_TOKEN, BOT_USERNAME, FakeGraph, FakeSms, FakeTelegram

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "notify"
ID = seed.ids()
AR, EN = catalogue.load("ar"), catalogue.load("en")
TOKENS = {"huda": "huda-token-for-notifications-0123456789"}
WA_TOKEN, WA_PHONE, WA_SECRET, WA_VERIFY = "EAAGfakeAccessToken", "106540352242922", "fake-app-secret", "verify-me"
TG_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The fakes, the bot with Telegram and WhatsApp on, the care server, the page and the worker."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train`")
    tg, graph, gateway = (
        FakeTelegram().start(),
        FakeGraph(WA_TOKEN, WA_PHONE, enforce_window=True).start(),
        FakeSms().start(),
    )
    rasa_port, web_port, care_port = free_port(), free_port(), free_port()
    channels = {
        "TELEGRAM_TOKEN": BOT_TOKEN,
        "TELEGRAM_VERIFY": BOT_USERNAME,
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{rasa_port}/webhooks/telegram/webhook",
        "TELEGRAM_API_URL": tg.url,
        "WHATSAPP_ACCESS_TOKEN": WA_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": WA_PHONE,
        "WHATSAPP_APP_SECRET": WA_SECRET,
        "WHATSAPP_VERIFY_TOKEN": WA_VERIFY,
        "WHATSAPP_API_URL": graph.url + "/v19.0",
    }
    creds = tmp_path_factory.mktemp("creds") / "credentials.yml"
    assert credentials.write(channels, creds) == []
    db_file = tmp_path_factory.mktemp("notify-db") / "musaed.db"
    seed.seed(store.open_db(db_file))
    logs = tmp_path_factory.mktemp("notify-logs")
    env = {"MUSAED_DB": str(db_file), "MUSAED_WEB_ORIGINS": f"http://127.0.0.1:{web_port}"}
    bot = Servers(rasa_port=rasa_port, action_port=free_port(), credentials=creds, log_dir=logs, env=env).start()
    base = {
        **os.environ,
        **env,
        "PYTHONPATH": str(ROOT),
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    procs = []

    def spawn(name, cmd, extra):
        log = logs / f"{name}.log"
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**base, **extra},
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc, log

    care, care_log = spawn(
        "care",
        [sys.executable, "-m", "care.server", "--port", str(care_port), "--tracker-db", str(bot.tracker_db)],
        {"MUSAED_CARE_TOKENS": ",".join(f"{n}:{t}" for n, t in TOKENS.items())},
    )
    spawn("web", [sys.executable, "-m", "web.serve", "--port", str(web_port), "--rasa-url", bot.url], {})
    # The worker has the channels' secrets and the SMS gateway; the bot's own codes stay in the outbox.
    worker, _ = spawn(
        "notify",
        [sys.executable, "-m", "musaed.notify_worker", "--poll", "0.2"],
        {**channels, "MUSAED_SMS_URL": gateway.sms_url, "MUSAED_QUIET_HOURS": "none"},
    )
    try:
        wait_for_port(care_port, care, care_log)
        wait_for_port(web_port, procs[1], logs / "web.log")
        bot.tg, bot.graph, bot.gateway, bot.worker = tg, graph, gateway, worker
        bot.care_url, bot.web_url, bot.db_file = (
            f"http://127.0.0.1:{care_port}",
            f"http://127.0.0.1:{web_port}",
            db_file,
        )
        yield bot
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        bot.stop()
        for fake in (tg, graph, gateway):
            fake.stop()


@pytest.fixture(autouse=True)
def fresh(live):
    """Each test from the demo records, with no requests, notifications or subscriptions left."""
    seed.seed(store.open_db(live.db_file))


def db(live):
    return store.open_db(live.db_file)


def change_status(live, number: str, status: str) -> float:
    """The agent moves the request (the care API, as the console does); when it was asked."""
    start = time.time()
    r = requests.post(
        f"{live.care_url}/care/requests/{number}/status",
        json={"status": status},
        headers={"Authorization": f"Bearer {TOKENS['huda']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return start


def new_request(live, who: str, service: str, conversation: str, lang: str) -> str:
    request, created = store.create_request(
        db(live),
        service_id=service,
        applicant_id=ID[who],
        beneficiary_id=ID[who],
        conversation_id=conversation,
        language=lang,
    )
    assert created
    return request["tracking_number"]


def wa_post(live, wa_id: str, text: str) -> None:
    """A signed webhook POST of one text message, as the WhatsApp Cloud API sends it."""
    message = {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "text"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "966500000000", "phone_number_id": WA_PHONE},
        "contacts": [{"profile": {"name": "فهد"}, "wa_id": wa_id}],
        "messages": [{**message, "text": {"body": text}}],
    }
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
        }
    ).encode()
    signature = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    r = requests.post(
        f"{live.url}/webhooks/whatsapp/webhook",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        timeout=60,
    )
    assert r.status_code == 200


def tg_post(live, chat_id: int, text: str) -> None:
    update = {
        "update_id": int(time.time() * 1000) % 10**9,
        "message": {
            "message_id": int(time.time() * 1000) % 10**9,
            "from": {"id": chat_id, "is_bot": False, "first_name": "خالد"},
            "chat": {"id": chat_id, "first_name": "خالد", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }
    secret = live.tg.calls_to("setWebhook")[0]["secret_token"]
    r = requests.post(
        f"{live.url}/webhooks/telegram/webhook", json=update, headers={TG_SECRET_HEADER: secret}, timeout=60
    )
    assert r.status_code == 200


def _measured(name: str, seconds: float) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "latency.txt", "a", encoding="utf-8") as f:
        f.write(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {name}: {seconds * 1000:.0f} ms\n")


def test_an_agents_status_change_reaches_the_widget_telegram_and_whatsapp_once_each(browser, live):
    # The person's widget is open; their conversation is the one its session names.
    context = browser.new_context(locale="ar-SA")
    page = context.new_page()
    page.goto(live.web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]")
    session = page.evaluate("JSON.parse(localStorage.getItem('musaed.chat.v1')).sessionId").split(".")[0]
    # WhatsApp: one wrote an hour ago (the channel records it), one never did.
    recent, silent = "966511111111", "966522222222"
    live.graph.last_inbound[recent] = time.time()
    wa_post(live, recent, "السلام عليكم")
    assert outbox.contact(db(live), f"whatsapp:{recent}")["last_inbound_at"]
    numbers = {
        "web": new_request(live, "khalid", "renew_national_id", f"web:{session}", "ar"),
        "telegram": new_request(live, "sara", "report_lost_id", "telegram:900001", "ar"),
        "whatsapp": new_request(live, "fahd", "renew_national_id", f"whatsapp:{recent}", "en"),
        "template": new_request(live, "noura", "report_lost_id", f"whatsapp:{silent}", "ar"),
    }
    approved_ar, approved_en = AR.status_text("approved"), EN.status_text("approved")

    def approved(message):
        return message.get("type") == "interactive" and approved_en in message["interactive"]["body"]["text"]

    # One change at a time, each timed from the agent's request to the channel having it.
    asked = change_status(live, numbers["web"], "approved")
    page.wait_for_selector(".musaed-bot:has-text('تمت الموافقة')", timeout=5000)
    latencies = {"status change -> widget": time.time() - asked}
    asked = change_status(live, numbers["telegram"], "approved")
    tg_sent = live.tg.wait_for(
        lambda _: [c for c in live.tg.delivered("900001") if approved_ar in c["params"]["text"]], 10
    )
    assert tg_sent
    latencies["status change -> telegram"] = tg_sent[0]["at"] - asked
    asked = change_status(live, numbers["whatsapp"], "approved")
    wa_sent = live.graph.wait_for(
        lambda calls: [c for c in calls if c["json"].get("to") == recent and approved(c["json"])], 10
    )
    assert wa_sent
    latencies["status change -> whatsapp"] = wa_sent[0]["at"] - asked
    asked = change_status(live, numbers["template"], "approved")
    wa_template = live.graph.wait_for(
        lambda calls: [c for c in calls if c["json"].get("to") == silent and c.get("status") == 200], 10
    )
    assert wa_template
    latencies["status change -> whatsapp template"] = wa_template[0]["at"] - asked
    time.sleep(1.5)  # anything sent twice would be here by now

    # Once each, by the channel's rule.
    bubbles = page.locator(".musaed-bot", has_text=approved_ar)
    assert bubbles.count() == 1
    assert AR.services["renew_national_id"].name in bubbles.first.inner_text()
    assert page.locator(".musaed-bot .musaed-button", has_text=AR.labels["button_track"]).count() == 1
    assert len([c for c in live.tg.delivered("900001") if approved_ar in c["params"]["text"]]) == 1
    interactive = [m for m in live.graph.delivered(recent) if approved(m)]
    assert len(interactive) == 1
    [template] = live.graph.delivered(silent)
    assert template["type"] == "template" and template["template"]["name"] == "musaed_notice"
    assert approved_ar in template["template"]["components"][0]["parameters"][0]["text"]
    assert live.gateway.snapshot() == []  # the widget was open: no SMS
    routes = {r["tracking_number"]: (r["state"], r["route"]) for r in db(live).query("SELECT * FROM notifications")}
    assert routes == {
        numbers["web"]: ("sent", "widget"),
        numbers["telegram"]: ("sent", "telegram"),
        numbers["whatsapp"]: ("sent", "whatsapp"),
        numbers["template"]: ("sent", "whatsapp_template"),
    }
    # Nothing but the service and its state: no id, no name.
    said = [tg_sent[0]["params"]["text"], interactive[0]["interactive"]["body"]["text"], bubbles.first.inner_text()]
    assert not re.search(r"\d{10}|سارة|فهد|خالد|Fahd", " ".join(said)), said
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / "widget-status-change.png"))
    context.close()

    for name, seconds in latencies.items():
        _measured(name, seconds)
    assert all(seconds < 2.0 for seconds in latencies.values()), latencies


def said(replies) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


def latest_code(live, national_id: str) -> str:
    rows = list(
        db(live).query("SELECT code FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1", [national_id])
    )
    return rows[0]["code"]


def test_over_rest_reminders_are_offered_taken_sent_and_stopped(live):
    chat = Conversation(live.url)
    assert chat.say("ابي اجدد هويتي الوطنية")[-1]["buttons"][0]["payload"] == "/affirm"
    chat.say("نعم")
    chat.say(ID["khalid"])
    assert "ملخص الطلب" in said(chat.say(latest_code(live, ID["khalid"])))
    created = chat.say("نعم")
    assert "تم تقديم طلبك" in said(created)
    # After the request: the offer, last, with yes and no.
    offer = created[-1]
    assert offer["text"] == AR.labels["reminder_offer"]
    assert [b["payload"] for b in offer["buttons"]] == ["/affirm", "/deny"]
    on = said(chat.say("/affirm"))
    assert on == AR.labels["reminders_on"].format(days=30)
    assert outbox.subscription(db(live), ID["khalid"])["conversation"] == chat.conversation_id
    # His ID (30 days) and his wife's iqama (20): due now; REST has no push, so by SMS.
    mobile = "0551000001"
    texts = live.gateway.wait_for(lambda _: len(live.gateway.sent_to(mobile)) >= 2 and live.gateway.sent_to(mobile))
    assert texts and any("هويتك الوطنية" in t for t in texts) and any("(الزوجة)" in t for t in texts)
    assert not any(ID["khalid"] in t or "أمل" in t for t in texts)
    # Stopped at once, and said so; again: nothing to stop.
    assert said(chat.say("أوقف التنبيهات")) == AR.labels["reminders_off"]
    assert outbox.subscription(db(live), ID["khalid"]) is None
    assert said(chat.say("أوقف التنبيهات")) == AR.labels["reminders_none"]
    # Asked once a conversation: tracking here offers nothing more.
    tracked = chat.say("وين وصل طلبي")
    assert AR.labels["reminder_offer"] not in said(tracked) and "طلباتك" in said(tracked)


def test_tracking_offers_reminders_and_no_keeps_them_off(live):
    chat = Conversation(live.url)
    chat.say("track my request")
    chat.say(ID["sara"])
    tracked = chat.say(latest_code(live, ID["sara"]))
    assert tracked[-1]["text"] == EN.labels["reminder_offer"]
    assert said(chat.say("no")).startswith("All right, I won't remind you")
    assert outbox.subscription(db(live), ID["sara"]) is None


def test_on_telegram_stop_reminders_is_confirmed_at_once(live):
    outbox.subscribe(db(live), ID["fahd"], "telegram:900002", "telegram", "ar", store.now_iso())
    tg_post(live, 900002, "ابي اوقف التذكيرات")
    sent = live.tg.wait_for(lambda _: live.tg.delivered("900002"), 30)
    assert sent[-1]["params"]["text"] == AR.labels["reminders_off"]
    assert outbox.subscription(db(live), ID["fahd"]) is None
    assert outbox.contact(db(live), "telegram:900002")["last_inbound_at"]  # the channel recorded the message


def test_the_care_page_shows_the_outbox_and_why_one_failed(browser, live):
    number = new_request(live, "sara", "report_lost_id", "telegram:900003", "ar")
    live.tg.blocked = {"900003"}
    try:
        change_status(live, number, "approved")
        row = live.tg.wait_for(
            lambda _: [r for r in db(live).query("SELECT * FROM notifications") if r["state"] != "queued"], 10
        )
    finally:
        live.tg.blocked = set()
    # A status change to a chat that blocked the bot went by SMS instead; make one fail outright.
    assert row[0]["route"] == "sms" and row[0]["state"] == "sent"
    now = store.now_iso()
    outbox.enqueue(
        db(live),
        {
            "dedupe_key": "test:failed",
            "kind": "status",
            "national_id": ID["sara"],
            "conversation": "whatsapp:966533333333",
            "channel": "whatsapp",
            "language": "ar",
            "tracking_number": number,
            "payload": {"service": "report_lost_id", "status": "printed"},
            "state": "failed",
            "attempts": 5,
            "last_error": "whatsapp: HTTP 400, error 131026",
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    context = browser.new_context(locale="ar-SA", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live.care_url}/care/")
    page.fill("#token", TOKENS["huda"])
    page.click("#token-save")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#notifications tr[data-channel=telegram]")
    assert "1" in page.locator("#notifications tr[data-channel=telegram]").inner_text()
    failed = page.locator("#notifications-failed li")
    assert failed.count() == 1 and "whatsapp: HTTP 400, error 131026" in failed.first.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # phone width
    page.screenshot(path=str(RESULTS / "care-notifications-phone.png"), full_page=True)
    context.close()
