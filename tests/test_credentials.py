"""scripts/credentials.py: which channels the credentials file turns on, and the notes."""

import stat
from pathlib import Path

import yaml

from scripts import credentials

TELEGRAM = {
    "TELEGRAM_TOKEN": "123456789:AAFakeToken",
    "TELEGRAM_VERIFY": "musaed_bot",
    "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/webhooks/telegram/webhook",
}
WHATSAPP = {
    "WHATSAPP_ACCESS_TOKEN": "EAAGfake",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_APP_SECRET": "app-secret",
    "WHATSAPP_VERIFY_TOKEN": "verify-me",
}
TELEGRAM_NOTE = "telegram: left out (set TELEGRAM_TOKEN, TELEGRAM_VERIFY, TELEGRAM_WEBHOOK_URL to enable)"
WHATSAPP_NOTE = (
    "whatsapp: left out (set WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID, "
    "WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN to enable)"
)
REST, SOCKETIO = "channels.rest.RestInput", "channels.socketio.SocketIOInput"
BASE = {
    REST: None,
    SOCKETIO: {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered", "session_persistence": True},
}


def test_no_secrets_gives_rest_and_socketio_and_a_note_per_channel():
    creds, notes = credentials.build({})
    assert creds == BASE
    assert notes == [TELEGRAM_NOTE, WHATSAPP_NOTE]
    assert all(note.isascii() for note in notes)


def test_both_channels_with_all_their_secrets():
    env = {**TELEGRAM, **WHATSAPP, "PATH": "/usr/bin"}
    creds, notes = credentials.build(env)
    assert notes == []
    assert creds[REST] is None and creds[SOCKETIO] == BASE[SOCKETIO]
    assert creds["channels.telegram.TelegramInput"] == {
        "access_token": "123456789:AAFakeToken",
        "verify": "musaed_bot",
        "webhook_url": "https://bot.example.org/webhooks/telegram/webhook",
    }
    assert creds["channels.whatsapp.WhatsAppInput"] == {
        "access_token": "EAAGfake",
        "phone_number_id": "106540352242922",
        "app_secret": "app-secret",
        "verify_token": "verify-me",
    }
    assert set(creds) == {REST, SOCKETIO, "channels.telegram.TelegramInput", "channels.whatsapp.WhatsAppInput"}


def test_optional_api_urls_are_passed_on():
    env = {
        **TELEGRAM,
        **WHATSAPP,
        "TELEGRAM_API_URL": "http://127.0.0.1:9001",
        "WHATSAPP_API_URL": "http://127.0.0.1:9002/v19.0",
        "TELEGRAM_SECRET_TOKEN": "s3cret",
    }
    creds, _ = credentials.build(env)
    assert creds["channels.telegram.TelegramInput"]["api_url"] == "http://127.0.0.1:9001"
    assert creds["channels.telegram.TelegramInput"]["secret_token"] == "s3cret"
    assert creds["channels.whatsapp.WhatsAppInput"]["api_url"] == "http://127.0.0.1:9002/v19.0"


def test_one_channel_only():
    creds, notes = credentials.build(WHATSAPP)
    assert "channels.whatsapp.WhatsAppInput" in creds
    assert "channels.telegram.TelegramInput" not in creds
    assert notes == [TELEGRAM_NOTE]

    creds, notes = credentials.build(TELEGRAM)
    assert "channels.telegram.TelegramInput" in creds
    assert "channels.whatsapp.WhatsAppInput" not in creds
    assert notes == [WHATSAPP_NOTE]


def test_a_missing_or_empty_secret_leaves_the_channel_out_and_names_it():
    env = {**TELEGRAM, "TELEGRAM_VERIFY": "  ", **WHATSAPP}
    del env["WHATSAPP_APP_SECRET"]
    creds, notes = credentials.build(env)
    assert set(creds) == {REST, SOCKETIO}
    assert len(notes) == 2
    assert notes[0].startswith("telegram: left out") and "TELEGRAM_VERIFY not set" in notes[0]
    assert notes[1].startswith("whatsapp: left out") and "WHATSAPP_APP_SECRET not set" in notes[1]
    # An optional URL alone enables nothing.
    creds, notes = credentials.build({"TELEGRAM_API_URL": "http://x", "WHATSAPP_API_URL": "http://y"})
    assert set(creds) == {REST, SOCKETIO} and notes == [TELEGRAM_NOTE, WHATSAPP_NOTE]


def test_write_makes_a_private_yaml_file_rasa_can_load(tmp_path):
    path = tmp_path / "sub" / "credentials.yml"
    notes = credentials.write({**WHATSAPP}, path)
    assert notes == [TELEGRAM_NOTE]
    assert yaml.safe_load(path.read_text()) == credentials.build(WHATSAPP)[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Rasa reads it the way `rasa run --credentials` does, and finds our classes.
    from rasa.core.run import create_http_input_channels

    names = [c.name() for c in create_http_input_channels(None, str(path))]
    assert names == ["rest", "socketio", "whatsapp"]


def test_write_with_nothing_set_is_the_default_file(tmp_path):
    path = tmp_path / "credentials.yml"
    assert credentials.write({}, path) == [TELEGRAM_NOTE, WHATSAPP_NOTE]
    assert yaml.safe_load(path.read_text()) == yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "credentials.yml").read_text()
    )
