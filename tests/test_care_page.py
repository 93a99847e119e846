"""The customer-care page on a phone (issue 29: item 6, and the care page's part of item 1).

At 360 and 390 px wide in Chromium, with touch: no sideways scroll and nothing cut; a
tapped button shows its title, not its payload; times in Riyadh time, named; a transcript
opens at its start; each message's text in its own element with dir=auto and its language,
and a tracking number inside an Arabic line in its own <bdi>; no axe-core violations and
nothing refused by the page's CSP.

The unit tests read a hand-made tracker store (tests/conftest.py); the end-to-end ones
talk to the real bot over REST (the `servers` fixture) and read it through the real care
server (`care_api`, tests/test_care.py).
"""

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests as http
from test_care import TOKENS, agent, care_api, new_request  # noqa: F401 - care_api: the care server fixture

from care.server import parts, readable, taps
from musaed import catalogue, conversations, store

from conftest import EVENT_INSERT, T0, Conversation

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "results" / "web"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
RIYADH = ZoneInfo("Asia/Riyadh")
ZONE_AR = "توقيت الرياض"
NUMBER = "MSD-25054664"
ENGLISH = "how do I renew my iqama for my wife?"
ARABIC_WITH_NUMBER = f"وين وصل طلبي {NUMBER} ولا عندي رقمه الصحيح"
# A pasted link: one word wider than a phone (the page was 714 px wide with it at 360 and 390).
LINK = "هذا الرابط https://www.absher.sa/wps/portal/individuals/Home/myservices/einquiries/renewiqamafamily ما فتح"
# A title the channel sent with the payload (the widget's metadata): it wins over the bot's offer.
CHANNEL_TITLE = "أبغى موظف (زر)"


# -- what the server gives the page ------------------------------------------------


def _add(tracker_db, sender, minute, data):
    conn = sqlite3.connect(tracker_db)
    data = {**data, "timestamp": T0 + minute * 60}
    conn.execute(EVENT_INSERT.format(m="?"), [sender, data["event"], data["timestamp"], None, None, json.dumps(data)])
    conn.commit()
    conn.close()


def _user(text, **extra):
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": "x", "confidence": 1.0}}, **extra}


def test_a_tapped_button_is_read_as_its_title_from_the_metadata_or_the_bots_offer(tracker_db):
    # alice's bot offered «ابدأ الطلب» /affirm and «لا» /deny (tests/conftest.py); she taps /deny
    # on a channel that sends no title, then /affirm on one that does, then types.
    _add(tracker_db, "alice", 8, _user("/deny"))
    _add(tracker_db, "alice", 9, _user("/affirm", metadata={"musaed_title": " نعم، ابدأ "}))
    _add(tracker_db, "alice", 10, _user("/affirm", metadata={"checkpoint": True}))  # a checkpoint repeats
    _add(tracker_db, "alice", 11, _user("/not_offered"))
    tapped = taps(tracker_db, "alice")
    deny = catalogue.load().labels["button_no"]
    assert tapped[-3:] == [("/deny", deny), ("/affirm", "نعم، ابدأ"), ("/not_offered", None)]
    assert tapped[0] == ("ضاعت هويتي", None)

    # The transcript carries them (musaed/conversations.py): the care page and `musaed-care conversation` read it.
    users = [m for m in conversations.transcript(tracker_db, "alice") if m["role"] == "user"]
    assert [m.get("title") for m in users] == [None, None, deny, "نعم، ابدأ", None]


def test_each_text_comes_with_its_language_and_its_runs_to_isolate():
    english = readable({"role": "user", "text": ENGLISH})
    assert english["lang"] == "en" and english["parts"] == [{"text": ENGLISH, "isolate": False}]
    arabic = readable({"role": "user", "text": ARABIC_WITH_NUMBER})
    assert arabic["lang"] == "ar"
    assert {"text": NUMBER, "isolate": True} in arabic["parts"]
    assert "".join(p["text"] for p in arabic["parts"]) == ARABIC_WITH_NUMBER
    # A tapped button: its title is what is shown, and read.
    tapped = readable({"role": "user", "text": "/request_human", "title": "تحدث مع موظف"})
    assert tapped["lang"] == "ar" and "".join(p["text"] for p in tapped["parts"]) == "تحدث مع موظف"
    # An address in an English line; the person's own isolates do not make pieces.
    assert parts("Deliver it to my home please, 7781 طريق الملك فهد، الرياض, thanks") == [
        {"text": "Deliver it to my home please, ", "isolate": False},
        {"text": "7781 طريق الملك فهد، الرياض", "isolate": True},
        {"text": ", thanks", "isolate": False},
    ]
    assert parts("رقم \u2068exe.gpj\u2069 هويتي") == [
        {"text": "رقم ", "isolate": False},
        {"text": "exe.gpj", "isolate": True},
        {"text": " هويتي", "isolate": False},
    ]


# -- the page in Chromium -------------------------------------------------------------


@pytest.fixture(scope="module")
def talked(servers, care_api):  # noqa: F811 - the imported fixture
    """A person over REST: the menu, a service tapped (REST sends no title), an English
    question, a pasted link, an Arabic line with a tracking number, and «a person» tapped last (in or out of
    office hours: the transcript is the bot's) with the title in the metadata, as the widget
    sends it."""
    person = Conversation(servers.url)
    menu = next(r for r in person.say("وش تقدر تسوي") if r.get("buttons"))
    service = menu["buttons"][0]
    person.say(service["payload"])
    person.say(ENGLISH)
    person.say(LINK)
    person.say(ARABIC_WITH_NUMBER)  # tracking: the bot asks who they are
    person.say("إلغاء")
    menu = next(r for r in person.say("وش تقدر تسوي") if r.get("buttons"))
    human = menu["buttons"][-1]
    assert human["payload"] == "/request_human"
    r = http.post(
        person.url,
        json={"sender": person.sender, "message": human["payload"], "metadata": {"musaed_title": CHANNEL_TITLE}},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    seen = http.get(f"{care_api.url}/care/conversations/{person.conversation_id}", headers=agent(), timeout=30)
    assert seen.status_code == 200, seen.text
    return {
        "conversation": person.conversation_id,
        "service": service,
        "human": human,
        "messages": seen.json()["messages"],
    }


def test_the_api_gives_the_titles_of_tapped_buttons(talked):
    users = [m for m in talked["messages"] if m["role"] == "user"]
    by_text = {m["text"]: m for m in users}
    # REST sent no title: the bot's own offer names it.
    assert by_text[talked["service"]["payload"]]["title"] == talked["service"]["title"]
    # The widget's metadata: the channel's word.
    assert by_text["/request_human"]["title"] == CHANNEL_TITLE
    assert "title" not in by_text[ENGLISH] and by_text[ENGLISH]["lang"] == "en"


# Every element inside the viewport sideways, and no box whose content is cut sideways.
OVERFLOW = """() => {
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    if (!e.getClientRects().length) continue;  // not shown (hidden, folded)
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    const name = e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '');
    if (r.right > innerWidth + 1 || r.left < -1) out.push(name + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
    if (!['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName) && s.overflowX !== 'visible'
        && e.scrollWidth > e.clientWidth + 1) out.push(name + ' cut: ' + e.scrollWidth + ' > ' + e.clientWidth);
  }
  return out;
}"""


def _violations(page) -> list:
    """axe-core's violations on the page as it is, evaluated through the DevTools protocol
    (the page's CSP stays as it is served)."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    return page.evaluate(
        "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations"
        ".map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))"
    )


def _riyadh(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(RIYADH).strftime("%Y-%m-%d %H:%M")


@pytest.mark.e2e
@pytest.mark.parametrize("width, height", [(360, 740), (390, 844)])
def test_the_care_page_on_a_phone(browser, servers, care_api, talked, width, height):  # noqa: F811
    # A request made in that conversation (each test starts from the demo records: made here).
    number = new_request(store.open_db(servers.db_file), conversation=talked["conversation"])
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True, locale="ar-SA")
    page = context.new_page()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{care_api.url}/care/")
    page.wait_for_selector("#token")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate("innerWidth")
    signing_in = _violations(page) if AXE.exists() else []
    page.evaluate(f"sessionStorage.setItem('musaedCareToken', {json.dumps(TOKENS['huda'])})")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")

    # Everything on it: an answer, a request with its history, the lists, the live queue.
    page.fill("#ask-q", "ضاعت هويتي")
    page.locator("#ask-form button").tap()
    page.wait_for_selector("#answer-text", timeout=60000)
    page.fill("#req-number", number)
    page.locator("#req-form button").tap()
    page.wait_for_selector(f".request[data-tracking-number='{number}']")
    page.wait_for_selector("#stats table")
    # The conversation, opened from the handovers list.
    page.locator(f"#handovers li[data-sender='{talked['conversation']}'] button.link").tap()
    page.wait_for_selector("#transcript .msg.user")

    # No sideways scroll, nothing cut.
    assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate("innerWidth")
    assert page.evaluate(OVERFLOW) == []

    # It opens at its start: the box at its top, the section's heading in view.
    assert page.evaluate("document.getElementById('transcript').scrollTop") == 0
    heading = page.locator("#transcript-box h2").bounding_box()
    assert heading is not None and 0 <= heading["y"] < height

    # Tapped buttons read as their titles; no payload on the page.
    users = page.locator("#transcript .msg.user > bdi.said")
    shown = users.all_text_contents()
    assert talked["service"]["title"] in shown and CHANNEL_TITLE in shown
    transcript = page.inner_text("#transcript")
    assert talked["service"]["payload"] not in transcript and "/request_human" not in transcript
    # The handovers list too: what asked for a person is the button's title.
    listed = page.locator(f"#handovers li[data-sender='{talked['conversation']}']").inner_text()
    assert CHANNEL_TITLE in listed and "/request_human" not in listed
    assert page.locator("#transcript .msg.user[data-tapped=true]").count() == 2

    # The English message: its own element, dir=auto resolved left to right, lang=en, the «?» at its end.
    english = page.locator("#transcript .msg.user > bdi.said", has_text=ENGLISH)
    assert english.get_attribute("dir") == "auto" and english.get_attribute("lang") == "en"
    assert english.evaluate("e => getComputedStyle(e).direction") == "ltr"
    assert english.evaluate("e => e.matches(':dir(ltr)')")
    first, last = english.evaluate(
        """e => { const t = e.firstChild, r = document.createRange(), x = [];
                  for (const i of [0, t.length - 1]) {
                    r.setStart(t, i); r.setEnd(t, i + 1); x.push(r.getBoundingClientRect().left);
                  }
                  return x; }"""
    )
    assert last > first  # "?" drawn after the words, not before them

    # The tracking number inside the Arabic line is isolated, and reads left to right.
    arabic = page.locator("#transcript .msg.user > bdi.said", has_text="وين وصل طلبي")
    assert arabic.get_attribute("lang") == "ar" and arabic.evaluate("e => getComputedStyle(e).direction") == "rtl"
    isolated = arabic.locator("bdi", has_text=NUMBER)
    assert isolated.count() == 1 and isolated.text_content() == NUMBER
    assert isolated.evaluate("e => getComputedStyle(e).direction") == "ltr"

    # Times in Riyadh, named: the English message's, from its event's time.
    [message] = [m for m in talked["messages"] if m["role"] == "user" and m["text"] == ENGLISH]
    time = page.locator("#transcript .msg.user", has_text=ENGLISH).locator("time.when")
    assert time.get_attribute("datetime") == message["time"]
    said = time.inner_text()
    assert _riyadh(message["time"]) in said and ZONE_AR in said, said
    assert datetime.fromisoformat(message["time"]).strftime("%H:%M") not in said  # not UTC (Riyadh is UTC+3)
    history = page.locator(f".request[data-tracking-number='{number}'] time.when").first.inner_text()
    assert ZONE_AR in history

    page.wait_for_timeout(300)  # the lists' last paint
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"care-{width}.png"), full_page=True)

    assert refused == []  # nothing the CSP refused: no inline style or script outside its hashes
    if not AXE.exists():
        context.close()
        pytest.skip(f"axe-core is not installed ({AXE.relative_to(ROOT)}): `npm install` in web/ adds it")
    violations = {"signing in": signing_in, "at work": _violations(page)}
    context.close()
    assert violations == {"signing in": [], "at work": []}, json.dumps(violations, ensure_ascii=False, indent=1)
