"""Documents from the widget in a real headless Chromium (issue 31): the attach button, the camera
input a phone opens, and a file dropped on the chat, each a real file set on the page; the server
judges it by its bytes, keeps it or says why not, and the widget shows the bot's answer."""

import base64
from pathlib import Path

import document_samples as samples
import pytest
from test_request_flows import ID

from musaed import catalogue, store

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "results" / "web"
CAT = catalogue.load()
FAMILY = CAT.services["replace_family_record"]
ID_COPY, REPORT = FAMILY.documents
ANSWERED = (
    "s => [...document.querySelectorAll('.musaed-bot:not(.musaed-greeting) > p')].some(p => p.innerText.includes(s))"
)


def say(page, text: str, expect: str) -> None:
    page.fill(".musaed-input", text)
    page.press(".musaed-input", "Enter")
    page.wait_for_function(ANSWERED, arg=expect, timeout=60000)


def wait_for(page, text: str) -> None:
    page.wait_for_function(ANSWERED, arg=text, timeout=60000)


def conversation(page) -> str:
    token = page.evaluate("JSON.parse(localStorage.getItem('musaed.chat.v1')).sessionId")
    return "web:" + token.split(".")[0]


def kept(servers, conversation_id: str) -> list:
    db = store.open_db(servers.db_file)
    return FAMILY.in_document_order(db.query("SELECT * FROM documents WHERE conversation = ?", [conversation_id]))


def test_the_widget_sends_documents_by_button_camera_and_drop(browser, web_url, servers, tmp_path):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True, locale="ar-SA"
    )
    page = context.new_page()
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=20000)
    # The attach button is always there; the camera only when a document is asked for.
    assert page.locator(".musaed-attach").is_visible() and not page.locator(".musaed-camera").is_visible()
    assert page.locator(".musaed-shot").get_attribute("capture") == "environment"
    assert page.locator(".musaed-shot").get_attribute("accept") == "image/*"
    assert "application/pdf" in page.locator(".musaed-file").get_attribute("accept")

    # A file before any request: answered, not kept.
    early = tmp_path / "early.jpg"
    early.write_bytes(samples.photo())
    page.set_input_files(".musaed-file", str(early))
    wait_for(page, CAT.labels["document_not_now"])
    assert kept(servers, conversation(page)) == []

    say(page, "سجل الاسرة تمزق ابي بدل تالف", CAT.labels["offer"])
    say(page, "نعم", "رقم هويتك")
    say(page, ID["khalid"], "رمز تحقق")
    code = store.latest_code(store.open_db(servers.db_file), ID["khalid"])["code"]
    say(page, code, "تالف أم مفقود")
    say(page, "بدل تالف", ID_COPY.ask.format(limit="5.0 MB"))
    page.wait_for_selector(".musaed-camera:not([hidden])")
    assert page.locator(".musaed-attach.musaed-wanted").count() == 1

    # A program renamed .jpg, through the attach button: refused by its bytes, with the reason.
    renamed = tmp_path / "هويتي.jpg"
    renamed.write_bytes(samples.program_renamed_jpg())
    page.set_input_files(".musaed-file", str(renamed))
    wait_for(page, CAT.labels["document_refused_not_allowed"])
    # An oversized one: no more than the limit and a byte leaves the page; the bot says why.
    big = tmp_path / "big.jpg"
    big.write_bytes(samples.big_photo(6 * 1024 * 1024))
    page.set_input_files(".musaed-file", str(big))
    wait_for(page, CAT.labels["document_refused_too_large"].format(limit="5.0 MB"))
    assert kept(servers, conversation(page)) == []
    # The photo, through the camera input a phone opens.
    photo = tmp_path / "camera.jpg"
    photo.write_bytes(samples.photo())
    page.set_input_files(".musaed-shot", str(photo))
    wait_for(page, f"✅ وصل: {ID_COPY.name}")
    wait_for(page, REPORT.ask.format(limit="5.0 MB"))
    # The report, dropped on the chat.
    pdf = base64.b64encode(samples.scan_pdf()).decode()
    page.evaluate(
        """data => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "تقرير.pdf", { type: "application/pdf" }));
            const chat = document.querySelector(".musaed-chat");
            for (const type of ["dragenter", "dragover", "drop"]) {
                chat.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        pdf,
    )
    wait_for(page, f"✅ وصل: {REPORT.name}")
    wait_for(page, CAT.labels["terms"])
    assert page.locator(".musaed-drop").is_hidden()
    # The person's own bubbles say what went: a type and a size, never the file's name.
    mine = page.locator(".musaed-user > p").all_inner_texts()
    files = [t for t in mine if t.startswith("📎")]
    assert len(files) == 5 and files[-1].startswith("📎 PDF · ") and not any("هويتي" in t for t in files)
    assert not page.locator(".musaed-pending").count()
    rows = kept(servers, conversation(page))
    assert [(r["kind"], r["file_type"]) for r in rows] == [
        ("national_id_copy", "image/jpeg"),
        ("record_report", "application/pdf"),
    ]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "widget-documents-390.png"))
    # After a reload, the history shows each file as its type and size, not the message that carried it.
    page.reload()
    page.wait_for_selector(".musaed-bot:not(.musaed-greeting) > p", timeout=20000)
    mine = page.locator(".musaed-user > p").all_inner_texts()
    assert not any(t.startswith("/inform") for t in mine)
    assert [t.split(" · ")[0] for t in mine if t.startswith("📎")][-2:] == ["📎 JPEG", "📎 PDF"]
    context.close()


def test_the_upload_route_refuses_another_origin_and_a_session_it_did_not_issue(servers):
    import requests

    url = f"{servers.url}/webhooks/socketio/document"
    assert requests.get(url, timeout=10).json() == {"max_bytes": 5 * 1024 * 1024}
    db = store.open_db(servers.db_file)
    before = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    forged = requests.post(url, data=samples.photo(), headers={"Authorization": "Bearer 00.11"}, timeout=30)
    assert forged.status_code == 401
    elsewhere = requests.post(
        url, data=samples.photo(), headers={"Authorization": "Bearer x", "Origin": "https://evil.example"}, timeout=30
    )
    assert elsewhere.status_code == 403
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == before  # nothing read, nothing kept
