"""Documents people send in the chat: checked before kept, kept private, gone with retention.

Every channel hands the bytes it received (a widget upload, a Telegram photo
or file, a WhatsApp image or document) to `check`, then `keep`s what passes:

- **Judged by the bytes**, never by the name or the declared type: JPEG
  (``FF D8 FF``), PNG (``89 50 4E 47 0D 0A 1A 0A``) or PDF (``%PDF-``) at the
  start, else refused. At most ``MUSAED_MAX_DOCUMENT_MB`` (default 5 MB).
- **Images are re-encoded** with Pillow (the EXIF orientation applied first),
  so what is kept holds pixels only: no EXIF (GPS, camera, time), XMP, ICC,
  comments or text chunks, and nothing appended after the image. Images over
  50 megapixels are refused (a small file can hold a huge image); the longest
  side is brought down to 4096 pixels, plenty for an ID card.
- **PDFs are read, not rewritten** (no PDF library is installed): refused when
  a name in the file, outside its streams or inside its compressed object
  streams, is one that runs or carries something (``/JavaScript``, ``/JS``,
  ``/Launch``, ``/EmbeddedFile(s)``, ``/RichMedia``, ``/XFA``, ``/GoToE``,
  ``/ImportData``), names spelled with ``#xx`` escapes included; refused too
  when it is encrypted or an object stream cannot be read (its names would
  be out of sight). An ``/OpenAction`` or ``/AA`` that only turns a page is
  allowed; one that runs a script names ``/JS``. What a kept PDF still holds
  (its own metadata, such as an author) is the person's document as sent.

A refused file gets one of REASONS and nothing of it is written anywhere.
A kept one is a file named by 128 random bits, mode 0600, in
``MUSAED_DOCUMENTS_DIR`` (default ``documents/`` beside the database, outside
the web root; in a cluster, a volume every replica mounts), and a row of the
store (musaed/store/documents.py) with its conversation, type, size and
SHA-256; the conversation carries only the row's id, its type and size.
Nothing here logs more than a type and a size.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import secrets
import string
import warnings
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, List, Optional, Set, Tuple, Union

from musaed import settings, store
from musaed.store import Db

log = logging.getLogger(__name__)
# Pillow logs the EXIF it reads at debug level (the camera, the GPS position): its loggers say
# warnings only, whatever level a server runs at.
logging.getLogger("PIL").setLevel(logging.WARNING)

JPEG, PNG, PDF = "image/jpeg", "image/png", "application/pdf"
FILE_TYPES = (JPEG, PNG, PDF)
_MAGIC = ((b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG), (b"%PDF-", PDF))
# Short names of the types, for titles and file names (the person's words are in the catalogue).
SHORT = {JPEG: "JPEG", PNG: "PNG", PDF: "PDF"}
EXTENSION = {JPEG: "jpg", PNG: "png", PDF: "pdf"}

# Why a file is refused (each has its words in the catalogue: labels `document_refused_<reason>`).
EMPTY, TOO_LARGE, NOT_ALLOWED, UNREADABLE, PDF_ACTIVE, PDF_ENCRYPTED, DOWNLOAD_FAILED = (
    "empty",
    "too_large",
    "not_allowed",
    "unreadable",
    "pdf_active",
    "pdf_encrypted",
    "download_failed",
)
REASONS = (EMPTY, TOO_LARGE, NOT_ALLOWED, UNREADABLE, PDF_ACTIVE, PDF_ENCRYPTED, DOWNLOAD_FAILED)

MAX_PIXELS = 50_000_000
MAX_SIDE = 4096
JPEG_QUALITY = 90
# How much a PDF's object streams may inflate to, in all: past it, the file is not read further.
MAX_INFLATED = 64 * 1024 * 1024

# Names that make a PDF run something or carry another file.
RISKY_PDF_NAMES = frozenset(
    {b"JavaScript", b"JS", b"Launch", b"EmbeddedFile", b"EmbeddedFiles", b"RichMedia", b"XFA", b"GoToE", b"ImportData"}
)


def max_bytes(env=None) -> int:
    """The largest document accepted, in bytes (``MUSAED_MAX_DOCUMENT_MB`` × 1024 × 1024)."""
    return int(settings.MAX_DOCUMENT_MB.number(env) * 1024 * 1024)


@dataclass(frozen=True)
class Checked:
    """A document that passed, as it is to be kept (an image already re-encoded)."""

    file_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Refused:
    reason: str


def sniff(data: bytes) -> Optional[str]:
    """The file's type by its first bytes, or None when it is none of ours."""
    return next((file_type for magic, file_type in _MAGIC if data.startswith(magic)), None)


def check(data: bytes, limit: Optional[int] = None) -> Union[Checked, Refused]:
    """`data` as it may be kept, or why it may not."""
    limit = max_bytes() if limit is None else limit
    if not data:
        return Refused(EMPTY)
    if len(data) > limit:
        return Refused(TOO_LARGE)
    file_type = sniff(data)
    if file_type is None:
        return Refused(NOT_ALLOWED)
    if file_type == PDF:
        risk = pdf_risk(data)
        return Refused(risk) if risk else Checked(PDF, bytes(data))
    try:
        clean = reencode(data, file_type)
    except _TooLarge:
        return Refused(TOO_LARGE)
    except Exception:  # noqa: BLE001 - whatever Pillow cannot read is refused, never kept
        return Refused(UNREADABLE)
    return Checked(file_type, clean) if len(clean) <= limit else Refused(TOO_LARGE)


class _TooLarge(ValueError):
    pass


def reencode(data: bytes, file_type: str) -> bytes:
    """The image's pixels in a new file of the same type: no metadata, nothing appended."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            if (image.format, file_type) not in (("JPEG", JPEG), ("PNG", PNG)):
                raise ValueError(f"{image.format} is not {file_type}")
            if image.width * image.height > MAX_PIXELS:
                raise _TooLarge(f"{image.width}×{image.height}")
            image.load()
            upright = ImageOps.exif_transpose(image)  # the way the camera held it, before its EXIF goes
            if max(upright.size) > MAX_SIDE:
                upright.thumbnail((MAX_SIDE, MAX_SIDE))
            # A new image made of these pixels only: nothing of the original's info (EXIF, ICC, XMP,
            # text chunks) comes along. A palette image becomes RGB(A), its transparency kept.
            mode = upright.mode
            if mode not in ("1", "L", "LA", "RGB", "RGBA", "CMYK", "I;16"):
                mode = "RGBA" if upright.has_transparency_data else "RGB"
            pixels = upright.convert(mode) if mode != upright.mode else upright
            clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if file_type == JPEG:
        if clean.mode not in ("L", "RGB", "CMYK"):
            clean = clean.convert("RGB")
        clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


# -- PDFs --------------------------------------------------------------------------

# A PDF name: "/" and its regular characters (whitespace and delimiters end it).
_NAME = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)")
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# Where a stream's body starts: the end of its dictionary, the keyword and its end of line.
_STREAM = re.compile(rb">>\s*stream(?:\r\n|\n|\r)")
_ENDSTREAM = b"endstream"


def _names(data: bytes) -> Iterable[bytes]:
    for match in _NAME.finditer(data):
        yield _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), match.group(1))


def _split_streams(data: bytes) -> Tuple[List[bytes], List[Tuple[bytes, bytes]]]:
    """(the file without its streams' bodies, [(a stream's dictionary, its body)])."""
    outside: List[bytes] = []
    streams: List[Tuple[bytes, bytes]] = []
    pos = 0
    while True:
        match = _STREAM.search(data, pos)
        if match is None:
            break
        end = data.find(_ENDSTREAM, match.end())
        if end < 0:
            raise ValueError("a stream without its end")
        start = data.rfind(b"obj", pos, match.start())
        dictionary = data[start if start >= 0 else pos : match.start() + 2]
        outside.append(data[pos : match.end()])
        streams.append((dictionary, data[match.end() : end]))
        pos = end + len(_ENDSTREAM)
    outside.append(data[pos:])
    return outside, streams


def pdf_risk(data: bytes) -> Optional[str]:
    """Why a PDF may not be kept (PDF_ACTIVE, PDF_ENCRYPTED, UNREADABLE), or None.

    What a reader acts on is in the objects' dictionaries: those outside any
    stream, and those packed into compressed object streams (``/ObjStm``),
    which are inflated and read too. Other streams (page drawing, fonts,
    images) are data, and not read: random bytes in an image would look like
    names now and then.
    """
    try:
        outside, streams = _split_streams(data)
    except ValueError:
        return UNREADABLE
    seen: Set[bytes] = set()
    for part in outside:
        seen.update(_names(part))
    if b"Encrypt" in seen:
        return PDF_ENCRYPTED  # its object streams cannot be read, and so not checked
    inflated = 0
    for dictionary, body in streams:
        names = set(_names(dictionary))
        if b"ObjStm" not in names:
            continue
        filters = names & {b"FlateDecode", b"Fl", b"ASCIIHexDecode", b"ASCII85Decode", b"LZWDecode", b"RunLengthDecode"}
        if filters - {b"FlateDecode", b"Fl"} or b"DecodeParms" in names:
            return UNREADABLE  # packed in a way not read here: what it holds is out of sight
        try:
            inflater = zlib.decompressobj()
            objects = inflater.decompress(body, MAX_INFLATED - inflated) if filters else body
        except zlib.error:
            return UNREADABLE
        if inflater.unconsumed_tail:
            return UNREADABLE  # inflates past MAX_INFLATED
        inflated += len(objects)
        seen.update(_names(objects))
    return PDF_ACTIVE if seen & RISKY_PDF_NAMES else None


# -- keeping -----------------------------------------------------------------------


def directory(db: Optional[Db] = None, env=None) -> Path:
    """Where documents are kept: MUSAED_DOCUMENTS_DIR, else `documents/` beside the database (`db`'s
    own file when it is SQLite, so a server given another database keeps its documents beside it)."""
    given = settings.DOCUMENTS_DIR.given(env)
    if given:
        return Path(given)
    if db is not None and store.dialect(db) == "sqlite":
        found = [row[2] for row in db.execute("PRAGMA database_list").fetchall() if row[1] == "main" and row[2]]
        if found:
            return Path(found[0]).parent / "documents"
    return store.db_path().parent / "documents"


_LETTERS = string.ascii_lowercase


def new_id() -> str:
    """A document's reference in a conversation: 24 random letters (about 112 bits). Letters only:
    the tracker store masks runs of digits (musaed/privacy.py), which would spoil a reference."""
    return "".join(secrets.choice(_LETTERS) for _ in range(24))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def keep(db: Db, conversation: str, checked: Checked, now: Optional[datetime] = None) -> dict:
    """Write `checked` under a random name, then its row: the row (its `id` goes into the conversation)."""
    folder = directory(db)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = secrets.token_hex(16)
    path = folder / name
    _write_private(path, checked.data)
    row = {
        "id": new_id(),
        "conversation": conversation,
        "file_type": checked.file_type,
        "size": checked.size,
        "sha256": checked.sha256,
        "stored_name": name,
        "received_at": store.now_iso(now),
    }
    try:
        store.add_document(db, row)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    log.info("document kept in %s: %s", conversation, describe(checked.file_type, checked.size))
    return {**row, "kind": None, "service_id": None, "tracking_number": None, "attached_at": None}


class Changed(Exception):
    """The file on disk is not the one received (its hash differs) or is gone."""


def read(db: Db, row: dict) -> bytes:
    """A kept document's bytes, checked against the hash taken when it came."""
    try:
        data = (directory(db) / row["stored_name"]).read_bytes()
    except FileNotFoundError:
        raise Changed(f"document {row['id']} is missing") from None
    if hashlib.sha256(data).hexdigest() != row["sha256"]:
        raise Changed(f"document {row['id']} differs from what was received")
    return data


def remove_files(db: Db, names: Iterable[str]) -> int:
    """Delete kept files by name; how many were there."""
    folder, removed = directory(db), 0
    for name in names:
        if not re.fullmatch(r"[0-9a-f]{32}", name):
            continue  # only names this module makes
        try:
            (folder / name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def discard(db: Db, document_id: str, conversation: str) -> None:
    """A document no request will take: its row and file, now."""
    remove_files(db, store.discard_document(db, document_id, conversation))


def discard_staged(db: Db, conversation: str) -> int:
    """Every document of `conversation` that is not part of a request (the request stopped)."""
    return remove_files(db, store.discard_staged(db, conversation))


def purge(db: Db, staged_before: str, closed_before: str, orphans_before: float) -> int:
    """Retention: documents no request took (received before `staged_before`), those of requests
    closed before `closed_before`, and files with no row left (written before `orphans_before`, a
    timestamp: a crash between a file and its row, or the demo seed's clearing). How many files."""
    removed = remove_files(db, store.purge_documents(db, staged_before, closed_before))
    folder = directory(db)
    if not folder.is_dir():
        return removed
    known = store.stored_names(db)
    for path in folder.iterdir():
        if path.name not in known and re.fullmatch(r"[0-9a-f]{32}", path.name):
            try:
                if path.stat().st_mtime < orphans_before:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
    return removed


# -- what a conversation carries -----------------------------------------------------

# The message a channel passes into the conversation for a document: Rasa reads it as the
# `inform` intent with one entity (domain.yml), with no model in the way.
DOCUMENT_ENTITY = "document"
REFUSED_ENTITY = "document_refused"


def message_text(document_id: str) -> str:
    return '/inform{"%s": "%s"}' % (DOCUMENT_ENTITY, document_id)


def refused_text(reason: str) -> str:
    return '/inform{"%s": "%s"}' % (REFUSED_ENTITY, reason if reason in REASONS else UNREADABLE)


def size_text(size: int) -> str:
    """412 KB, 1.2 MB: a size as people read it (never the exact bytes)."""
    if size < 1024 * 1024:
        return f"{max(1, -(-size // 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def describe(file_type: str, size: int) -> str:
    """What a log line, a transcript or an agent's list may say of a document: type and size."""
    return f"{SHORT.get(file_type, '?')} · {size_text(size)}"


def title(file_type: Optional[str] = None, size: Optional[int] = None) -> str:
    """How a document stands in a transcript in place of its reference ("📎 JPEG · 412 KB")."""
    return "📎 " + (describe(file_type, size) if file_type and size is not None else "…")
