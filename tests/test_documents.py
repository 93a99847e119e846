"""Documents in the chat, the core (musaed/documents.py, musaed/store/documents.py): judged by their
bytes, images re-encoded without their metadata, risky PDFs refused, files kept 0600 under random
names outside the web root, attached to the request in its own transaction, downloaded by agents
with an audit row, and gone with retention; on SQLite and PostgreSQL where the store is involved."""

import io
import logging
import os
import re
import stat
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import document_samples as samples
import pytest
from PIL import Image

from musaed import catalogue, documents, help_desk, receipt, retention, seed, service_request, store

ROOT = Path(__file__).resolve().parent.parent
CAT = catalogue.load()
FAMILY = CAT.services["replace_family_record"]
ID = seed.ids()
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)


# -- judged by the bytes -----------------------------------------------------------


def test_a_photo_is_re_encoded_upright_with_nothing_of_its_metadata_or_what_trails_it():
    raw = samples.photo(trailer=b"<?php system($_GET['c']); ?>")
    assert samples.CAMERA.encode() in raw and samples.COMMENT in raw  # the sample carries them
    kept = documents.check(raw)
    assert isinstance(kept, documents.Checked) and kept.file_type == documents.JPEG
    image = Image.open(io.BytesIO(kept.data))
    assert image.format == "JPEG" and image.size == (400, 640)  # turned as the camera held it (EXIF 6)
    assert dict(image.getexif()) == {}  # no EXIF at all: no GPS, no camera, no orientation
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(image.info)
    for secret in (samples.CAMERA.encode(), samples.COMMENT, b"Exif", b"php", b"GPS"):
        assert secret not in kept.data
    assert kept.sha256 == __import__("hashlib").sha256(kept.data).hexdigest() and kept.size == len(kept.data)


def test_a_png_keeps_its_pixels_and_loses_its_text():
    raw = samples.png_with_text()
    assert b"tEXt" in raw
    kept = documents.check(raw)
    assert isinstance(kept, documents.Checked) and kept.file_type == documents.PNG
    assert b"tEXt" not in kept.data and b"GPS" not in kept.data
    assert Image.open(io.BytesIO(kept.data)).getpixel((5, 5)) == (0, 120, 80, 255)


@pytest.mark.parametrize(
    "data, reason",
    [
        (samples.program_renamed_jpg(), documents.NOT_ALLOWED),
        (samples.html_renamed_jpg(), documents.NOT_ALLOWED),
        (b"GIF89a" + b"\x00" * 100, documents.NOT_ALLOWED),
        (b"\xff\xd8\xff\xe0 not really a JPEG", documents.UNREADABLE),
        (b"\x89PNG\r\n\x1a\n" + samples.photo()[3:], documents.UNREADABLE),  # a PNG's mark on a JPEG
        (b"", documents.EMPTY),
        (samples.pdf_with_javascript(), documents.PDF_ACTIVE),
        (samples.pdf_with_escaped_javascript(), documents.PDF_ACTIVE),
        (samples.pdf_with_script_in_object_stream(), documents.PDF_ACTIVE),
        (samples.pdf_with_embedded_file(), documents.PDF_ACTIVE),
        (samples.pdf_with_javascript().replace(b"/S /JavaScript /JS (app.alert('hi'))", b"/S /Launch"), "pdf_active"),
        (samples.encrypted_pdf(), documents.PDF_ENCRYPTED),
        (samples.pdf_bomb(), documents.UNREADABLE),
    ],
    ids=[
        "program.jpg",
        "html.jpg",
        "gif",
        "jpeg-mark-only",
        "png-mark-on-jpeg",
        "empty",
        "pdf-javascript",
        "pdf-escaped-names",
        "pdf-object-stream",
        "pdf-embedded-file",
        "pdf-launch",
        "pdf-encrypted",
        "pdf-bomb",
    ],
)
def test_what_is_refused_and_why(data, reason):
    assert documents.check(data) == documents.Refused(reason)


def test_a_clean_scan_passes_as_it_came_and_an_image_stream_that_looks_like_a_name_is_not_read():
    pdf = samples.scan_pdf()
    assert documents.check(pdf) == documents.Checked(documents.PDF, pdf)
    # Inside an image's stream, bytes that spell /JS mean nothing: only dictionaries are read.
    noisy = pdf.replace(b"stream\n", b"stream\n/JS /Launch ", 1)
    assert isinstance(documents.check(noisy), documents.Checked)


def test_the_size_limit_is_a_setting(monkeypatch):
    photo = samples.photo()
    assert documents.max_bytes() == 5 * 1024 * 1024
    assert documents.check(samples.big_photo(6 * 1024 * 1024)) == documents.Refused(documents.TOO_LARGE)
    monkeypatch.setenv("MUSAED_MAX_DOCUMENT_MB", str(len(photo) / 2 / 1024 / 1024))
    assert documents.check(photo) == documents.Refused(documents.TOO_LARGE)
    monkeypatch.setenv("MUSAED_MAX_DOCUMENT_MB", "1")
    assert isinstance(documents.check(photo), documents.Checked)


def test_an_image_too_big_in_pixels_is_refused_however_small_its_file():
    out = io.BytesIO()
    Image.new("1", (10000, 6000)).save(out, "PNG")  # 60 megapixels in a few KB
    assert out.tell() < 100_000
    assert documents.check(out.getvalue()) == documents.Refused(documents.TOO_LARGE)


def test_what_a_conversation_and_a_log_say_of_a_document():
    assert documents.message_text("abcdef") == '/inform{"document": "abcdef"}'
    assert documents.refused_text("too_large") == '/inform{"document_refused": "too_large"}'
    assert documents.refused_text("anything else") == '/inform{"document_refused": "unreadable"}'
    assert documents.title(documents.JPEG, 421_000) == "📎 JPEG · 412 KB"
    assert documents.size_text(1_300_000) == "1.2 MB"
    assert re.fullmatch(r"[a-z]{24}", documents.new_id())  # letters: the tracker store masks digit runs


# -- kept safe ---------------------------------------------------------------------------


@pytest.fixture
def db(open_store, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSAED_DOCUMENTS_DIR", str(tmp_path / "documents"))
    db = open_store()
    seed.seed(db, today=TODAY)
    return db


def keep(db, conversation="web:abc", data=None, now=None):
    checked = documents.check(data or samples.photo())
    assert isinstance(checked, documents.Checked)
    return documents.keep(db, conversation, checked, now=now)


def test_a_kept_file_is_private_randomly_named_outside_the_web_root_and_its_row_says_the_rest(db, caplog):
    with caplog.at_level(logging.DEBUG):
        row = keep(db)
    folder = documents.directory(db)
    path = folder / row["stored_name"]
    assert re.fullmatch(r"[0-9a-f]{32}", row["stored_name"]) and row["stored_name"] != row["id"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (ROOT / "web") not in path.resolve().parents
    stored = store.get_document(db, row["id"])
    assert {k: stored[k] for k in ("conversation", "file_type", "size", "sha256")} == {
        "conversation": "web:abc",
        "file_type": documents.JPEG,
        "size": path.stat().st_size,
        "sha256": row["sha256"],
    }
    assert stored["kind"] is None and stored["tracking_number"] is None
    assert documents.read(db, stored) == path.read_bytes()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "JPEG · " in logged
    for secret in (row["sha256"], row["stored_name"], row["id"], samples.CAMERA):
        assert secret not in logged


def test_a_changed_or_missing_file_is_noticed(db):
    row = store.get_document(db, keep(db)["id"])
    path = documents.directory(db) / row["stored_name"]
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(documents.Changed):
        documents.read(db, row)
    path.unlink()
    with pytest.raises(documents.Changed):
        documents.read(db, row)


def test_the_default_place_is_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("MUSAED_DOCUMENTS_DIR", raising=False)
    db = store.open_db(tmp_path / "here" / "musaed.db")
    assert documents.directory(db) == tmp_path / "here" / "documents"


# -- taken by the request under way, attached when it is made ---------------------------------


def family_request(db, conversation="web:abc", documents_=()):
    return service_request.submit(
        db,
        FAMILY,
        ID["khalid"],
        None,
        conversation,
        {"record_kind": "damaged", "documents": "received", "terms_accepted": "yes"},
        today=TODAY,
    )


def test_a_document_is_taken_only_in_its_own_conversation_and_once(db):
    row = keep(db, "web:mine")
    assert store.take_document(db, row["id"], "telegram:someone-else", FAMILY.id, "national_id_copy") is None
    taken = store.take_document(db, row["id"], "web:mine", FAMILY.id, "national_id_copy")
    assert taken["kind"] == "national_id_copy"
    assert store.take_document(db, row["id"], "web:mine", FAMILY.id, "record_report") is None


def test_the_request_is_made_only_with_every_document_and_takes_them(db):
    id_copy = keep(db)
    store.take_document(db, id_copy["id"], "web:abc", FAMILY.id, "national_id_copy")
    half = family_request(db)
    assert not half.created and not half.assessment.eligible
    assert [r.check for r in half.assessment.results if not r.passed] == ["record_report"]
    report = keep(db, data=samples.scan_pdf())
    store.take_document(db, report["id"], "web:abc", FAMILY.id, "record_report")
    made = family_request(db)
    assert made.created
    number = made.request["tracking_number"]
    attached = FAMILY.in_document_order(store.request_documents(db, number))
    assert [(d["kind"], d["file_type"]) for d in attached] == [
        ("national_id_copy", documents.JPEG),
        ("record_report", documents.PDF),
    ]
    assert all(d["attached_at"] for d in attached)
    assert store.staged_documents(db, "web:abc", FAMILY.id) == []
    # The receipt lists them, by name, type and size.
    lines = receipt.document_lines(CAT, FAMILY, attached)
    assert lines[0].startswith(FAMILY.documents[0].name + ": JPEG · ") and lines[1].startswith(
        FAMILY.documents[1].name + ": PDF · "
    )


def test_a_document_gone_before_the_request_is_made_makes_no_request(db):
    rows = [keep(db), keep(db, data=samples.scan_pdf())]
    for row, kind in zip(rows, ("national_id_copy", "record_report"), strict=True):
        store.take_document(db, row["id"], "web:abc", FAMILY.id, kind)
    with pytest.raises(LookupError):
        store.create_request(
            db,
            service_id=FAMILY.id,
            applicant_id=ID["khalid"],
            beneficiary_id=ID["khalid"],
            conversation_id="web:abc",
            documents=[rows[0]["id"], "no-such-document"],
        )
    assert not store.open_request(db, FAMILY.id, ID["khalid"])
    assert len(store.staged_documents(db, "web:abc", FAMILY.id)) == 2  # rolled back with it


def test_a_stopped_request_takes_its_documents_with_it(db):
    row = keep(db)
    path = documents.directory(db) / row["stored_name"]
    assert documents.discard_staged(db, "web:abc") == 1
    assert not path.exists() and store.get_document(db, row["id"]) is None


# -- customer care --------------------------------------------------------------------


def test_an_agent_downloads_a_requests_document_and_every_download_is_audited(db):
    for data, kind in ((samples.photo(), "national_id_copy"), (samples.scan_pdf(), "record_report")):
        store.take_document(db, keep(db, data=data)["id"], "web:abc", FAMILY.id, kind)
    number = family_request(db).request["tracking_number"]
    [found] = help_desk.find_requests(db, tracking_number=number)
    listed = found["documents"]
    assert [d["name"] for d in listed] == [d.name for d in FAMILY.documents]
    assert listed[0]["file_name"] == f"{number}-national_id_copy.jpg"
    row, data = help_desk.download_document(db, "huda", number, listed[1]["id"])
    assert data == samples.scan_pdf() and row["kind"] == "record_report"
    audit = store.care_audit(db, agent="huda", limit=1)[0]
    assert (audit["action"], audit["national_id"], audit["subject"]) == ("download_document", ID["khalid"], number)
    assert "record_report" in audit["detail"] and "PDF" in audit["detail"]
    # Another request's number, or no such document: refused, and audited too.
    with pytest.raises(help_desk.CareError) as refused:
        help_desk.download_document(db, "omar", "MSD-00000000", listed[1]["id"])
    assert refused.value.code == "not_found"
    assert store.care_audit(db, agent="omar", limit=1)[0]["action"] == "download_document_refused"
    # The file changed on disk since it came: not sent.
    path = documents.directory(db) / store.get_document(db, listed[0]["id"])["stored_name"]
    path.write_bytes(b"\xff\xd8\xff tampered")
    with pytest.raises(help_desk.CareError) as changed:
        help_desk.download_document(db, "huda", number, listed[0]["id"])
    assert changed.value.code == "document_changed"


# -- retention -------------------------------------------------------------------------


def test_retention_deletes_documents_no_request_took_and_those_of_requests_closed_long_ago(db):
    old = keep(db, "web:gone", now=NOW - timedelta(days=2))  # sent for a request never made
    fresh = keep(db, "web:now", now=NOW - timedelta(hours=2))
    for data, kind in ((samples.photo(), "national_id_copy"), (samples.scan_pdf(), "record_report")):
        store.take_document(db, keep(db, data=data, now=NOW - timedelta(days=300))["id"], "web:abc", FAMILY.id, kind)
    number = family_request(db).request["tracking_number"]
    folder = documents.directory(db)
    orphan = folder / ("f" * 32)  # a file whose row never came
    orphan.write_bytes(b"x")
    os.utime(orphan, (NOW.timestamp() - 7200,) * 2)
    counts = retention.purge_records(db, retention.Policy(), now=NOW)
    assert counts["documents"] == 2  # the unclaimed one and the orphan
    assert store.get_document(db, old["id"]) is None and not orphan.exists()
    assert store.get_document(db, fresh["id"]) is not None
    assert len(store.request_documents(db, number)) == 2  # an open request keeps its documents
    # Closed: kept 180 days (MUSAED_RETENTION documents=…) after it closed, then gone, files too.
    store.set_request_status(db, number, "delivered", actor="agent:huda", now=NOW - timedelta(days=181))
    names = [d["stored_name"] for d in store.request_documents(db, number)]
    assert retention.purge_records(db, retention.parse("documents=200d"), now=NOW)["documents"] == 0
    assert retention.purge_records(db, retention.Policy(), now=NOW)["documents"] == 2
    assert store.request_documents(db, number) == [] and not any((folder / n).exists() for n in names)
    assert store.get_request(db, number) is not None  # the request itself stays


def test_the_retention_setting_reads_documents():
    assert retention.parse("documents=30d").documents == timedelta(days=30)
    assert retention.Policy().documents == timedelta(days=180)


def test_an_agent_saves_a_document_with_the_command_line_and_it_is_audited(tmp_path, monkeypatch, capsys):
    from care import cli

    monkeypatch.setenv("MUSAED_DOCUMENTS_DIR", str(tmp_path / "documents"))
    monkeypatch.setenv("MUSAED_CARE_TOKENS", "huda:tok-huda-cli-documents")
    monkeypatch.setenv("MUSAED_CARE_TOKEN", "tok-huda-cli-documents")
    monkeypatch.setenv("MUSAED_CARE_LOG", str(tmp_path / "care-cli.log"))
    path = tmp_path / "musaed.db"
    db = store.open_db(path)
    seed.seed(db, today=TODAY)
    for data, kind in ((samples.photo(), "national_id_copy"), (samples.scan_pdf(), "record_report")):
        store.take_document(db, keep(db, data=data)["id"], "web:abc", FAMILY.id, kind)
    number = family_request(db).request["tracking_number"]
    [found] = help_desk.find_requests(db, tracking_number=number)
    listed = cli.format_request(found)
    assert FAMILY.documents[0].name in listed and "JPEG · " in listed and found["documents"][0]["id"] in listed
    out = tmp_path / "saved.jpg"
    assert cli.main(["document", number, found["documents"][0]["id"], "--out", str(out), "--db", str(path)]) == 0
    assert out.read_bytes() == documents.read(db, store.get_document(db, found["documents"][0]["id"]))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert store.care_audit(db, agent="huda", limit=1)[0]["action"] == "download_document"
    # Never over a file that is there (nothing read then); a document of no such request is refused.
    assert cli.main(["document", number, found["documents"][0]["id"], "--out", str(out), "--db", str(path)]) == 1
    assert "فلم أكتب فوقه" in capsys.readouterr().err
    assert store.care_audit(db, agent="huda", limit=1)[0]["action"] == "download_document"  # no second one
    monkeypatch.chdir(tmp_path)
    assert cli.main(["document", "MSD-00000000", found["documents"][0]["id"], "--db", str(path)]) == 1
    assert CAT.labels["care_document_not_found"] in capsys.readouterr().err
