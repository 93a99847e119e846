"""The Rasa credentials file for the channels whose secrets are in the environment.

REST and socket.io are always on, as Musaed's own classes (channels/rest.py,
channels/socketio.py): each keeps its conversations apart from every other
channel's, REST checks MUSAED_REST_TOKEN when it is set, socket.io issues its
own session ids. Telegram and WhatsApp are added only when all of their
secrets are set (an empty value counts as unset):

- telegram needs TELEGRAM_TOKEN, TELEGRAM_VERIFY (the bot's username) and
  TELEGRAM_WEBHOOK_URL; optional: TELEGRAM_API_URL, TELEGRAM_SECRET_TOKEN.
- whatsapp needs WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID,
  WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN; optional: WHATSAPP_API_URL.

Each channel left out gives one line of notes saying what to set.

    python -m scripts.credentials var/credentials.yml   # writes it, prints the notes
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import yaml

from musaed import settings
from musaed.settings import Setting

REST_CLASS = "channels.rest.RestInput"
SOCKETIO_CLASS = "channels.socketio.SocketIOInput"
TELEGRAM_CLASS = "channels.telegram.TelegramInput"
WHATSAPP_CLASS = "channels.whatsapp.WhatsAppInput"

# Each channel's credentials key and the setting it comes from (musaed/settings.py).
TELEGRAM_REQUIRED = {
    "access_token": settings.TELEGRAM_TOKEN,
    "verify": settings.TELEGRAM_VERIFY,
    "webhook_url": settings.TELEGRAM_WEBHOOK_URL,
}
TELEGRAM_OPTIONAL = {"api_url": settings.TELEGRAM_API_URL, "secret_token": settings.TELEGRAM_SECRET_TOKEN}
WHATSAPP_REQUIRED = {
    "access_token": settings.WHATSAPP_ACCESS_TOKEN,
    "phone_number_id": settings.WHATSAPP_PHONE_NUMBER_ID,
    "app_secret": settings.WHATSAPP_APP_SECRET,
    "verify_token": settings.WHATSAPP_VERIFY_TOKEN,
}
WHATSAPP_OPTIONAL = {"api_url": settings.WHATSAPP_API_URL}

CHANNELS = (
    ("telegram", TELEGRAM_CLASS, TELEGRAM_REQUIRED, TELEGRAM_OPTIONAL),
    ("whatsapp", WHATSAPP_CLASS, WHATSAPP_REQUIRED, WHATSAPP_OPTIONAL),
)


def _value(env: Mapping[str, str], setting: Setting) -> str:
    """The value set in `env`, stripped; "" when unset (the channel's own default applies)."""
    return (setting.given(env) or "").strip()


def build(env: Mapping[str, str]) -> Tuple[Dict[str, Any], List[str]]:
    """(credentials mapping, notes): one note for each channel left out for lack of secrets."""
    credentials: Dict[str, Any] = {
        # The token is read from the environment when the server starts, not
        # written here: this file is often copied around.
        REST_CLASS: None,
        SOCKETIO_CLASS: {
            "user_message_evt": "user_uttered",
            "bot_message_evt": "bot_uttered",
            "session_persistence": True,
        },
    }
    notes: List[str] = []
    for name, cls, required, optional in CHANNELS:
        names = ", ".join(s.name for s in required.values())
        missing = [s.name for s in required.values() if not _value(env, s)]
        if missing:
            note = f"{name}: left out (set {names} to enable)"
            if len(missing) < len(required):
                note = f"{name}: left out ({', '.join(missing)} not set; set {names} to enable)"
            notes.append(note)
            continue
        values = {key: _value(env, s) for key, s in required.items()}
        values.update({key: _value(env, s) for key, s in optional.items() if _value(env, s)})
        credentials[cls] = values
    return credentials, notes


def write(env: Mapping[str, str], path: Path) -> List[str]:
    """Write the credentials file for `env` to `path` (readable by its owner only); return the notes."""
    credentials, notes = build(env)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Written by scripts/credentials.py from the environment; do not edit or commit.\n" + yaml.safe_dump(
        credentials, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    # Tokens and secrets: create it owner-only before anything is written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return notes


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var/credentials.yml")
    for line in write(os.environ, target):
        print(line)
    print(f"wrote {target}")
