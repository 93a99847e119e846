"""Documents in the chat end to end over REST (issue 31): the family record's two documents asked
for by name and sent as files, refused ones told why (a program renamed .jpg, 6 MB, a PDF with a
script), «ما عندي» answered with where to get it, the request made with them, kept 0600 under
random names outside the web root, and an agent downloading one through the care API, audited.
A file at a step that asks for none, or before anyone verified, is answered and not kept."""

import re
import stat
from pathlib import Path

import document_samples as samples
import pytest
from PIL import Image
from test_care import TOKENS as CARE_TOKENS
from test_care import care_api  # noqa: F401 - the care server fixture
from test_request_flows import ID, TRACKING, joined, latest_code

from care.server import make_app
from musaed import catalogue, documents, receipt, store

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
CAT = catalogue.load()
FAMILY = CAT.services["replace_family_record"]
ID_COPY, REPORT = FAMILY.documents
TOKENS = {"huda": "tok-huda-docs-51c0e2", "omar": "tok-omar-docs-9ab7d1"}


def kept_of(servers, conversation: str) -> list:
    db = store.open_db(servers.db_file)
    return list(db.query("SELECT * FROM documents WHERE conversation = ?", [conversation]))


def folder(servers) -> Path:
    return servers.db_file.parent / "documents"


def to_documents_step(chat, servers, who="khalid") -> str:
    chat.say("سجل الاسرة تمزق ابي بدل تالف")
    chat.say("نعم")
    chat.say(ID[who])
    assert "تالف أم مفقود" in joined(chat.say(latest_code(servers, ID[who])))
    return joined(chat.say("بدل تالف"))


async def test_a_family_record_request_with_its_documents_and_an_agent_downloading_one(chat, servers):
    asked = to_documents_step(chat, servers)
    assert ID_COPY.ask.format(limit="5.0 MB") in asked  # by name, with the size allowed

    # Refused, each with its reason, and nothing of them kept.
    for data, reason in (
        (samples.program_renamed_jpg(), "not_allowed"),
        (samples.big_photo(6 * 1024 * 1024), "too_large"),
        (samples.pdf_with_javascript(), "pdf_active"),
    ):
        said = joined(chat.send_file(data))
        assert said.startswith("❌"), said
        assert CAT.labels[f"document_refused_{reason}"].format(limit="5.0 MB") in said
        assert ID_COPY.name in said  # and the same document asked for again
    assert kept_of(servers, chat.conversation_id) == []

    # The copy of the ID: received, named, sized; then the report is asked for.
    said = joined(chat.send_file(samples.photo()))
    assert re.search(rf"✅ وصل: {ID_COPY.name} \(صورة JPEG، \d+ KB\)", said), said
    assert REPORT.ask.format(limit="5.0 MB") in said
    # «ما عندي»: where to get it (the sources don't say who issues it: where to ask), the request kept.
    said = joined(chat.say("ما عندي"))
    assert REPORT.missing.format(limit="", **CAT.call_centre_fields()) in said
    assert CAT.labels["document_kept_open"].format(name=REPORT.name) in said
    assert CAT.fees("replace_family_record") in joined(chat.say("كم الرسوم؟"))  # a question aside, still open
    said = joined(chat.send_file(samples.scan_pdf()))
    assert f"✅ وصل: {REPORT.name} (ملف PDF، " in said and CAT.labels["terms"] in said

    summary = joined(chat.say("نعم"))
    assert "ملخص الطلب" in summary and f"{ID_COPY.name} (صورة JPEG، " in summary
    created = chat.say("نعم")
    number = TRACKING.search(joined(created)).group()

    # Kept safe: the request's two files, 0600, random names, outside the web root, no metadata.
    db = store.open_db(servers.db_file)
    rows = FAMILY.in_document_order(store.request_documents(db, number))
    assert [(r["kind"], r["file_type"]) for r in rows] == [(ID_COPY.id, documents.JPEG), (REPORT.id, documents.PDF)]
    for row in rows:
        path = folder(servers) / row["stored_name"]
        assert re.fullmatch(r"[0-9a-f]{32}", path.name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert (ROOT / "web") not in path.resolve().parents
        assert documents.read(db, row) == path.read_bytes()
    photo = (folder(servers) / rows[0]["stored_name"]).read_bytes()
    assert (
        samples.CAMERA.encode() not in photo
        and dict(Image.open(folder(servers) / rows[0]["stored_name"]).getexif()) == {}
    )
    assert receipt.document_lines(CAT, FAMILY, rows)[0].startswith(ID_COPY.name + ": JPEG · ")
    assert any(r.get("image") for r in created)  # the receipt (listing them) is sent as ever

    # Customer care: listed with the request, downloaded behind the token, every download audited.
    from aiohttp.test_utils import TestClient, TestServer

    app = make_app(None, servers.tracker_db, TOKENS, db_path=servers.db_file)
    async with TestClient(TestServer(app)) as client:
        path = f"/care/requests/{number}/documents/{rows[0]['id']}"
        assert (await client.get(path)).status == 401
        huda = {"Authorization": f"Bearer {TOKENS['huda']}"}
        found = await (await client.get(f"/care/requests?tracking_number={number}", headers=huda)).json()
        [request] = found["requests"]
        assert [(d["name"], d["size"], d["sha256"]) for d in request["documents"]] == [
            (ID_COPY.name, rows[0]["size"], rows[0]["sha256"]),
            (REPORT.name, rows[1]["size"], rows[1]["sha256"]),
        ]
        r = await client.get(path, headers=huda)
        assert r.status == 200 and await r.read() == photo
        assert r.headers["Content-Type"] == "image/jpeg"
        assert r.headers["Content-Disposition"] == f'attachment; filename="{number}-national_id_copy.jpg"'
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store"
        other = await client.get(f"/care/requests/MSD-00000000/documents/{rows[0]['id']}", headers=huda)
        assert other.status == 404
    # The person's copy of their data lists the documents too (name, type, size).
    copy = joined(chat.say("ابي نسخة من بياناتي"))
    assert number in copy and f"{ID_COPY.name} (صورة JPEG، " in copy and f"{REPORT.name} (ملف PDF، " in copy
    audit = store.care_audit(db, agent="huda", limit=5)
    downloads = [a for a in audit if a["action"] == "download_document"]
    assert len(downloads) == 1 and downloads[0]["subject"] == number and downloads[0]["national_id"] == ID["khalid"]
    assert audit[0]["action"] == "download_document_refused"


def test_a_file_before_anyone_verified_or_at_a_step_that_asks_for_none_is_answered_and_not_kept(chat, servers):
    # No request, nobody verified: answered, and deleted at once.
    said = joined(chat.send_file(samples.photo()))
    assert said == CAT.labels["document_not_now"]
    assert kept_of(servers, chat.conversation_id) == []
    # The id step of a request: answered, not read as an id, the step asked again.
    chat.say("ابي اجدد هويتي الوطنية")
    chat.say("نعم")
    replies = chat.send_file(samples.scan_pdf())
    assert replies[0]["text"] == CAT.labels["document_not_now"]
    assert "رقم هويتك" in joined(replies[1:]) and "10 أرقام" in joined(replies[1:])
    assert kept_of(servers, chat.conversation_id) == []
    # A refused file at the wrong step is answered the same way.
    assert joined(chat.send_file(samples.program_renamed_jpg())).startswith(CAT.labels["document_not_now"])
    # The request goes on as before.
    assert "رمز تحقق" in joined(chat.say(ID["khalid"]))


def test_a_request_that_stops_takes_its_documents_with_it(chat, servers):
    to_documents_step(chat, servers)
    chat.send_file(samples.photo())
    [row] = kept_of(servers, chat.conversation_id)
    assert (folder(servers) / row["stored_name"]).exists()
    assert CAT.labels["document_kept_open"].split(":")[0] in joined(chat.say("ما عندي التقرير"))
    chat.say("الغاء")
    assert kept_of(servers, chat.conversation_id) == []
    assert not (folder(servers) / row["stored_name"]).exists()


def make_family_request(chat, servers) -> str:
    to_documents_step(chat, servers)
    chat.send_file(samples.photo())
    chat.send_file(samples.scan_pdf())
    chat.say("نعم")
    return TRACKING.search(joined(chat.say("نعم"))).group()


def test_an_agent_downloads_a_document_from_the_care_page(chat, servers, care_api, browser, tmp_path):  # noqa: F811
    number = make_family_request(chat, servers)
    db = store.open_db(servers.db_file)
    stored = FAMILY.in_document_order(store.request_documents(db, number))
    context = browser.new_context(accept_downloads=True, locale="ar-SA")
    page = context.new_page()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{care_api.url}/care/")
    page.evaluate(f"sessionStorage.setItem('musaedCareToken', {CARE_TOKENS['huda']!r})")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#req-number", number)
    page.locator("#req-form button").click()
    card = page.locator(f".request[data-tracking-number='{number}']")
    card.wait_for()
    items = card.locator("ul.documents li")
    assert items.count() == 2
    assert ID_COPY.name in items.nth(0).inner_text() and "JPEG · " in items.nth(0).inner_text()
    assert REPORT.name in items.nth(1).inner_text() and "PDF · " in items.nth(1).inner_text()
    with page.expect_download() as download:
        items.nth(1).locator("button.download").click()
    saved = tmp_path / "saved.pdf"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"{number}-record_report.pdf"
    assert saved.read_bytes() == documents.read(db, stored[1]) and saved.read_bytes().startswith(b"%PDF-")
    items.nth(1).locator("text=نُزّل").wait_for()
    assert refused == []
    context.close()
    audit = store.care_audit(db, agent="huda", limit=20)
    [row] = [a for a in audit if a["action"] == "download_document" and a["subject"] == number]
    assert "record_report" in row["detail"]


def test_in_english_each_document_is_asked_for_and_acknowledged_in_english(chat, servers):
    en = catalogue.load("en")
    family = en.services["replace_family_record"]
    chat.say("my family record got damaged, how do I get a replacement?")
    chat.say("yes")
    chat.say(ID["khalid"])
    chat.say(latest_code(servers, ID["khalid"]))
    assert family.documents[0].ask.format(limit="5.0 MB") in joined(chat.say("damaged"))
    said = joined(chat.send_file(samples.photo()))
    assert re.search(rf"✅ Received: the {family.documents[0].name} \(JPEG image, \d+ KB\)\.", said), said
    assert family.documents[1].ask.format(limit="5.0 MB") in said
    said = joined(chat.say("I don't have it"))
    assert family.documents[1].missing.format(limit="", **en.call_centre_fields()) in said
    assert en.labels["document_kept_open"].format(name=family.documents[1].name) in said
