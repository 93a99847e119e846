import pytest

from musaed.arabic import normalize, to_ascii_digits


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("أبغى إقامة", "ابغي اقامه"),  # hamza seats, ى → ي, ة → ه
        ("آسف إلى", "اسف الي"),
        ("مسؤول طوارئ", "مسوول طواري"),
        ("هُوِيَّتِي", "هويتي"),  # diacritics
        ("بالهويـــــة", "بالهويه"),  # tatweel
        ("مرحبااااا", "مرحبا"),  # elongation
        ("ﻻ", "لا"),  # lam-alef ligature
        ("ابي اجدد الـ ID", "ابي اجدد ال id"),
        ("  كيف    الحال ", "كيف الحال"),
    ],
)
def test_normalize_folds_spelling_variants(raw, expected):
    assert normalize(raw) == expected


def test_normalize_keeps_doubled_letters_and_repeated_digits():
    # Two identical letters are spelling (الله، ممكن); repeated digits are data.
    assert normalize("ممكن الله") == "ممكن الله"
    assert normalize("رقمي 1110000000") == "رقمي 1110000000"


@pytest.mark.parametrize(
    "raw, expected",
    [("١٠٢٣٤٥٦٧٨٩", "1023456789"), ("۱۲۳۴۵۶", "123456"), ("MSD-٤٠٢١٣٣٧٧", "MSD-40213377")],
)
def test_digits_of_any_script_become_ascii(raw, expected):
    assert to_ascii_digits(raw) == expected
    assert normalize(raw) == expected.lower()


def test_normalize_is_idempotent_and_total():
    samples = ["", "😀😀", "<script>alert(1)</script>", "' OR 1=1; --", "ـــ", "ً"]
    for s in samples:
        once = normalize(s)
        assert normalize(once) == once
    assert normalize("") == ""
    assert normalize("ـــ") == ""
