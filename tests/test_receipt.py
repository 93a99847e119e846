import io
import os
import stat

import pytest
import zxingcpp
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw

from musaed import catalogue, receipt, seed, settings, store
from musaed.identity import mask_id

CAT = catalogue.load()
RECEIPT_LABELS = (
    "receipt_title",
    "receipt_service",
    "receipt_beneficiary",
    "receipt_tracking_number",
    "receipt_date",
    "receipt_expected_delivery",
)


@pytest.fixture
def db(tmp_path):
    db = store.open_db(tmp_path / "db.sqlite")
    seed.seed(db)
    return db


@pytest.fixture
def request_row(db):
    i = seed.ids()
    row, created = store.create_request(
        db,
        service_id="renew_resident_id",
        applicant_id=i["khalid"],
        beneficiary_id=i["amal"],
        conversation_id="test-receipt",
    )
    assert created
    return row


@pytest.fixture
def drawn_text(monkeypatch):
    """Every string handed to Pillow to draw, as drawn."""
    texts = []
    original = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):
        texts.append(text)
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    return texts


def render(**overrides):
    s = CAT.services["renew_national_id"]
    kwargs = dict(
        service_name=s.name,
        beneficiary_masked_id=mask_id("1010000014"),
        tracking_number="MSD-12345678",
        created_at="2025-03-01T21:30:00+00:00",
        expected_delivery=s.delivery,
    )
    kwargs.update(overrides)
    return receipt.render_receipt(**kwargs)


def as_image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


def qr_texts(png: bytes):
    return [b.text for b in zxingcpp.read_barcodes(as_image(png).convert("RGB"))]


# -- the image -----------------------------------------------------------------


def test_receipt_is_a_png_of_the_expected_width():
    png = render()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = as_image(png)
    assert image.format == "PNG"
    assert image.width == receipt.WIDTH == 800
    assert 400 < image.height < 1600
    assert image.convert("RGB").getpixel((5, image.height - 5)) == (255, 255, 255)


def test_qr_code_decodes_to_exactly_the_tracking_number():
    assert qr_texts(render(tracking_number="MSD-00420017")) == ["MSD-00420017"]


def test_receipt_shows_labels_and_values_shaped_and_right_to_left(drawn_text):
    s = CAT.services["report_lost_id"]  # the longest delivery text
    render(service_name=s.name, expected_delivery=s.delivery)
    for key in RECEIPT_LABELS:
        assert receipt.visual(CAT.labels[key]) in drawn_text, key
    assert receipt.visual(s.name) in drawn_text
    assert "1******014" in drawn_text  # left to right, not "014******1"
    assert "MSD-12345678" in drawn_text
    assert "2025-03-02" in drawn_text  # 21:30 UTC is the next day in Riyadh
    # The long delivery text is wrapped, every word of it drawn.
    drawn_words = {w for line in drawn_text for w in line.split()}
    assert {receipt.visual(w) for w in s.delivery.split()} <= drawn_words
    delivery_lines = [t for t in drawn_text if receipt.visual("الوطني") in t or receipt.visual("أقرب") in t]
    assert len(delivery_lines) >= 2


def test_an_english_receipt_has_english_labels_laid_out_from_the_left(db, request_row, monkeypatch):
    drawn = []
    original = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):
        drawn.append((xy, text, kwargs.get("anchor")))
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    en = catalogue.load("en")
    png = receipt.receipt_for(db, request_row["tracking_number"], "en")
    texts = {text: (xy, anchor) for xy, text, anchor in drawn}
    for key in RECEIPT_LABELS:
        label = en.labels[key]
        assert label in texts, key
        (x, _), anchor = texts[label]
        assert x == receipt.MARGIN and anchor.startswith("l"), key  # from the left edge, not the right
    assert en.labels["receipt_title"] in texts
    assert qr_texts(png) == [request_row["tracking_number"]]
    # A language it does not have gets the Arabic receipt, never an error.
    receipt.receipt_for(db, request_row["tracking_number"], "fr")
    assert receipt.visual(CAT.labels["receipt_title"]) in [t for _, t, _ in drawn]


def test_receipt_links_carry_the_language_outside_the_signature(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSAED_DB", str(tmp_path / "musaed.db"))
    arabic, english = receipt.receipt_path("MSD-12345678"), receipt.receipt_path("MSD-12345678", "en")
    assert "lang=" not in arabic and english == arabic + "&lang=en"


def test_visual_joins_letters_and_reverses_them():
    shown = receipt.visual("الخدمة")
    # Presentation forms (joined glyphs), no bare letters left for the font to guess.
    assert all("\ufe70" <= ch <= "\ufeff" for ch in shown)
    assert len(shown) == len("الخدمة")
    # Visual order: the word's last letter (teh marbuta, final form) comes first.
    assert shown[0] == "\ufe94" and shown[-1] == "\ufe8d"
    assert receipt.visual("MSD-12345678") == "MSD-12345678"
    assert receipt.visual("1******014") == "1******014"


def test_every_character_drawn_has_a_glyph_in_the_font():
    cmap = TTFont(receipt.font_path()).getBestCmap()
    bold = TTFont(receipt.font_path(bold=True)).getBestCmap()
    texts = [CAT.labels[k] for k in RECEIPT_LABELS]
    texts += [s.name for s in CAT.services.values()] + [s.delivery for s in CAT.services.values()]
    for text in texts:
        for ch in receipt.visual(text):
            assert ord(ch) in cmap and ord(ch) in bold, (text, ch, hex(ord(ch)))


def test_font_ships_with_an_installed_package():
    path = receipt.font_path()
    assert path.is_file() and "site-packages" in path.parts


def test_receipt_labels_are_in_the_catalogue():
    for key in RECEIPT_LABELS:
        assert any("\u0600" <= ch <= "\u06ff" for ch in CAT.labels[key]), key


def test_render_refuses_a_full_national_id():
    with pytest.raises(ValueError):
        render(beneficiary_masked_id="1010000014")


# -- from the database ---------------------------------------------------------


def test_receipt_for_renders_a_stored_request(db, request_row):
    png = receipt.receipt_for(db, request_row["tracking_number"])
    assert as_image(png).width == 800
    assert qr_texts(png) == [request_row["tracking_number"]]


def test_receipt_for_never_passes_the_full_national_id(db, request_row, monkeypatch, drawn_text):
    full_id = request_row["beneficiary_id"]
    seen = {}
    real = receipt.render_receipt

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(receipt, "render_receipt", spy)
    png = receipt.receipt_for(db, request_row["tracking_number"])

    service = CAT.services["renew_resident_id"]
    assert seen == {
        "service_name": service.name,
        "beneficiary_masked_id": mask_id(full_id),
        "tracking_number": request_row["tracking_number"],
        "created_at": request_row["created_at"],
        "expected_delivery": service.delivery,
        "language": "ar",
        "documents": [],  # none sent with this request (issue 31)
    }
    for value in seen.values():
        assert full_id not in str(value)
    for text in drawn_text:
        assert full_id not in text and full_id[::-1] not in text
    assert mask_id(full_id) in drawn_text
    assert full_id.encode() not in png
    assert qr_texts(png) == [request_row["tracking_number"]]


def test_receipt_for_an_unknown_request_raises(db):
    with pytest.raises(KeyError):
        receipt.receipt_for(db, "MSD-00000000")


# -- signed links --------------------------------------------------------------


def test_sign_and_verify_round_trip():
    secret = b"k" * 32
    sig = receipt.sign("MSD-12345678", secret)
    assert len(sig) == 32 and int(sig, 16) >= 0
    assert receipt.verify("MSD-12345678", sig, secret)
    assert receipt.sign("MSD-12345678", secret) == sig  # deterministic


@pytest.mark.parametrize(
    "tracking, sig_change, secret",
    [
        ("MSD-12345679", None, b"k" * 32),  # another request
        ("MSD-12345678", "flip", b"k" * 32),  # a tampered signature
        ("MSD-12345678", None, b"other-secret"),  # signed with another secret
        ("MSD-12345678", "short", b"k" * 32),  # truncated
        ("MSD-12345678", "empty", b"k" * 32),
        ("MSD-12345678", "none", b"k" * 32),
        ("MSD-12345678", "arabic", b"k" * 32),  # non-ASCII must not raise
    ],
)
def test_verify_rejects_tampering(tracking, sig_change, secret):
    sig = receipt.sign("MSD-12345678", b"k" * 32)
    sig = {
        None: sig,
        "flip": sig[:-1] + ("0" if sig[-1] != "0" else "1"),
        "short": sig[:16],
        "empty": "",
        "none": None,
        "arabic": "توقيع",
    }[sig_change]
    assert not receipt.verify(tracking, sig, secret)


def test_secret_file_is_created_once_with_mode_0600_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv(settings.RECEIPT_SECRET.name, raising=False)
    monkeypatch.setenv("MUSAED_DB", str(tmp_path / "data" / "musaed.db"))
    path = tmp_path / "data" / "receipt.secret"
    assert not path.exists()

    first = receipt.receipt_secret()
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) >= 32
    assert receipt.receipt_secret() == first == receipt.receipt_secret()
    assert [p.name for p in path.parent.iterdir()] == ["receipt.secret"]  # no temp files left

    # Another process (simulated: nothing cached) reads the same secret.
    sig = receipt.sign("MSD-12345678", first)
    assert receipt.verify("MSD-12345678", sig, receipt.receipt_secret())


def test_secret_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSAED_DB", str(tmp_path / "musaed.db"))
    monkeypatch.setenv(settings.RECEIPT_SECRET.name, "from-the-environment")
    assert receipt.receipt_secret() == b"from-the-environment"
    assert not (tmp_path / "receipt.secret").exists()


def test_receipt_path_is_signed(tmp_path, monkeypatch):
    monkeypatch.delenv(settings.RECEIPT_SECRET.name, raising=False)
    monkeypatch.setenv("MUSAED_DB", str(tmp_path / "musaed.db"))
    link = receipt.receipt_path("MSD-12345678")
    prefix = "/receipts/MSD-12345678.png?sig="
    assert link.startswith(prefix)
    assert receipt.verify("MSD-12345678", link[len(prefix) :], receipt.receipt_secret())
    assert not receipt.verify("MSD-12345679", link[len(prefix) :], receipt.receipt_secret())


def test_a_receipt_lists_the_documents_sent_with_the_request(db, drawn_text, tmp_path, monkeypatch):
    """Issue 31: each document by name, type and size, drawn right to left in one row each."""
    import document_samples as samples

    from musaed import documents

    monkeypatch.setenv("MUSAED_DOCUMENTS_DIR", str(tmp_path / "documents"))
    family = CAT.services["replace_family_record"]
    for data, kind in ((samples.photo(), "national_id_copy"), (samples.scan_pdf(), "record_report")):
        row = documents.keep(db, "test-receipt-docs", documents.check(data))
        store.take_document(db, row["id"], "test-receipt-docs", family.id, kind)
    request, _ = store.create_request(
        db,
        service_id=family.id,
        applicant_id=seed.ids()["khalid"],
        beneficiary_id=seed.ids()["khalid"],
        conversation_id="test-receipt-docs",
        documents=[d["id"] for d in store.staged_documents(db, "test-receipt-docs", family.id)],
    )
    receipt.receipt_for(db, request["tracking_number"])
    lines = receipt.document_lines(CAT, family, store.request_documents(db, request["tracking_number"]))
    assert [line.split(":")[0] for line in lines] == [d.name for d in family.documents]
    assert lines[0].split(": ")[1].startswith("JPEG · ") and lines[1].split(": ")[1].startswith("PDF · ")
    for line in lines:  # drawn in visual order: the Arabic name shaped, right to left
        assert receipt.visual(line) in drawn_text
    assert receipt.visual(CAT.labels["receipt_documents"]) in drawn_text
