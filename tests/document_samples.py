"""Files people might send, made here (no fixtures on disk): a phone photo with GPS in its EXIF,
a scan as PDF, and what must be refused: a program renamed .jpg, a PDF with a script (plain,
spelled with #xx escapes, packed in a compressed object stream), an encrypted PDF, a huge one."""

import io
import os
import time
import zlib

from PIL import ExifTags, Image, PngImagePlugin

# What the photo's metadata says: none of it may be kept, logged or stored.
CAMERA = "MusaedSecretCam"
LATITUDE = (24.0, 42.0, 7.5)
COMMENT = b"taken at home, Al Narjis"


def photo(width: int = 640, height: int = 400, trailer: bytes = b"") -> bytes:
    """A JPEG as a phone writes it: EXIF with the camera, an orientation (turned 90°) and GPS,
    a comment, and whatever `trailer` hides after the image."""
    image = Image.new("RGB", (width, height), (190, 40, 40))
    for x in range(0, width, 40):  # some detail, so the file is not trivially small
        image.paste((20, 20, 120), (x, 0, x + 10, height))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA
    exif[ExifTags.Base.Orientation] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = LATITUDE
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=COMMENT, quality=92)
    return out.getvalue() + trailer


def big_photo(size: int) -> bytes:
    """A JPEG of at least `size` bytes (noise compresses badly)."""
    side = 256
    while True:
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=98)
        if out.tell() >= size:
            return out.getvalue()
        side *= 2


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "GPS 24.7136 46.6753")
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 120, 80, 255)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def scan_pdf() -> bytes:
    """A clean one-page PDF, as a scanner makes one (an image on a page)."""
    out = io.BytesIO()
    when = time.strptime("2026-12-06 09:00", "%Y-%m-%d %H:%M")  # the same bytes at every call
    Image.new("RGB", (500, 700), (250, 250, 250)).save(out, "PDF", resolution=100, creationDate=when, modDate=when)
    return out.getvalue()


def program_renamed_jpg() -> bytes:
    """A Windows program's first bytes: what `report.jpg` may really be."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run"


def html_renamed_jpg() -> bytes:
    return b"<!doctype html><script>fetch('/steal')</script>"


def pdf_with_javascript() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"3 0 obj\n<< /Type /Action /S /JavaScript /JS (app.alert('hi')) >>\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def pdf_with_escaped_javascript() -> bytes:
    """The same, its names spelled with #xx escapes (/J#61vaScript is /JavaScript)."""
    return pdf_with_javascript().replace(b"/JavaScript", b"/J#61va#53cript").replace(b"/JS ", b"/J#53 ")


def pdf_with_script_in_object_stream() -> bytes:
    """The action packed into a compressed object stream: not visible in the file's bytes."""
    packed = zlib.compress(b"3 0 << /Type /Action /S /JavaScript /JS (app.alert('hi')) >>")
    return (
        b"%PDF-1.5\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>\nendobj\n"
        b"4 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length "
        + str(len(packed)).encode()
        + b" >>\nstream\n"
        + packed
        + b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def pdf_with_embedded_file() -> bytes:
    return (
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Names << /EmbeddedFiles 2 0 R >> >>\nendobj\n"
        b"2 0 obj\n<< /Names [(a.exe) 3 0 R] >>\nendobj\n%%EOF\n"
    )


def encrypted_pdf() -> bytes:
    return scan_pdf().replace(b"trailer\n<<", b"trailer\n<< /Encrypt 9 0 R", 1)


def pdf_bomb() -> bytes:
    """An object stream that inflates to far more than any document needs."""
    packed = zlib.compress(b"\x00" * (80 * 1024 * 1024), 9)
    return (
        b"%PDF-1.5\n4 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode >>\nstream\n"
        + packed
        + b"\nendstream\nendobj\n%%EOF\n"
    )
