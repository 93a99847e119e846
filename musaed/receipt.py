"""Request receipts: a PNG the person can keep, reached by a signed link.

`render_receipt` draws the receipt (title, service, the beneficiary's masked
national id, tracking number, date, expected delivery, the documents sent
with the request by name, type and size, and a QR code holding exactly the
tracking number); `receipt_for` fills it from the database and
the catalogue.  Links are signed with an HMAC so receipts cannot be fetched
by guessing tracking numbers: `receipt_path` makes one, `verify` checks it.
A receipt is in the language the person wrote in (`lang` in its link, which
the signature leaves out: it reveals nothing), laid out right to left in
Arabic and left to right in English.

Text is drawn with Pillow's BASIC layout after arabic-reshaper (joined
letter forms) and python-bidi (visual right-to-left order).  Pillow's RAQM
engine, when present, would shape and reorder a second time, so it is never
used.  The font is matplotlib's DejaVu Sans, which has the Arabic
presentation forms and ships with the installed packages, not the OS.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union
from urllib.parse import quote

import arabic_reshaper
import qrcode
from bidi.algorithm import get_display
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

from musaed import catalogue, keys, settings, store
from musaed.documents import describe
from musaed.identity import mask_id
from musaed.language import ARABIC, LANGUAGES

WIDTH = 800
MARGIN = 40
SECRET_FILE = "receipt.secret"
SIGNATURE_LENGTH = 32  # hex characters: 128 bits of HMAC-SHA256
# Saudi Arabia keeps UTC+3 all year; the date shown is the local one.
RIYADH = timezone(timedelta(hours=3))

_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_FULL_ID = re.compile(r"\d{10}")

_INK = (33, 37, 41)
_MUTED = (96, 104, 112)
_BRAND = (0, 108, 53)
_RULE = (214, 220, 225)
_WHITE = (255, 255, 255)

_reshaper = arabic_reshaper.ArabicReshaper()


# -- signed links --------------------------------------------------------------


def sign(tracking_number: str, secret: bytes) -> str:
    """The link signature for one tracking number (HMAC-SHA256, hex, truncated)."""
    message = b"musaed-receipt:" + str(tracking_number).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:SIGNATURE_LENGTH]


def verify(tracking_number: str, sig: Optional[str], secret: bytes) -> bool:
    """Whether `sig` is the signature of `tracking_number`, compared in constant time."""
    if not isinstance(sig, str) or not isinstance(tracking_number, str):
        return False
    return hmac.compare_digest(sign(tracking_number, secret).encode("ascii"), sig.encode("utf-8"))


def receipt_secret() -> bytes:
    """The signing secret shared by the action server and the web server:
    MUSAED_RECEIPT_SECRET, else `receipt.secret` beside the database (musaed/keys.py)."""
    return keys.shared_secret(settings.RECEIPT_SECRET, SECRET_FILE)


def receipt_path(tracking_number: str, language: str = ARABIC) -> str:
    """The signed link to a request's receipt, e.g. /receipts/MSD-12345678.png?sig=…&lang=en"""
    sig = sign(tracking_number, receipt_secret())
    path = f"/receipts/{quote(tracking_number, safe='')}.png?sig={sig}"
    return path if language == ARABIC else f"{path}&lang={quote(language)}"


# -- rendering -----------------------------------------------------------------


@lru_cache(maxsize=None)
def font_path(bold: bool = False) -> Path:
    import matplotlib  # only for its bundled fonts

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


@lru_cache(maxsize=None)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    # BASIC: the text arrives shaped and in visual order already.
    return ImageFont.truetype(str(font_path(bold)), size, layout_engine=ImageFont.Layout.BASIC)


def visual(text: str) -> str:
    """Text as drawn: Arabic joined (presentation forms) and in right-to-left order.

    Text without Arabic letters (a tracking number, a masked id, a date) is
    left as it is: run through the bidi algorithm in a right-to-left
    paragraph, "1******014" would come out as "014******1".
    """
    if not _ARABIC.search(text):
        return text
    return get_display(_reshaper.reshape(text), base_dir="R")


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> List[str]:
    """Split logical text into lines that fit `width` once drawn; each line in visual order."""
    lines: List[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if current and font.getlength(visual(candidate)) > width:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return [visual(line) for line in lines]


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def _qr_image(data: str, target: int = 210) -> Image.Image:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4, box_size=1)
    qr.add_data(data)
    qr.make(fit=True)
    modules = qr.modules_count + 2 * qr.border
    qr.box_size = max(4, target // modules)
    return qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")


def display_date(value: Union[str, date, datetime]) -> str:
    """YYYY-MM-DD in Saudi time, from an ISO string, a datetime or a date."""
    if isinstance(value, str):
        try:
            parsed: Union[date, datetime] = datetime.fromisoformat(value)
        except ValueError:
            return value
        value = parsed
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(RIYADH)
        return value.date().isoformat()
    return value.isoformat()


def render_receipt(
    *,
    service_name: str,
    beneficiary_masked_id: str,
    tracking_number: str,
    created_at: Union[str, date, datetime],
    expected_delivery: str,
    language: str = ARABIC,
    documents: Sequence[str] = (),
) -> bytes:
    """The receipt as PNG bytes: WIDTH px wide, white, right to left in Arabic, left to right in English.

    `beneficiary_masked_id` must already be masked (identity.mask_id); a
    full ten-digit id is refused, so it can never end up on an image.
    """
    if _FULL_ID.search(str(beneficiary_masked_id)):
        raise ValueError("beneficiary_masked_id must be masked (musaed.identity.mask_id)")
    labels = catalogue.load(language).labels
    rtl = language == ARABIC

    title_font = _font(32, bold=True)
    label_font = _font(21, bold=True)
    value_font = _font(22)
    caption_font = _font(20)

    right = WIDTH - MARGIN
    # Where a line starts, and which way it runs from there.
    start, anchor = (right, "r") if rtl else (MARGIN, "l")
    rows: Sequence[Tuple[str, str]] = (
        (labels["receipt_service"], service_name),
        (labels["receipt_beneficiary"], beneficiary_masked_id),
        (labels["receipt_tracking_number"], tracking_number),
        (labels["receipt_date"], display_date(created_at)),
        (labels["receipt_expected_delivery"], expected_delivery),
    ) + (((labels["receipt_documents"], "\n".join(documents)),) if documents else ())
    label_width = max(int(label_font.getlength(visual(label))) for label, _ in rows)
    # Values start after the labels, on the side the reading goes.
    value_start = start - label_width - 28 if rtl else start + label_width + 28
    value_width = right - label_width - 28 - MARGIN
    laid_out = [(visual(label), _wrap(str(value), value_font, value_width)) for label, value in rows]

    line_h = _line_height(value_font) + 8
    header_h = 96
    row_gap = 18
    body_h = sum(len(lines) * line_h for _, lines in laid_out) + row_gap * (len(laid_out) - 1)
    qr = _qr_image(tracking_number)
    height = header_h + 32 + body_h + 28 + 1 + 28 + qr.height + 8 + _line_height(caption_font) + MARGIN

    image = Image.new("RGB", (WIDTH, height), _WHITE)
    draw = ImageDraw.Draw(image)

    # Header band with the title, at the side a line starts.
    draw.rectangle((0, 0, WIDTH, header_h), fill=_BRAND)
    draw.text(
        (start, header_h // 2), visual(labels["receipt_title"]), font=title_font, fill=_WHITE, anchor=anchor + "m"
    )

    # Rows: label at the starting edge, value after it.
    y = header_h + 32
    for label, lines in laid_out:
        draw.text((start, y), label, font=label_font, fill=_MUTED, anchor=anchor + "a")
        for line in lines:
            draw.text((value_start, y), line, font=value_font, fill=_INK, anchor=anchor + "a")
            y += line_h
        y += row_gap
    y += 28 - row_gap

    draw.line((MARGIN, y, WIDTH - MARGIN, y), fill=_RULE, width=1)
    y += 1 + 28

    # QR code (the tracking number and nothing else), centred, number beneath.
    image.paste(qr, ((WIDTH - qr.width) // 2, y))
    y += qr.height + 8
    draw.text((WIDTH // 2, y), tracking_number, font=caption_font, fill=_MUTED, anchor="ma")

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def receipt_for(db, tracking_number: str, language: str = ARABIC) -> bytes:
    """Render the receipt of a stored request; KeyError if there is no such request.

    Access control is the caller's: check the link's signature (`verify`)
    before calling.
    """
    request = store.get_request(db, tracking_number)
    if request is None:
        raise KeyError(tracking_number)
    person = store.get_person(db, request["beneficiary_id"])
    if person is None:
        raise KeyError(request["beneficiary_id"])
    language = language if language in LANGUAGES else ARABIC
    service = catalogue.load(language).service(request["service_id"])
    if service is None:
        raise KeyError(request["service_id"])
    return render_receipt(
        service_name=service.name,
        beneficiary_masked_id=mask_id(person["national_id"]),
        tracking_number=request["tracking_number"],
        created_at=request["created_at"],
        expected_delivery=service.delivery,
        language=language,
        documents=document_lines(catalogue.load(language), service, store.request_documents(db, tracking_number)),
    )


def document_lines(cat: catalogue.Catalogue, service: catalogue.Service, rows: Sequence[dict]) -> List[str]:
    """Each document of a request as the receipt shows it: «صورة الهوية الوطنية: JPEG · 412 KB» (no
    brackets: drawn right to left, a bracket around a Latin run would face the wrong way)."""
    lines = []
    for row in service.in_document_order(rows):
        document = service.document(row["kind"])
        name = document.name if document else str(row["kind"])
        shown = describe(row["file_type"], row["size"])
        lines.append(cat.labels["receipt_document_line"].format(name=name, file=shown))
    return lines
