"""The chat as people meet it, in Debian's Chromium (issue 29): who said what by the
bubble's side, mixed lines that read right, the receipt card, the keyboard a step
needs, focus and tab order, the greeting, the files' bytes on a repeat visit, and
axe-core. Positions and directions are measured, not only elements found."""

import re
from pathlib import Path

import pytest
from test_web import ANSWERED, ask_and_wait

from musaed import catalogue, seed, store

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "results" / "web"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CAT = catalogue.load()
KHALID = seed.ids()["khalid"]
TRACKING = re.compile(r"MSD-\d{8}")
SIZES = {"390": (390, 844), "360": (360, 740), "1280": (1280, 800)}


def latest_code(servers, national_id: str) -> str:
    db = store.open_db(servers.db_file)
    row = list(db.query("SELECT code FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1", [national_id]))
    return row[0]["code"]


def open_chat(browser, web_url, size: str, **options):
    width, height = SIZES[size]
    phone = width < 600
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=phone, is_mobile=phone, locale="ar-SA", **options
    )
    page = context.new_page()
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    return context, page


def box(page, selector: str, index: int = -1) -> dict:
    return page.locator(selector).nth(index).bounding_box()


def tap_button(page, name: str) -> None:
    page.locator(".musaed-button:not([disabled])", has_text=name).last.click()


def wait_for(page, text: str) -> None:
    page.wait_for_function(ANSWERED, arg=text, timeout=60000)


def make_request(page, servers) -> str:
    """Khalid renews his national id in the widget; the tracking number."""
    ask_and_wait(page, "ابي اجدد هويتي الوطنية", CAT.services["renew_national_id"].steps[0])
    tap_button(page, "نعم")
    wait_for(page, "رقم هويتك")
    assert page.locator(".musaed-input").get_attribute("inputmode") == "numeric"  # a number pad for the id
    assert page.locator(".musaed-input").get_attribute("autocomplete") == "off"
    ask_and_wait(page, KHALID, "رمز تحقق")
    # The code: a number pad, filled in from the SMS by phones that offer it.
    assert page.locator(".musaed-input").get_attribute("inputmode") == "numeric"
    assert page.locator(".musaed-input").get_attribute("autocomplete") == "one-time-code"
    ask_and_wait(page, latest_code(servers, KHALID), "ملخص الطلب")
    assert page.locator(".musaed-input").get_attribute("autocomplete") == "off"  # back to text
    tap_button(page, "نعم")
    page.wait_for_selector(".musaed-receipt img", timeout=60000)
    text = "\n".join(page.locator(".musaed-bot > p").all_inner_texts())
    return TRACKING.findall(text)[-1]


def assert_tracking_number_isolated(page, number: str) -> None:
    """«• MSD-… — الخدمة…»: the number in a <bdi>, the line right to left with the bullet at its right."""
    # The list's line, not the confirmation above it that also holds the number.
    ask_and_wait(page, "طلباتي", f"• {number}")
    line = page.locator(".musaed-bot > p", has_text=f"• {number}").last
    assert line.get_attribute("dir") == "rtl" and line.get_attribute("lang") == "ar"
    layout = line.evaluate(
        """(p, n) => { const bdi = [...p.querySelectorAll('bdi')].find(b => b.textContent === n);
        const before = bdi.previousSibling, after = bdi.nextSibling, r = document.createRange();
        const bullet = before.textContent.lastIndexOf('•'); r.setStart(before, bullet); r.setEnd(before, bullet + 1);
        const b = r.getBoundingClientRect().toJSON();
        const from = after.textContent.search(/[\\u0600-\\u06FF]/); r.setStart(after, from); r.setEnd(after, from + 1);
        const a = r.getBoundingClientRect().toJSON();
        return { number: bdi.getBoundingClientRect().toJSON(), bullet: b, arabic: a }; }""",
        number,
    )
    # Right to left: the bullet, then the number, then the service's name, leftwards on one row.
    assert abs(layout["bullet"]["y"] - layout["number"]["y"]) < 5
    assert layout["bullet"]["x"] > layout["number"]["x"] + layout["number"]["width"] - 1
    if abs(layout["arabic"]["y"] - layout["number"]["y"]) < 5:
        assert layout["arabic"]["x"] < layout["number"]["x"]


def test_in_arabic_the_person_s_bubbles_are_on_the_left_sized_to_their_text_whatever_their_script(
    browser, web_url, servers
):
    context, page = open_chat(browser, web_url, "390")
    number = make_request(page, servers)
    log = box(page, ".musaed-log", 0)
    bots = page.locator(".musaed-bot:not(.musaed-greeting)")
    users = page.locator(".musaed-user")
    # The person's bubbles (Arabic, the id in digits, «نعم») all end at the log's left
    # edge; the bot's, the receipt card included, start at its right edge.
    for i in range(users.count()):
        b = users.nth(i).bounding_box()
        assert b["x"] - log["x"] < 20, users.nth(i).inner_text()
    for i in range(bots.count()):
        b = bots.nth(i).bounding_box()
        assert log["x"] + log["width"] - (b["x"] + b["width"]) < 30, bots.nth(i).inner_text()
    receipt = page.locator(".musaed-has-receipt").bounding_box()
    assert receipt["x"] + receipt["width"] > log["x"] + log["width"] - 30  # the receipt on the bot's side
    # Sized to the text: the code's bubble is small, not a full-width bar.
    code = page.locator(".musaed-user > p", has_text=re.compile(r"^\d{6}$")).first.bounding_box()
    assert code["width"] < log["width"] * 0.3
    id_bubble = page.locator(".musaed-user", has_text=KHALID).bounding_box()
    assert id_bubble["x"] - log["x"] < 20

    assert_tracking_number_isolated(page, number)

    # One English question: its text runs left to right. Once the bot answers in English the
    # chat turns left to right as a whole (its frame follows the person's language), and the
    # sides still say who spoke: every bubble of the person's at the (now right) end, the bot's at the start.
    replies = page.locator(".musaed-bot:not(.musaed-greeting)").count()
    page.fill(".musaed-input", "thanks! and where is my request now?")
    page.press(".musaed-input", "Enter")
    english = page.locator(".musaed-user > p").last
    assert english.get_attribute("lang") == "en" and english.evaluate("e => getComputedStyle(e).direction") == "ltr"
    page.wait_for_function(
        "n => document.querySelectorAll('.musaed-bot:not(.musaed-greeting)').length > n", arg=replies, timeout=60000
    )
    page.wait_for_function("() => document.querySelector('.musaed-chat').getAttribute('dir') === 'ltr'")
    for i in range(users.count()):
        b = users.nth(i).bounding_box()
        assert log["x"] + log["width"] - (b["x"] + b["width"]) < 30, users.nth(i).inner_text()
    for i in range(bots.count()):
        assert bots.nth(i).bounding_box()["x"] - log["x"] < 20, bots.nth(i).inner_text()
    arabic = page.locator(".musaed-user > p").first  # an Arabic bubble still runs right to left inside
    assert arabic.get_attribute("lang") == "ar" and arabic.evaluate("e => getComputedStyle(e).direction") == "rtl"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "widget-390-request.png"))
    context.close()


def test_the_receipt_is_a_card_with_selectable_text_that_opens_full_size(browser, web_url, servers):
    context, page = open_chat(browser, web_url, "360")
    number = make_request(page, servers)
    card = page.locator(".musaed-receipt")
    caption = card.locator("figcaption").inner_text()
    assert number in caption and CAT.services["renew_national_id"].name in caption
    assert re.search(r"\d{4}-\d{2}-\d{2}", caption)  # the date
    # The image has loaded and the log was scrolled after it: the whole card is in view.
    page.wait_for_function("() => document.querySelector('.musaed-receipt img').complete")
    page.wait_for_timeout(300)
    img = card.locator("img").bounding_box()
    log = box(page, ".musaed-log", 0)
    assert img["height"] > 100
    assert img["y"] + img["height"] <= log["y"] + log["height"] + 1, (img, log)
    # Selectable: the number's text can be selected and copied.
    assert card.locator(".musaed-receipt-value").first.evaluate("e => getComputedStyle(e).userSelect") in (
        "all",
        "auto",
    )
    card.locator(".musaed-receipt-open").tap()
    viewer = page.locator("dialog.musaed-viewer[open]")
    viewer.wait_for()
    assert viewer.locator("a[download]").get_attribute("download") == f"{number}.png"
    full = viewer.locator("img").bounding_box()
    assert full["width"] > img["width"]  # bigger than in the bubble
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "widget-360-receipt-open.png"))
    viewer.get_by_role("button", name="إغلاق").click()
    assert page.locator("dialog.musaed-viewer[open]").count() == 0
    # After a reload the conversation comes back with the card, scrolled to its end.
    page.reload()
    page.wait_for_selector(".musaed-receipt img", timeout=20000)
    page.wait_for_function("() => document.querySelector('.musaed-receipt img').complete")
    page.wait_for_timeout(300)
    log = box(page, ".musaed-log", 0)
    last = page.locator(".musaed-msg").last.bounding_box()
    assert last["y"] + last["height"] <= log["y"] + log["height"] + 1
    assert number in page.locator(".musaed-receipt figcaption").inner_text()
    page.screenshot(path=str(SHOTS / "widget-360-receipt.png"))
    context.close()


def test_the_chat_opens_with_a_greeting_and_three_questions_and_links_the_call_centre(browser, web_url):
    context, page = open_chat(browser, web_url, "360")
    greeting = page.locator(".musaed-greeting")
    assert greeting.count() == 1
    suggestions = greeting.locator(".musaed-button")
    assert suggestions.count() == 3
    first = suggestions.first.inner_text()
    suggestions.first.tap()
    page.wait_for_selector(".musaed-bot:not(.musaed-greeting) > p", timeout=60000)
    assert page.locator(".musaed-user > p").first.inner_text() == first
    assert page.locator(".musaed-greeting").count() == 0
    ask_and_wait(page, "ابي اكلم موظف", "992")
    call = page.locator(".musaed-bot a[href='tel:992']")
    assert call.count() >= 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "widget-360.png"))
    context.close()


def test_keyboard_only_input_send_then_answers_and_focus_stays_in_the_chat(browser, web_url):
    context, page = open_chat(browser, web_url, "1280")
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    # The whole answer, its offer's buttons too (a later bubble of the same reply: on a loaded
    # machine the guide alone was on screen when the tabbing began, and nothing in it to reach).
    page.wait_for_selector(".musaed-log .musaed-button", timeout=60000)
    page.focus(".musaed-input")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "musaed-send"
    # Then the answers: the log's links (Absher, 992) and buttons, before anything else.
    for _ in range(10):
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('.musaed-log')")
        if page.evaluate("document.activeElement.className") == "musaed-button":
            break
    assert page.evaluate("document.activeElement.className") == "musaed-button"
    title = page.evaluate("document.activeElement.innerText")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "t => [...document.querySelectorAll('.musaed-user > p')].some(p => p.innerText === t)", arg=title
    )
    # After the button, focus is back in the input, not at the top of the page.
    assert page.evaluate("document.activeElement.className") == "musaed-input"
    page.wait_for_timeout(500)
    context.close()


def test_the_typing_indicator_is_announced_and_the_desktop_box_keeps_its_size(browser, web_url):
    context, page = open_chat(browser, web_url, "1280")
    chat = box(page, ".musaed-chat", 0)
    page.evaluate(
        """() => { window.__said = []; const s = document.querySelector('.musaed-typing');
        new MutationObserver(() => window.__said.push(s.textContent)).observe(s, {subtree: true, childList: true,
        characterData: true}); }"""
    )
    assert page.locator(".musaed-typing").get_attribute("role") == "status"
    for question in ("ضاعت هويتي", "كم الرسوم", "كيف اجدد الاقامة", "شكرا"):
        page.fill(".musaed-input", question)
        page.press(".musaed-input", "Enter")
        page.wait_for_function(
            "n => document.querySelectorAll('.musaed-bot:not(.musaed-greeting)').length >= n",
            arg=1,
            timeout=60000,
        )
        page.wait_for_function("() => document.querySelector('.musaed-dots').hidden", timeout=60000)
    assert "مساعد يكتب…" in page.evaluate("window.__said")
    after = box(page, ".musaed-chat", 0)
    assert after["height"] == chat["height"]  # the log scrolls inside the box
    log = page.locator(".musaed-log")
    assert log.evaluate("e => e.scrollHeight > e.clientHeight")
    context.close()


def test_on_a_phone_the_input_and_the_latest_message_stay_above_the_keyboard(browser, web_url):
    context, page = open_chat(browser, web_url, "390")
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    page.locator(".musaed-input").tap()
    # The on-screen keyboard takes the lower part of the screen: the visual viewport shrinks.
    page.set_viewport_size({"width": 390, "height": 450})
    page.wait_for_timeout(300)
    chat = box(page, ".musaed-chat", 0)
    assert chat["height"] <= 450
    form = box(page, ".musaed-form", 0)
    assert form["y"] + form["height"] <= 450
    last = page.locator(".musaed-msg").last.bounding_box()
    log = box(page, ".musaed-log", 0)
    assert last["y"] + last["height"] <= log["y"] + log["height"] + 1  # the latest reply's end is in view
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_the_widget_s_files_are_compressed_and_a_repeat_visit_takes_them_from_the_cache(browser, web_url):
    import requests

    first = requests.get(web_url + "/widget.js", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert first.headers["Content-Encoding"] == "gzip"
    raw = requests.get(web_url + "/widget.js", headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "Content-Encoding" not in raw.headers and raw.text == first.text
    etag = first.headers["ETag"]
    assert requests.get(web_url + "/widget.js", headers={"If-None-Match": etag}, timeout=10).status_code == 304

    context = browser.new_context()
    page = context.new_page()
    sizes = (
        "() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".filter(e => !e.name.includes('socket.io/?')).map(e => [e.name, e.transferSize, e.decodedBodySize])"
    )
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    visit = page.evaluate(sizes)
    page.goto("about:blank")
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    repeat = page.evaluate(sizes)
    files = [e for e in repeat if "?v=" in e[0]]
    assert len(files) == 4
    assert all(transfer == 0 for _, transfer, _ in files), files  # from the browser's cache
    first_bytes = sum(t for _, t, _ in visit)
    repeat_bytes = sum(t for _, t, _ in repeat)
    decoded = sum(d for _, _, d in visit)
    print(f"widget bytes: first visit {first_bytes} transferred ({decoded} decoded), repeat visit {repeat_bytes}")
    assert first_bytes < decoded  # gzipped
    assert repeat_bytes < first_bytes / 4
    context.close()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_axe_core_finds_no_violations(browser, web_url, servers, size):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make install` runs npm ci in web/")
    # axe is injected as a script: the page's CSP (no inline script) is bypassed for this check only.
    context, page = open_chat(browser, web_url, size, bypass_csp=True)
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    ask_and_wait(page, "how do I renew my iqama?", catalogue.load("en").services["renew_resident_id"].steps[0])
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document.querySelector('.musaed-chat'))).violations")
    assert result == [], [(v["id"], v["nodes"][0]["html"]) for v in result]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"widget-{size}.png"))
    context.close()
