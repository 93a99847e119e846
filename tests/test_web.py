"""The chat widget in a real headless Chromium against the real servers."""

import os
import socket
import subprocess
import sys
import time
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


@pytest.fixture(scope="module")
def web_url(servers):
    port = free_port()
    env = {**os.environ, "MUSAED_DB": servers.env["MUSAED_DB"]}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "web" / "serve.py"), "--port", str(port), "--rasa-url", servers.url],
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


def bot_texts(page):
    return page.locator(".musaed-bot p").all_inner_texts()


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
        "s => [...document.querySelectorAll('.musaed-bot p')].some(p => p.innerText.includes(s))",
        arg=step,
        timeout=20000,
    )

    # The offer's buttons: «الرسوم» answers with the service's fees.
    page.get_by_role("button", name=CAT.labels["button_fees"]).last.click()
    page.wait_for_function(
        "s => [...document.querySelectorAll('.musaed-bot p')].some(p => p.innerText.includes(s))",
        arg=CAT.services["report_lost_id"].fees,
        timeout=20000,
    )
    assert page.locator(".musaed-user p").all_inner_texts()[-1] == CAT.labels["button_fees"]

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "widget.png"), full_page=True)

    before = bot_texts(page)
    page.reload()
    page.wait_for_selector(".musaed-bot p")
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
