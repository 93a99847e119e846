"""Web sessions on the socket.io channel (channels/socketio.py) against the real servers.

The client is python-socketio's AsyncClient over HTTP long-polling, the one
combination that works with the versions installed: the AsyncClient's
websocket transport needs aiohttp.ClientWSTimeout (aiohttp 3.11; Rasa 3.6
pins 3.9), and the sync Client has no websocket-client package and runs each
event it receives in a thread of its own, so replies could arrive out of
order. The last test drives the widget itself in Chromium, over its websocket.

A turn has a definite end: `Tab.say` asks the server to acknowledge the
message, and the server does so once Rasa has handled it, after the replies,
on the same socket, in order. `Tab.flush` does the same for a socket that
sent nothing: what it has not received by then, the server never sent it.
"""

import contextlib
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
from test_web import ANSWERED  # the bot's answers, not the greeting

from channels import socketio as web
from musaed import keys, privacy, seed, settings, store

from web_client import TIMEOUT, TURN, Tab

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
ID = seed.ids()
KHALID = ID["khalid"]  # 1010000014: every check of a national id renewal passes
KHALID_STORED = privacy.mask_text(KHALID)  # as the tracker store keeps it (musaed/privacy.py)
ASKS_FOR_ID = "رقم هويتك"
CODE_SENT = "رمز تحقق"
TRACKING = re.compile(r"MSD-\d{8}")
SECRET = b"a test secret, not the server's"


def joined(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def codes_sent(servers, national_id: str) -> int:
    db = store.open_db(servers.db_file)
    return db.execute("SELECT count(*) FROM otp_outbox WHERE national_id = ?", [national_id]).fetchone()[0]


def latest_code(servers, national_id: str) -> str:
    db = store.open_db(servers.db_file)
    return db.execute(
        "SELECT code FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1", [national_id]
    ).fetchone()[0]


def user_texts(servers, conversation: str) -> list:
    """What the person said in `conversation`, as Rasa's tracker store has it."""
    with contextlib.closing(sqlite3.connect(f"file:{servers.tracker_db}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", [conversation]
        ).fetchall()
    return [json.loads(data)["text"] for (data,) in rows]


def flip(text: str, index: int) -> str:
    """`text` with the hex digit at `index` changed."""
    i = index % len(text)
    return text[:i] + ("1" if text[i] == "0" else "0") + text[i + 1 :]


@pytest.fixture
async def tab(servers):
    """Opens tabs on the real server; all closed after the test."""
    opened = []

    def new() -> Tab:
        opened.append(Tab(servers.url))
        return opened[-1]

    yield new
    for t in opened:
        await t.close()


@pytest.fixture(scope="module")
def server_secret(servers):
    """The secret the Rasa server signs session tokens with (musaed/keys.py)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSAED_DB", str(servers.db_file))
        return keys.shared_secret(settings.SESSION_SECRET, web.SECRET_FILE)


async def start_renewal(tab: Tab) -> None:
    """Start a national id renewal: the form then waits for the national id."""
    offer = await tab.say("ابي اجدد هويتي")
    assert offer and offer[-1]["quick_replies"][0]["payload"] == "/affirm", joined(offer)
    assert ASKS_FOR_ID in joined(await tab.say("نعم"))


async def victim_mid_form(tab) -> Tab:
    victim = tab()
    await victim.open(None)
    await start_renewal(victim)
    return victim


# --- tokens ---------------------------------------------------------------


def test_issued_tokens_are_distinct_random_and_accepted():
    tokens = [web.issue_token(SECRET) for _ in range(1000)]
    assert len(set(tokens)) == len(tokens)
    sessions = [web.session_of(t, SECRET) for t in tokens]
    assert sessions == [t.split(".")[0] for t in tokens]  # each accepted, its id returned
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) for s in sessions)
    # 128 random bits: each bit of the id is set in about half of the ids (a
    # counter, a clock or a constant part would leave bits fixed).
    ints = [int(s, 16) for s in sessions]
    for bit in range(128):
        share = sum(n >> bit & 1 for n in ints) / len(ints)
        assert 0.35 < share < 0.65, f"bit {bit} is set in {share:.0%} of the ids"


SIGNED = web.issue_token(SECRET)
SIGNED_ID = SIGNED.split(".")[0]


NOT_ISSUED = {
    "id changed": flip(SIGNED, 0),
    "last id digit changed": flip(SIGNED, 31),
    "signature changed": flip(SIGNED, -1),
    "first signature digit changed": flip(SIGNED, 33),
    "another id, this signature": f"{secrets.token_hex(16)}.{SIGNED.split('.')[1]}",
    "bare id": SIGNED_ID,
    "web conversation id": f"web:{SIGNED_ID}",
    "token as a conversation id": f"web:{SIGNED}",
    "upper case": SIGNED.upper(),  # a spelling the server never issues
    "trailing newline": SIGNED + "\n",
    "leading space": " " + SIGNED,
    "extra part": SIGNED + ".00",
    "truncated signature": SIGNED[:-2],
    "WhatsApp number": "966501234567",
    "WhatsApp conversation id": "whatsapp:966501234567",
    "Telegram conversation id": "telegram:700000001",
    "REST conversation id": "rest:x",
    "word": "x",
    "empty": "",
    "None": None,
    "zero": 0,
    "number": 12345,
    "bytes": SIGNED.encode(),
    "list": [SIGNED],
    "dict": {"session_id": SIGNED},
}


@pytest.mark.parametrize("token", NOT_ISSUED.values(), ids=NOT_ISSUED.keys())
def test_session_of_refuses_what_this_server_did_not_issue(token):
    assert web.session_of(token, SECRET) is None


def test_a_token_signed_with_another_secret_is_refused():
    other = web.issue_token(b"another server's secret")
    assert web.session_of(other, b"another server's secret")
    assert web.session_of(other, SECRET) is None


async def test_a_jwt_key_in_the_credentials_still_guards_connect(monkeypatch):
    """Rasa's own channel lets only a client with a valid JWT connect when
    credentials.yml names a jwt_key: this one must not drop that."""
    monkeypatch.setenv(settings.SESSION_SECRET.name, "test")
    key = "a jwt key of at least 32 bytes for HS256"
    channel = web.SocketIOInput.from_credentials({"jwt_key": key, "session_persistence": True})
    channel.blueprint(lambda message: None)
    connect = channel.sio.handlers["/"]["connect"]
    good = jwt.encode({"user": "someone"}, key, algorithm="HS256")
    bad = jwt.encode({"user": "someone"}, key.replace("jwt", "JWT"), algorithm="HS256")
    assert await connect("sid", {}, {"token": good}) is True
    assert await connect("sid", {}, {"token": bad}) is False
    assert await connect("sid", {}, {}) is False
    assert await connect("sid", {}, None) is False
    open_channel = web.SocketIOInput.from_credentials({"session_persistence": True})
    open_channel.blueprint(lambda message: None)
    assert await open_channel.sio.handlers["/"]["connect"]("sid", {}, None) is True


# --- sessions on the real server ------------------------------------------


@pytest.mark.parametrize(
    "request_args",
    [(), ({},), ({"session_id": None},), ({"session_id": ""},)],
    ids=["no data", "empty", "null id", "empty id"],
)
async def test_a_tab_without_a_session_gets_a_new_signed_token(tab, server_secret, request_args):
    first, second = tab(), tab()
    for t in (first, second):
        await t.connect()
        await t.client.emit("session_request", *request_args)
        await t.confirmed()
    assert web.session_of(first.token, server_secret) == first.session
    assert web.session_of(second.token, server_secret) == second.session
    assert first.token != second.token


async def test_a_reload_with_the_token_continues_the_form(tab, servers, server_secret):
    first = tab()
    token = await first.open(None)  # the widget with nothing stored yet
    assert web.session_of(token, server_secret)
    await start_renewal(first)
    await first.close()  # the page is reloaded

    reloaded = tab()
    assert await reloaded.open(token) == token
    codes = codes_sent(servers, KHALID)
    sent = joined(await reloaded.say(KHALID))
    # The form survived the reload: the national id it waited for sends a code.
    assert CODE_SENT in sent, sent
    assert codes_sent(servers, KHALID) == codes + 1
    assert user_texts(servers, first.conversation) == ["ابي اجدد هويتي", "نعم", KHALID_STORED]


async def test_tabs_of_one_session_both_see_its_replies(tab):
    """Two tabs with one token share the conversation, so the flushes of the
    tests below would show a reply that reached another tab."""
    one = tab()
    await one.open(None)
    other = tab()
    assert await other.open(one.token) == one.token
    said = await one.say("السلام عليكم")
    await other.flush()
    assert said and other.replies == said


FORGERIES = {
    "random id": lambda victim: secrets.token_hex(16),
    "random token": lambda victim: f"{secrets.token_hex(16)}.{secrets.token_hex(32)}",
    "victim's bare id": lambda victim: victim.session,
    "victim's conversation id": lambda victim: victim.conversation,
    "victim's token, a signature digit changed": lambda victim: flip(victim.token, -1),
    "victim's token, an id digit changed": lambda victim: flip(victim.token, 5),
    "victim's id signed with another secret": lambda victim: (
        f"{victim.session}.{web._signature(victim.session, b'guessed secret')}"
    ),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_forged_or_guessed_web_id_gets_a_fresh_session(tab, servers, server_secret, forge):
    victim = await victim_mid_form(tab)
    victim_said, victim_got = user_texts(servers, victim.conversation), list(victim.replies)
    presented = forge(victim)
    filed_under = {c: user_texts(servers, c) for c in (presented, f"web:{presented}")}

    attacker = tab()
    token = await attacker.open(presented)
    assert token not in (presented, victim.token)
    assert web.session_of(token, server_secret) not in (None, victim.session)
    codes = codes_sent(servers, KHALID)
    # The national id the victim's form waits for: in a fresh conversation it
    # answers no question, and the bot answers on the attacker's own socket.
    reply = joined(await attacker.say(KHALID))
    assert reply and CODE_SENT not in reply, reply
    mine = joined(await attacker.say("طلباتي"))
    assert ASKS_FOR_ID in mine and not TRACKING.search(mine), mine
    assert codes_sent(servers, KHALID) == codes

    await victim.flush()
    assert victim.replies == victim_got  # nothing reached the victim's tab
    assert user_texts(servers, victim.conversation) == victim_said
    assert user_texts(servers, attacker.conversation) == [KHALID_STORED, "طلباتي"]
    assert {c: user_texts(servers, c) for c in filed_under} == filed_under  # nothing new under the id shown
    # The victim's form is where it was: its national id sends the code.
    assert CODE_SENT in joined(await victim.say(KHALID))


def verified_rest_conversation(chat, servers) -> str:
    """A REST conversation that has a request of Khalid's and verified him: its tracking number."""
    request, _ = store.create_request(
        store.open_db(servers.db_file),
        service_id="report_lost_id",
        applicant_id=KHALID,
        beneficiary_id=KHALID,
        conversation_id=chat.conversation_id,
    )
    assert ASKS_FOR_ID in joined(chat.say("طلباتي"))
    assert CODE_SENT in joined(chat.say(KHALID))
    listing = joined(chat.say(latest_code(servers, KHALID)))
    # What a session sharing this conversation would see.
    assert request["tracking_number"] in listing, listing
    return request["tracking_number"]


OTHER_CHANNELS = {
    "REST conversation id": lambda chat: chat.conversation_id,
    "REST sender": lambda chat: chat.sender,
    "WhatsApp number": lambda chat: "966501234567",
    "WhatsApp conversation id": lambda chat: "whatsapp:966501234567",
    "Telegram conversation id": lambda chat: "telegram:700000001",
}


@pytest.mark.parametrize("other", OTHER_CHANNELS.values(), ids=OTHER_CHANNELS.keys())
async def test_another_channels_id_gets_a_fresh_session(tab, chat, servers, server_secret, other):
    number = verified_rest_conversation(chat, servers)
    rest_said = user_texts(servers, chat.conversation_id)
    presented = other(chat)

    attacker = tab()
    token = await attacker.open(presented)
    assert token != presented and web.session_of(token, server_secret)
    mine = joined(await attacker.say("طلباتي"))
    # Not verified here, so asked who they are; never the REST conversation's requests.
    assert ASKS_FOR_ID in mine and number not in mine and not TRACKING.search(mine), mine
    assert user_texts(servers, attacker.conversation) == ["طلباتي"]
    assert user_texts(servers, chat.conversation_id) == rest_said
    if not presented.startswith("rest:"):
        assert user_texts(servers, presented) == []
    # The REST conversation is still verified: it is asked nothing.
    theirs = joined(chat.say("طلباتي"))
    assert number in theirs and ASKS_FOR_ID not in theirs


CLAIMS = {
    "victim's token": lambda victim: victim.token,
    "victim's conversation id": lambda victim: victim.conversation,
    "victim's bare id": lambda victim: victim.session,
}


@pytest.mark.parametrize("asked_first", [True, False], ids=["after its session_request", "without one"])
async def test_a_message_naming_another_session_stays_in_its_sockets_conversation(
    tab, servers, server_secret, asked_first
):
    victim = await victim_mid_form(tab)
    victim_said, victim_got = user_texts(servers, victim.conversation), list(victim.replies)
    codes = codes_sent(servers, KHALID)

    attacker = tab()
    if asked_first:
        await attacker.open(None)
    else:
        await attacker.connect()
    for claim in CLAIMS.values():
        # The national id the victim's form waits for, sent as the victim's session.
        reply = joined(await attacker.say(KHALID, session_id=claim(victim)))
        assert reply and CODE_SENT not in reply, reply
    if not asked_first:
        await attacker.confirmed()  # a socket that asked for no session is given one
    assert attacker.confirms.empty()  # one session, kept for every message
    assert web.session_of(attacker.token, server_secret) not in (None, victim.session)
    assert codes_sent(servers, KHALID) == codes

    await victim.flush()
    assert victim.replies == victim_got  # the victim's socket received nothing
    assert user_texts(servers, victim.conversation) == victim_said
    assert user_texts(servers, attacker.conversation) == [KHALID_STORED] * len(CLAIMS)
    assert CODE_SENT in joined(await victim.say(KHALID))  # its form untouched


# --- ended and expired sessions (issue 25, item 4) ---------------------------


def khalids_request(servers) -> str:
    """A request of Khalid's: what a session verified as him lists. Its tracking number."""
    request, _ = store.create_request(
        store.open_db(servers.db_file),
        service_id="report_lost_id",
        applicant_id=KHALID,
        beneficiary_id=KHALID,
        conversation_id="web:elsewhere",
    )
    return request["tracking_number"]


async def verify_as_khalid(tab: Tab, servers, number: str) -> None:
    assert ASKS_FOR_ID in joined(await tab.say("طلباتي"))
    assert CODE_SENT in joined(await tab.say(KHALID))
    listing = joined(await tab.say(latest_code(servers, KHALID)))
    assert number in listing, listing


async def shows_nothing_of_khalid(tab: Tab, number: str) -> None:
    """The tab's conversation is not verified: «طلباتي» asks who they are, lists nothing."""
    mine = joined(await tab.say("طلباتي"))
    assert ASKS_FOR_ID in mine and number not in mine and not TRACKING.search(mine), mine


def age_session(servers, session: str, minutes: float) -> None:
    """As if the session had last been seen `minutes` ago (time passing, for the idle limit)."""
    at = (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    with contextlib.closing(sqlite3.connect(servers.db_file)) as db, db:
        db.execute("UPDATE web_sessions SET last_seen = ? WHERE session_key = ?", [at, web.session_key(session)])


async def test_a_new_conversation_ends_the_old_session_for_every_tab_that_holds_it(tab, servers, server_secret):
    number = khalids_request(servers)
    first = tab()
    old = await first.open(None)
    await verify_as_khalid(first, servers, number)
    second = tab()  # another tab of the same browser, still open on the old session
    assert await second.open(old) == old

    # «محادثة جديدة» in the first tab: the widget sends its token to be ended.
    new = await first.request(None, end=old)
    assert new != old and web.session_of(new, server_secret)
    await shows_nothing_of_khalid(first, number)

    # A socket presenting the old token (a copy of it, a reload of an old page) gets a
    # new, empty conversation: no history, nothing of Khalid's.
    holder = tab()
    presented = await holder.open(old, history=True)
    assert presented not in (old, new)
    await holder.flush()
    assert holder.histories == []
    await shows_nothing_of_khalid(holder, number)

    # The tab still open on it is moved to a new session at its next message.
    await shows_nothing_of_khalid(second, number)
    moved = await second.confirmed()
    assert moved not in (old, new, presented) and web.session_of(moved, server_secret)


async def test_a_session_ended_by_another_replica_is_over_here_too(tab, servers):
    """The state is in the store: a replica that did not end the session still finds it ended."""
    number = khalids_request(servers)
    one = tab()
    old = await one.open(None)
    await verify_as_khalid(one, servers, number)
    # What the other replica's channel does on «محادثة جديدة».
    store.end_web_session(store.open_db(servers.db_file), web.session_key(one.session), store.now_iso())
    await shows_nothing_of_khalid(one, number)
    assert await one.confirmed() != old


@pytest.mark.parametrize("minutes, goes_on", [(59, True), (61, False)], ids=["59 min idle", "61 min idle"])
async def test_a_session_expires_after_an_hour_idle(tab, servers, minutes, goes_on):
    number = khalids_request(servers)
    one = tab()
    old = await one.open(None)
    await verify_as_khalid(one, servers, number)
    age_session(servers, one.session, minutes)

    again = tab()  # the page opened again later, with the stored token
    token = await again.open(old, history=True)
    await again.flush()
    if goes_on:
        assert token == old and len(again.histories) == 1
        assert number in joined(await again.say("طلباتي"))
    else:
        assert token != old and again.histories == []
        await shows_nothing_of_khalid(again, number)
        # And the socket that was left open on it, at its next message.
        await shows_nothing_of_khalid(one, number)
        assert await one.confirmed() != old


async def test_a_reload_gets_the_conversation_back_from_the_server(tab, servers):
    first = tab()
    token = await first.open(None)
    said = ["ضاعت هويتي", "/affirm"]  # the offer's «ابدأ الطلب» button, as the widget sends it
    for text in said:
        assert await first.say(text)
    await first.close()

    reloaded = tab()
    assert await reloaded.open(token, history=True) == token
    (history,) = reloaded.histories
    # As the widget showed it live: every bot message, the button's title for its payload.
    assert [e["text"] for e in history if e["from"] == "bot"] == [r.get("text", "") for r in first.replies]
    offer = next(r for r in first.replies if r.get("quick_replies"))
    start = next(b["title"] for b in offer["quick_replies"] if b["payload"] == "/affirm")
    assert [e["text"] for e in history if e["from"] == "user"] == ["ضاعت هويتي", start]
    buttons = [e["buttons"] for e in history if e["buttons"]]
    assert buttons[0] == [{"title": b["title"], "payload": b["payload"]} for b in offer["quick_replies"]]

    stranger = tab()  # a forged token asking for the history gets a new session and none
    await stranger.open(flip(token, -1), history=True)
    await stranger.flush()
    assert stranger.histories == []


def test_the_store_keeps_sessions_ended_and_idle_apart(open_store):
    db = open_store()
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)

    def at(minutes: float) -> str:
        return store.now_iso(t0 + timedelta(minutes=minutes))

    store.start_web_session(db, "a", at(0))
    store.start_web_session(db, "b", at(0))
    assert store.live_web_session(db, "a", at(-60)) and store.live_web_session(db, "a", at(0))
    assert store.live_web_session(db, "a", at(1)) is None  # idle since before `idle_since`
    store.touch_web_session(db, "a", at(50))
    assert store.live_web_session(db, "a", at(50))
    store.touch_web_session(db, "a", at(10))  # never back in time
    assert store.live_web_session(db, "a", at(50))
    store.end_web_session(db, "a", at(51))
    assert store.live_web_session(db, "a", at(-60)) is None
    store.touch_web_session(db, "a", at(52))  # an ended one stays ended
    assert store.live_web_session(db, "a", at(-60)) is None
    assert store.live_web_session(db, "b", at(0))  # the other untouched
    store.end_web_session(db, "never-started", at(53))  # an unknown one is ended too
    store.start_web_session(db, "c", at(60))
    assert store.live_web_session(db, "never-started", at(-60)) is None and store.live_web_session(db, "c", at(0))


# --- the widget (last in this module: the browser fixture holds Playwright's
# event loop until the module ends, and the async tests above must not meet it)


@pytest.fixture(scope="module")
def widget_url(servers):
    """web/serve.py: the widget's page, talking to the test's Rasa server."""
    from scripts.servers import wait_until_up

    port = servers.web_port  # an origin the Rasa server accepts (MUSAED_WEB_ORIGINS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.serve", "--port", str(port), "--rasa-url", servers.url],
        cwd=ROOT,
        env={**os.environ, "MUSAED_DB": str(servers.db_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, TIMEOUT)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stored_token(page) -> str:
    return page.evaluate("JSON.parse(localStorage.getItem('musaed.chat.v1')).sessionId")


def widget_says(page, text: str, expect: str) -> None:
    page.fill(".musaed-input", text)
    page.press(".musaed-input", "Enter")
    page.wait_for_function(
        ANSWERED,
        arg=expect,
        timeout=TURN * 1000,
    )


def test_the_widget_keeps_its_token_across_a_reload_and_the_form_goes_on(browser, widget_url, servers, server_secret):
    page = browser.new_page()
    page.goto(widget_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    token = stored_token(page)  # what session_confirm sent
    session = web.session_of(token, server_secret)
    assert session
    widget_says(page, "ابي اجدد هويتي", "هل تريد أن أتحقق")
    widget_says(page, "نعم", ASKS_FOR_ID)

    page.reload()  # the widget presents its token in session_request
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    assert stored_token(page) == token
    widget_says(page, KHALID, CODE_SENT)  # the form waited for the national id
    # Rasa saves the tracker just after it sends the replies: poll, bounded.
    said = ["ابي اجدد هويتي", "نعم", KHALID_STORED]
    deadline = time.monotonic() + TIMEOUT
    while user_texts(servers, f"web:{session}") != said and time.monotonic() < deadline:
        time.sleep(0.1)
    assert user_texts(servers, f"web:{session}") == said

    # A token the server did not sign (here: tampered with in storage) is
    # replaced by a new session, and the widget keeps the new token.
    page.evaluate(
        "t => { const s = JSON.parse(localStorage.getItem('musaed.chat.v1'));"
        " s.sessionId = t; localStorage.setItem('musaed.chat.v1', JSON.stringify(s)); }",
        flip(token, -1),
    )
    page.reload()
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    fresh = stored_token(page)
    assert fresh != token and web.session_of(fresh, server_secret) not in (None, session)
    page.close()


def storage(page) -> str:
    """Everything the page's origin keeps in the browser's storage, as text."""
    return page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")


def test_the_browser_keeps_no_ids_or_codes_and_a_new_conversation_ends_the_old_session(
    browser, widget_url, servers, server_secret
):
    number = khalids_request(servers)
    page = browser.new_page()
    page.goto(widget_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    widget_says(page, "طلباتي", ASKS_FOR_ID)
    widget_says(page, KHALID, CODE_SENT)
    code = latest_code(servers, KHALID)
    widget_says(page, code, number)  # verified: Khalid's requests listed

    old = stored_token(page)
    kept = storage(page)
    assert KHALID not in kept and code not in kept and number not in kept, kept
    assert not re.search(r"\d{6}", kept.replace(old, "")), kept  # no id, code or number of any kind
    assert json.loads(page.evaluate("localStorage.getItem('musaed.chat.v1')")).keys() <= {
        "sessionId",
        "ending",
        "language",
    }

    page.reload()  # the server sends the conversation back; the browser still keeps none of it
    page.wait_for_function(
        ANSWERED,
        arg=number,
        timeout=TIMEOUT * 1000,
    )
    assert stored_token(page) == old and KHALID not in storage(page) and code not in storage(page)

    page.get_by_role("button", name="محادثة جديدة").click()
    page.get_by_role("button", name="نعم، ابدأ من جديد").click()  # it asks first
    page.wait_for_function(
        "s => { const t = JSON.parse(localStorage.getItem('musaed.chat.v1')).sessionId; return t && t !== s; }",
        arg=old,
        timeout=TIMEOUT * 1000,
    )
    assert page.locator(".musaed-msg:not(.musaed-greeting)").count() == 0
    page.close()

    # The old token, put back in a browser: a new, empty conversation that knows nothing of Khalid.
    context = browser.new_context()
    other = context.new_page()
    other.goto(widget_url)
    other.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    other.evaluate("t => localStorage.setItem('musaed.chat.v1', JSON.stringify({sessionId: t}))", old)
    other.reload()
    other.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    assert stored_token(other) != old and web.session_of(stored_token(other), server_secret)
    assert other.locator(".musaed-msg:not(.musaed-greeting)").count() == 0
    widget_says(other, "طلباتي", ASKS_FOR_ID)
    texts = "\n".join(other.locator(".musaed-bot:not(.musaed-greeting) > p").all_inner_texts())
    assert number not in texts and not TRACKING.search(texts), texts
    context.close()
