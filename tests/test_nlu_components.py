"""The tokenizer the model is trained and served with (no trained model needed)."""
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from components.arabic_normalizer import ArabicNormalizer


def tokens_of(text):
    tokenizer = ArabicNormalizer(ArabicNormalizer.get_default_config())
    return tokenizer.tokenize(Message(data={TEXT: text}), TEXT)


def test_tokens_keep_their_place_and_carry_the_normalised_reading():
    text = "ابغى أجدد هويتي 2923760926"
    tokens = tokens_of(text)
    assert [text[t.start : t.end] for t in tokens] == [t.text for t in tokens]
    assert [t.lemma for t in tokens] == ["ابغي", "اجدد", "هويتي", "2923760926"]


def test_arabizi_tokens_are_read_in_arabic_letters():
    tokens = tokens_of("shukran 3ndi")
    assert [t.text for t in tokens] == ["shukran", "3ndi"]
    assert [t.lemma for t in tokens] == ["شكرا", "عندي"]


def test_a_long_message_is_cut_to_max_tokens():
    assert len(tokens_of("كلمة " * 500)) == ArabicNormalizer.get_default_config()["max_tokens"]
