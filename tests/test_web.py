"""The chat widget in a real headless Chromium against the real servers."""

import socket
from pathlib import Path

import pytest

from musaed import catalogue

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "results" / "web"
CAT = catalogue.load()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The bot's answers (not the greeting the chat opens with) hold a text.
ANSWERED = (
    "s => [...document.querySelectorAll('.musaed-bot:not(.musaed-greeting) > p')].some(p => p.innerText.includes(s))"
)


def bot_texts(page):
    return page.locator(".musaed-bot:not(.musaed-greeting) > p").all_inner_texts()


def test_widget_answers_in_rtl_with_buttons_and_survives_reload(browser, web_url):
    page = browser.new_page(locale="ar-SA", viewport={"width": 1100, "height": 760})
    page.goto(web_url)
    chat = page.locator(".musaed-chat")
    assert chat.get_attribute("dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.querySelector('.musaed-log')).direction") == "rtl"
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)

    page.fill(".musaed-input", "ضاعت هويتي")
    page.press(".musaed-input", "Enter")
    step = f"1. {CAT.services['report_lost_id'].steps[0]}"
    page.wait_for_function(
        ANSWERED,
        arg=step,
        timeout=20000,
    )

    # The offer's buttons: «الرسوم» answers with the service's fees.
    page.get_by_role("button", name=CAT.labels["button_fees"]).last.click()
    page.wait_for_function(
        ANSWERED,
        arg=CAT.services["report_lost_id"].fees,
        timeout=20000,
    )
    assert page.locator(".musaed-user p").all_inner_texts()[-1] == CAT.labels["button_fees"]

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "widget.png"), full_page=True)

    before = bot_texts(page)
    page.reload()
    page.wait_for_selector(".musaed-bot:not(.musaed-greeting) > p")
    assert bot_texts(page) == before  # the conversation is kept across a reload
    page.close()


def test_messages_are_text_never_html(browser, web_url):
    page = browser.new_page()
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    page.fill(".musaed-input", "<img src=x onerror=alert(1)>")
    page.press(".musaed-input", "Enter")
    page.wait_for_selector(".musaed-user p")
    assert page.locator(".musaed-log img").count() == 0
    page.close()


def test_receipts_are_served_only_behind_a_signed_link(web_url, servers, monkeypatch):
    import requests

    from musaed import receipt, seed, store

    monkeypatch.setenv("MUSAED_DB", servers.env["MUSAED_DB"])
    db = store.open_db()
    khalid = seed.ids()["khalid"]
    request, _ = store.create_request(
        db, service_id="report_lost_id", applicant_id=khalid, beneficiary_id=khalid, conversation_id="web-test"
    )
    number = request["tracking_number"]
    ok = requests.get(web_url + receipt.receipt_path(number), timeout=10)
    assert ok.status_code == 200 and ok.headers["Content-Type"] == "image/png"
    assert ok.content.startswith(b"\x89PNG")
    assert requests.get(f"{web_url}/receipts/{number}.png", timeout=10).status_code == 404
    assert requests.get(f"{web_url}/receipts/{number}.png?sig=0000", timeout=10).status_code == 404


# -- phones, desktops, and what a person on a phone needs (issue 18) ------------------


def ask_and_wait(page, text, expect):
    page.fill(".musaed-input", text)
    page.press(".musaed-input", "Enter")
    page.wait_for_function(
        ANSWERED,
        arg=expect,
        timeout=60000,  # a loaded machine: test_web_security.py shares this
    )


def test_on_a_phone_the_chat_is_the_whole_screen_with_no_sideways_scroll(browser, web_url):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True, locale="ar-SA"
    )
    page = context.new_page()
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the embed snippet wraps
    box = page.locator(".musaed-chat").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)
    for part in (".musaed-input", ".musaed-send", ".musaed-new"):
        b = page.locator(part).bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= 390 and b["y"] + b["height"] <= 844, part
    assert float(page.evaluate("getComputedStyle(document.querySelector('.musaed-input')).fontSize")[:-2]) >= 16
    page.locator(".musaed-input").tap()
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    assert page.locator(".musaed-dots").is_hidden()  # the indicator goes once the answer is in
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "phone-390x844.png"))
    context.close()


def test_on_a_desktop_the_chat_is_a_box_beside_the_page(browser, web_url):
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="ar-SA")
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    box = page.locator(".musaed-chat").bounding_box()
    assert box["width"] <= 460 and box["height"] == 620
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    ask_and_wait(page, "كيف اجدد هويتي", f"1. {CAT.services['renew_national_id'].steps[0]}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "desktop-1280x800.png"))
    page.close()


def test_an_answered_questions_buttons_are_disabled_so_a_double_tap_sends_once(browser, web_url):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    fees = page.get_by_role("button", name=CAT.labels["button_fees"]).last.element_handle()  # this offer's
    fees.dblclick()
    page.wait_for_function(
        ANSWERED,
        arg=CAT.services["report_lost_id"].fees,
        timeout=20000,
    )
    assert page.locator(".musaed-user p").all_inner_texts().count(CAT.labels["button_fees"]) == 1
    assert fees.is_disabled()
    start = page.get_by_role("button", name=CAT.labels["button_start"]).first
    assert start.is_disabled()  # the first offer's buttons too: that question has been answered
    page.close()


def test_new_conversation_starts_over_with_a_new_session(browser, web_url):
    page = browser.new_page()
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    before = page.evaluate("JSON.parse(localStorage.getItem('musaed.chat.v1')).sessionId")
    page.get_by_role("button", name="محادثة جديدة").click()
    # It asks first: «إلغاء» keeps the conversation.
    page.get_by_role("button", name="إلغاء").click()
    assert page.locator(".musaed-confirm").is_hidden()
    assert page.evaluate("JSON.parse(localStorage.getItem('musaed.chat.v1')).sessionId") == before
    assert page.locator(".musaed-user").count() == 1
    page.get_by_role("button", name="محادثة جديدة").click()
    page.get_by_role("button", name="نعم، ابدأ من جديد").click()
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    page.wait_for_function("s => JSON.parse(localStorage.getItem('musaed.chat.v1')).sessionId !== s", arg=before)
    assert page.locator(".musaed-msg:not(.musaed-greeting)").count() == 0
    assert page.locator(".musaed-greeting").count() == 1  # the new chat opens with its greeting
    ask_and_wait(page, "hello", "Musaed")
    # An English bubble's text runs left to right.
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.musaed-bot:not(.musaed-greeting) > p')).direction")
        == "ltr"
    )
    page.close()


def chrome(page):
    return page.evaluate(
        """() => { const c = document.querySelector('.musaed-chat');
        return { dir: c.getAttribute('dir'), lang: c.getAttribute('lang'), direction: getComputedStyle(c).direction,
                 title: c.querySelector('.musaed-title').innerText, fresh: c.querySelector('.musaed-new').innerText,
                 send: c.querySelector('.musaed-send').innerText,
                 placeholder: c.querySelector('.musaed-input').placeholder }; }"""
    )


def test_the_chat_s_own_words_follow_the_language_the_bot_answers_in(browser, web_url):
    page = browser.new_page(locale="en-US", viewport={"width": 1100, "height": 760})
    page.goto(web_url)  # an Arabic page: the frame starts in Arabic
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    assert chrome(page)["dir"] == "rtl" and chrome(page)["send"] == "إرسال"

    ask_and_wait(page, "how do I renew my national ID?", catalogue.load("en").services["renew_national_id"].steps[0])
    english = chrome(page)
    assert english == {
        "dir": "ltr",
        "lang": "en",
        "direction": "ltr",
        "title": "Musaed — ID and residency services",
        "fresh": "New chat",
        "send": "Send",
        "placeholder": "Type your question…",
    }
    # The person's bubble at the end of the line: the right, in English.
    user = page.locator(".musaed-user").last.bounding_box()
    bot = page.locator(".musaed-bot").last.bounding_box()
    assert user["x"] + user["width"] > bot["x"] + bot["width"]
    page.reload()
    page.wait_for_selector(".musaed-bot:not(.musaed-greeting) > p")
    assert chrome(page)["title"] == english["title"]  # kept across a reload

    ask_and_wait(page, "شكرا", "العفو")  # Arabic again: the frame follows
    page.wait_for_function("() => document.querySelector('.musaed-chat').getAttribute('dir') === 'rtl'", timeout=20000)
    assert chrome(page)["placeholder"] == "اكتب سؤالك هنا…" and chrome(page)["fresh"] == "محادثة جديدة"
    page.close()


def test_a_dropped_connection_shows_reconnecting_and_sends_what_was_typed_once(browser, web_url):
    context = browser.new_context()
    page = context.new_page()
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    context.set_offline(True)
    page.wait_for_selector(".musaed-status:not([hidden])", timeout=30000)
    page.fill(".musaed-input", "ضاعت هويتي")
    page.press(".musaed-input", "Enter")
    assert page.locator(".musaed-user p").all_inner_texts() == ["ضاعت هويتي"]
    assert page.locator(".musaed-user .musaed-pending").count() == 1  # marked as waiting to be sent
    context.set_offline(False)
    page.wait_for_function(
        ANSWERED,
        arg=f"1. {CAT.services['report_lost_id'].steps[0]}",
        timeout=40000,
    )
    assert page.locator(".musaed-status").is_hidden()
    assert page.locator(".musaed-pending").count() == 0
    page.wait_for_timeout(1500)
    guides = [
        t
        for t in page.locator(".musaed-bot:not(.musaed-greeting) > p").all_inner_texts()
        if CAT.services["report_lost_id"].steps[0] in t
    ]
    assert len(guides) == 1  # sent once, answered once
    context.close()
