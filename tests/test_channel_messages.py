"""The Telegram and WhatsApp connectors without Rasa: what they send and what they read.

The output channels talk to the fake APIs of fake_apis.py on loopback ports.
"""

import hashlib
import hmac
import json

import pytest

from channels import telegram, whatsapp
from channels._text import shorten, split_long
from musaed import catalogue

from fake_apis import BOT_TOKEN, FakeGraph, FakeTelegram

TOKEN = "EAAGunit"
PHONE_ID = "1000001"


@pytest.fixture(scope="module")
def fake_telegram():
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def fake_graph():
    fake = FakeGraph(TOKEN, PHONE_ID).start()
    yield fake
    fake.stop()


# -- shared text helpers -------------------------------------------------------


def test_split_long_cuts_at_line_breaks_within_the_limit():
    text = "\n".join(f"{i}. خطوة رقم {i}" for i in range(1, 400))
    pieces = split_long(text, 500)
    assert all(len(p) <= 500 for p in pieces) and len(pieces) > 1
    assert "\n".join(pieces) == text
    assert split_long("  قصير  ", 20) == ["قصير"]
    assert split_long("", 20) == []
    assert all(len(p) <= 7 for p in split_long("x" * 20, 7))


def test_shorten():
    assert shorten("الرسوم", 20) == "الرسوم"
    cut = shorten("تجديد الهوية الوطنية للمواطنين", 20)
    assert len(cut) == 20 and cut.endswith("…")


# -- Telegram ------------------------------------------------------------------


def test_api_url_from_credentials_then_env_then_telegram(monkeypatch):
    monkeypatch.delenv("TELEGRAM_API_URL", raising=False)
    assert telegram.resolve_api_url() == "https://api.telegram.org"
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:1/")
    assert telegram.resolve_api_url() == "http://127.0.0.1:1"
    assert telegram.resolve_api_url("http://other:2") == "http://other:2"
    bot = telegram.TelegramOutput(BOT_TOKEN)
    assert bot.server.api_url(BOT_TOKEN, "getMe") == f"http://127.0.0.1:1/bot{BOT_TOKEN}/getMe"


def test_start_is_the_greet_intent():
    assert telegram.as_user_text("/start") == "/greet"
    assert telegram.as_user_text("/start@musaed_bot") == "/greet"
    assert telegram.as_user_text("/start campaign42") == "/greet"
    assert telegram.as_user_text("/starting") == "/starting"
    assert telegram.as_user_text(" ضاعت هويتي ") == "ضاعت هويتي"


def test_telegram_input_from_credentials():
    channel = telegram.TelegramInput.from_credentials(
        {
            "access_token": BOT_TOKEN,
            "verify": "musaed_test_bot",
            "webhook_url": "https://x/webhooks/telegram/webhook",
            "api_url": "http://127.0.0.1:9/",
        }
    )
    assert channel.name() == "telegram" and channel.url_prefix() == "telegram"
    out = channel.get_output_channel()
    assert out is channel.get_output_channel()  # one bot, no setWebhook side effect
    assert out.server.api_url(BOT_TOKEN, "x").startswith("http://127.0.0.1:9/bot")


async def test_telegram_output_sends_photos_keyboards_and_long_texts(fake_telegram):
    bot = telegram.TelegramOutput(BOT_TOKEN, fake_telegram.url)
    chat = 555001
    try:
        await bot.send_response(str(chat), {"image": "https://example.org/card.png"})
        [photo] = fake_telegram.calls_to("sendPhoto", chat)
        assert photo["photo"] == "https://example.org/card.png"

        await bot.send_response(
            str(chat),
            {
                "text": "هل تريد؟",
                "buttons": [{"title": "نعم", "payload": "/affirm"}, {"title": "لا", "payload": "/deny"}],
            },
        )
        menu = [{"title": f"خدمة طويلة الاسم رقم {i}", "payload": f"/s{i}"} for i in range(7)]
        await bot.send_response(str(chat), {"text": "اختر:", "buttons": menu})
        await bot.send_text_message(str(chat), "س" * 5000)
    finally:
        await bot.close_session()

    sent = fake_telegram.calls_to("sendMessage", chat)
    short, long_menu = sent[0]["reply_markup"], sent[1]["reply_markup"]
    # Two short buttons share a row; a long menu gets one button per row. Both inline.
    assert short["inline_keyboard"] == [
        [{"text": "نعم", "callback_data": "/affirm"}, {"text": "لا", "callback_data": "/deny"}]
    ]
    assert [row[0]["callback_data"] for row in long_menu["inline_keyboard"]] == [f"/s{i}" for i in range(7)]
    assert [len(p["text"]) for p in sent[2:]] == [4096, 904]


# -- WhatsApp ------------------------------------------------------------------


def test_signature_check():
    body = json.dumps({"object": "whatsapp_business_account"}).encode()
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert whatsapp.signature("s3cret", body) == good
    assert whatsapp.signature_ok("s3cret", body, good)
    assert not whatsapp.signature_ok("s3cret", body, None)
    assert not whatsapp.signature_ok("s3cret", body, "")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert not whatsapp.signature_ok("s3cret", body, bad)
    assert not whatsapp.signature_ok("other", body, good)
    assert not whatsapp.signature_ok("s3cret", body + b" ", good)


def test_three_buttons_are_reply_buttons_with_titles_cut_to_20():
    buttons = [
        {"title": "نعم، ابدأ الطلب الآن من فضلك", "payload": "/affirm"},
        {"title": "لا، شكرًا", "payload": "/deny"},
        {"title": "نعم، ابدأ الطلب الآن من فضلك!", "payload": "/x"},
    ]
    msg = whatsapp.button_message("هل تريد؟", buttons)
    assert msg["type"] == "button" and msg["body"] == {"text": "هل تريد؟"}
    replies = [b["reply"] for b in msg["action"]["buttons"]]
    assert [r["id"] for r in replies] == ["/affirm", "/deny", "/x"]
    assert all(len(r["title"]) <= 20 for r in replies)
    assert len({r["title"] for r in replies}) == 3  # WhatsApp rejects repeated titles
    assert all(b["type"] == "reply" for b in msg["action"]["buttons"])


def test_more_than_three_buttons_are_a_list_of_at_most_ten_rows():
    buttons = [{"title": f"إصدار هوية وطنية لأول مرة رقم {i}", "payload": f"/s{i}"} for i in range(12)]
    msg = whatsapp.button_message("عن أي خدمة تسأل؟", buttons)
    assert msg["type"] == "list"
    assert 0 < len(msg["action"]["button"]) <= 20
    [section] = msg["action"]["sections"]
    rows = section["rows"]
    assert len(rows) == 10
    assert [r["id"] for r in rows] == [f"/s{i}" for i in range(10)]
    assert all(len(r["title"]) <= 24 for r in rows)
    assert rows[0]["description"] == "إصدار هوية وطنية لأول مرة رقم 0"
    short = whatsapp.button_message("x", [{"title": f"خدمة {i}", "payload": str(i)} for i in range(4)])
    assert "description" not in short["action"]["sections"][0]["rows"][0]


def test_inbound_texts_and_replies():
    channel = whatsapp.WhatsAppInput(TOKEN, PHONE_ID, "secret", "verify")

    def payload(*messages, phone_id=PHONE_ID):
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"display_phone_number": "966500000000", "phone_number_id": phone_id},
                                "contacts": [{"profile": {"name": "خالد"}, "wa_id": "966511111111"}],
                                "messages": list(messages),
                            },
                        }
                    ],
                }
            ],
        }

    def msg(kind, **part):
        return {"from": "966511111111", "id": f"wamid.{kind}", "timestamp": "1700000000", "type": kind, **part}

    found = channel.inbound(
        payload(
            msg("text", text={"body": "ضاعت هويتي"}),
            msg(
                "interactive",
                interactive={"type": "button_reply", "button_reply": {"id": "/ask_fees", "title": "الرسوم"}},
            ),
            msg(
                "interactive",
                interactive={"type": "list_reply", "list_reply": {"id": "/digital_id", "title": "الهوية الرقمية"}},
            ),
            msg("button", button={"payload": "/affirm", "text": "نعم"}),
            msg("image", image={"id": "123", "mime_type": "image/jpeg"}),
        )
    )
    assert [(m["sender"], m["text"]) for m in found] == [
        ("966511111111", "ضاعت هويتي"),
        ("966511111111", "/ask_fees"),
        ("966511111111", "/digital_id"),
        ("966511111111", "/affirm"),
        ("966511111111", None),  # an image: a file, fetched through the media endpoint (issue 31)
    ]
    assert [m["media"] for m in found] == [None, None, None, None, {"id": "123"}]
    assert found[0]["metadata"]["whatsapp"]["profile_name"] == "خالد"
    # Another business number's messages, statuses and other objects are not ours.
    assert channel.inbound(payload(msg("text", text={"body": "x"}), phone_id="999")) == []
    statuses = payload()
    statuses["entry"][0]["changes"][0]["value"]["statuses"] = [{"id": "wamid.1", "status": "read"}]
    assert channel.inbound(statuses) == []
    assert channel.inbound({"object": "page", "entry": []}) == []


def test_whatsapp_credentials_must_be_complete():
    from rasa.shared.exceptions import RasaException

    with pytest.raises(RasaException):
        whatsapp.WhatsAppInput.from_credentials({"access_token": "x", "phone_number_id": "1"})
    channel = whatsapp.WhatsAppInput.from_credentials(
        {"access_token": "x", "phone_number_id": 106540352242922, "app_secret": "s", "verify_token": "v"}
    )
    assert channel.api_url == "https://graph.facebook.com/v19.0"
    assert channel.get_output_channel().messages_url == "https://graph.facebook.com/v19.0/106540352242922/messages"


async def test_whatsapp_output_posts_to_the_graph_api(fake_graph):
    out = whatsapp.WhatsAppOutput(TOKEN, PHONE_ID, fake_graph.url + "/")
    to = "966500000001"
    try:
        await out.send_response(to, {"text": "مرحبا"})
        await out.send_response(to, {"image": "https://example.org/card.png"})
        await out.send_response(
            to,
            {
                "text": "هل تريد؟",
                "buttons": [{"title": "نعم", "payload": "/affirm"}, {"title": "لا", "payload": "/deny"}],
            },
        )
        await out.send_response(
            to, {"text": "ط" * 1500, "buttons": [{"title": f"خيار {i}", "payload": f"/o{i}"} for i in range(5)]}
        )
        await out.send_response(to, {"custom": {"type": "location", "location": {"latitude": 24.7, "longitude": 46.7}}})
        await out.send_text_message(to, "ن" * 5000)
    finally:
        await out.close()

    calls = [c for c in fake_graph.snapshot() if c["json"]["to"] == to]
    assert all(c["path"] == f"/{PHONE_ID}/messages" for c in calls)
    assert all(c["authorization"] == f"Bearer {TOKEN}" for c in calls)
    sent = [c["json"] for c in calls]
    assert all(m["messaging_product"] == "whatsapp" for m in sent)
    assert sent[0]["type"] == "text" and sent[0]["text"]["body"] == "مرحبا"
    assert sent[1]["type"] == "image" and sent[1]["image"] == {"link": "https://example.org/card.png"}
    assert sent[2]["type"] == "interactive" and sent[2]["interactive"]["type"] == "button"
    # A body over 1024 characters goes first as text, then the list with a short body.
    assert sent[3]["type"] == "text" and len(sent[3]["text"]["body"]) == 1500
    assert sent[4]["interactive"]["type"] == "list"
    assert sent[4]["interactive"]["body"]["text"] == catalogue.load().labels["whatsapp_choose"]
    assert sent[4]["interactive"]["action"]["button"] == catalogue.load().labels["whatsapp_list_button"]
    assert sent[5]["type"] == "location"
    assert [len(m["text"]["body"]) for m in sent[6:]] == [4096, 904]


async def test_whatsapp_output_logs_api_refusals(fake_graph, caplog):
    out = whatsapp.WhatsAppOutput("wrong-token", PHONE_ID, fake_graph.url)
    try:
        assert await out.send("966500000002", {"type": "text", "text": {"body": "x"}}) is None
    finally:
        await out.close()
    assert "refused" in caplog.text and "OAuthException" in caplog.text


def test_a_whatsapp_list_in_english_has_english_words_around_it():
    message = whatsapp.button_message(
        "Would you like me to submit the request?", [{"title": f"Option {i}", "payload": f"/o{i}"} for i in range(5)]
    )
    assert (
        message["type"] == "list" and message["action"]["button"] == catalogue.load("en").labels["whatsapp_list_button"]
    )
