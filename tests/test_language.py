"""Which language a message is in: Arabic letters and Arabizi are Arabic, English is English."""

import pytest

from musaed.language import ARABIC, ENGLISH, detect, of


@pytest.mark.parametrize(
    "text",
    [
        "Hi, how can I renew my national ID card?",
        "i want renew my wife iqama",
        "how much",
        "thanks a lot",
        "cancel",
        "yes please",
        "where is my request MSD-12345678",
        "I lost my id",
    ],
)
def test_english(text):
    assert detect(text) == ENGLISH


@pytest.mark.parametrize(
    "text",
    [
        "ابي اجدد اقامة زوجتي",
        "كم رسوم تجديد الهوية؟",
        "ابي renew الهوية",  # mostly Arabic words
        # Arabizi: Arabic in Latin letters and digits.
        "abi ajaddid hawiyti",
        "kam al rusoom",
        "shukran",
        "salam alaikum",
        "3ndi su2al",
        "ana abi ajded",
        "wain talabi",
    ],
)
def test_arabic_and_arabizi(text):
    assert detect(text) == ARABIC


@pytest.mark.parametrize("text", ["1012345678", "123456", "MSD-12345678", "😀", "/affirm", "ok", "iqama", "", "؟"])
def test_messages_that_do_not_tell_keep_the_conversation_language(text):
    assert detect(text) is None


def test_a_stored_language_reads_as_arabic_unless_english():
    assert of("en") == ENGLISH
    assert of(None) == ARABIC and of("fr") == ARABIC
