"""Every environment variable Musaed reads, declared once: its default, type and what it is for.

Plain Python, no Rasa imports. A module reads its setting here, when it needs
it (never frozen at import: tests set variables test by test):

    settings.DB.get()            # the value, or the default when unset
    settings.REST_TOKEN.given()  # the value, or None when unset
    settings.SENDER_RATE.get(env)  # read from `env` (a mapping) instead of os.environ

An empty value counts as unset. What a value means (rates, origins, agents'
tokens, the retention policy) is read by the module that uses it; this one
holds only the text. Secrets are never printed: `musaed-care settings` and
`make settings` show them as set or unset.

    python -m musaed.settings                    # each setting and its value here
    python -m musaed.settings --readme README.md # and rewrite the README's table (make settings)
    python -m musaed.settings --check README.md  # exit 1 when the README's table is out of date

Variables a library reads for itself (TF_CPP_MIN_LOG_LEVEL, RASA_TELEMETRY_ENABLED,
SANIC_HOST) are set for it by the scripts and the Makefile, not read here.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # the value when unset ("": none; the description says what happens then)
    type: str  # how the text is read: text, url, path, integer, number, secret, or the module's own format
    description: str
    secret: bool = False

    def given(self, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
        """The value set in `env` (default: this process's environment now), or None when unset or empty."""
        value = (os.environ if env is None else env).get(self.name)
        return value if value else None

    def get(self, env: Optional[Mapping[str, str]] = None) -> str:
        """The value set, else the default."""
        value = self.given(env)
        return self.default if value is None else value

    def integer(self, env: Optional[Mapping[str, str]] = None) -> int:
        return int(self.get(env))

    def number(self, env: Optional[Mapping[str, str]] = None) -> float:
        return float(self.get(env))


ALL: List[Setting] = []


def _declare(name: str, default: str, type: str, description: str, *, secret: bool = False) -> Setting:
    setting = Setting(name, default, type, description, secret)
    if any(s.name == name for s in ALL):
        raise ValueError(f"{name} is declared twice")
    ALL.append(setting)
    return setting


# The application's data and the model.
DB = _declare(
    "MUSAED_DB", "var/musaed.db", "path", "The application database (SQLite); the shared secrets' files sit beside it."
)
DATABASE_URL = _declare(
    "MUSAED_DATABASE_URL",
    "",
    "url",
    "`postgresql://…`: the application data in PostgreSQL instead of `MUSAED_DB`.",
    secret=True,  # it carries the password
)
TRACKER_DB = _declare(
    "MUSAED_TRACKER_DB",
    "var/trackers.db",
    "path or url",
    "Rasa's tracker store, for customer care and the retention purge: a SQLite file or `postgresql://` URL.",
)
MODEL = _declare(
    "MUSAED_MODEL",
    "",
    "path",
    "The model customer care loads (unset: `models/musaed.tar.gz` here, else in the checkout).",
)
RETENTION = _declare(
    "MUSAED_RETENTION",
    "unverified=30d,verified=180d,codes=1d,notifications=30d,documents=180d",
    "retention policy",
    "How long conversations (unverified, verified), one-time codes, sent or failed notifications, and a closed "
    "request's documents are kept (`musaed/retention.py`).",
)
DOCUMENTS_DIR = _declare(
    "MUSAED_DOCUMENTS_DIR",
    "",
    "path",
    "Where people's documents are kept, 0600 under random names (unset: `documents/` beside the database); "
    "in a cluster, a volume every replica mounts.",
)
MAX_DOCUMENT_MB = _declare(
    "MUSAED_MAX_DOCUMENT_MB", "5", "number", "A larger document (MB of 1024 KB) is refused with a reason, never kept."
)

# Secrets every replica must share (else each makes a random one in a file beside the database).
RECEIPT_SECRET = _declare(
    "MUSAED_RECEIPT_SECRET",
    "",
    "secret",
    "Signs receipt links (unset: `receipt.secret` beside the database).",
    secret=True,
)
SESSION_SECRET = _declare(
    "MUSAED_SESSION_SECRET",
    "",
    "secret",
    "Signs web session tokens (unset: `session.secret` beside the database).",
    secret=True,
)
CODE_SECRET = _declare(
    "MUSAED_CODE_SECRET",
    "",
    "secret",
    "Keys the hashes of one-time codes (unset: `code.secret` beside the database).",
    secret=True,
)
TRACKER_KEY = _declare(
    "MUSAED_TRACKER_KEY",
    "",
    "secret",
    "Encrypts personal data in the tracker store (unset: `tracker.key` beside the database).",
    secret=True,
)

# Channels and what they let through.
PUBLIC_URL = _declare(
    "MUSAED_PUBLIC_URL",
    "http://localhost:8000",
    "url",
    "The web server's address as people's devices reach it: receipts are linked there.",
)
WEB_ORIGINS = _declare(
    "MUSAED_WEB_ORIGINS",
    "http://localhost:8000 http://127.0.0.1:8000",
    "origins",
    "The pages that may use the bot from a browser (`scheme://host[:port]`, spaces or commas between).",
)
WEB_SESSION_IDLE_MINUTES = _declare(
    "MUSAED_WEB_SESSION_IDLE_MINUTES", "60", "number", "A web session idle this many minutes expires."
)
REST_TOKEN = _declare(
    "MUSAED_REST_TOKEN",
    "",
    "secret",
    "REST callers must send `Authorization: Bearer <token>`; unset, REST is for this machine only.",
    secret=True,
)
INTERFACE = _declare(
    "MUSAED_INTERFACE",
    "127.0.0.1",
    "text",
    "Where `make run`'s Rasa server listens (beyond loopback only with `MUSAED_REST_TOKEN`).",
)
MAX_MESSAGE_BYTES = _declare(
    "MUSAED_MAX_MESSAGE_BYTES", "4096", "integer", "A longer message (UTF-8 bytes) gets a short reply, unparsed."
)
SENDER_RATE = _declare(
    "MUSAED_SENDER_RATE",
    "20/10s,60/60s",
    "rates",
    "Messages one sender may send in each window (`channels/limits.py`).",
)
ADDRESS_RATE = _declare(
    "MUSAED_ADDRESS_RATE", "60/10s,300/60s", "rates", "Messages one network address may send in each window."
)
SMS_URL = _declare(
    "MUSAED_SMS_URL", "", "url", "The SMS gateway one-time codes are posted to (unset: the development outbox)."
)
SMS_TOKEN = _declare("MUSAED_SMS_TOKEN", "", "secret", "The SMS gateway's bearer token.", secret=True)
TELEGRAM_TOKEN = _declare(
    "TELEGRAM_TOKEN", "", "secret", "Telegram bot token (with the two below: Telegram on).", secret=True
)
TELEGRAM_VERIFY = _declare("TELEGRAM_VERIFY", "", "text", "Telegram: the bot's username.")
TELEGRAM_WEBHOOK_URL = _declare(
    "TELEGRAM_WEBHOOK_URL", "", "url", "Telegram: the public HTTPS address ending `/webhooks/telegram/webhook`."
)
TELEGRAM_API_URL = _declare("TELEGRAM_API_URL", "https://api.telegram.org", "url", "Telegram: the Bot API server.")
TELEGRAM_SECRET_TOKEN = _declare(
    "TELEGRAM_SECRET_TOKEN",
    "",
    "secret",
    "Telegram: the webhook's secret token (else derived from the bot token).",
    secret=True,
)
WHATSAPP_ACCESS_TOKEN = _declare(
    "WHATSAPP_ACCESS_TOKEN", "", "secret", "WhatsApp Cloud API token (with the three below: WhatsApp on).", secret=True
)
WHATSAPP_PHONE_NUMBER_ID = _declare("WHATSAPP_PHONE_NUMBER_ID", "", "text", "WhatsApp: the sending number's id.")
WHATSAPP_APP_SECRET = _declare(
    "WHATSAPP_APP_SECRET", "", "secret", "WhatsApp: the app secret that signs every webhook call.", secret=True
)
WHATSAPP_VERIFY_TOKEN = _declare(
    "WHATSAPP_VERIFY_TOKEN", "", "secret", "WhatsApp: the token the webhook's verification asks for.", secret=True
)
WHATSAPP_API_URL = _declare(
    "WHATSAPP_API_URL", "https://graph.facebook.com/v19.0", "url", "WhatsApp: the Graph API server."
)
WHATSAPP_TEMPLATE = _declare(
    "WHATSAPP_TEMPLATE",
    "musaed_notice",
    "text",
    "WhatsApp: the approved template a notification is sent as outside the 24 hours after the person's "
    "last message (one body parameter: the text).",
)
WHATSAPP_TEMPLATE_LANGUAGE = _declare(
    "WHATSAPP_TEMPLATE_LANGUAGE",
    "ar",
    "language codes",
    "WhatsApp: the languages the template is approved in (`ar,en_US`): the person's if listed, else the first.",
)

# Notifications (musaed/notifications.py, musaed/notify_worker.py).
QUIET_HOURS = _declare(
    "MUSAED_QUIET_HOURS",
    "22:00-08:00",
    "quiet hours",
    "When no notification is pushed to a phone (Telegram, WhatsApp, SMS), Asia/Riyadh; `none`: never quiet. "
    "A widget open at that moment still gets its message.",
)
NOTIFY_RETRY = _declare(
    "MUSAED_NOTIFY_RETRY",
    "attempts=5,first=30s,max=1h",
    "retry policy",
    "A notification that fails: how many attempts in all, the wait after the first failure (doubled after "
    "each), and the longest wait.",
)

# Customer care.
CARE_TOKENS = _declare(
    "MUSAED_CARE_TOKENS",
    "",
    "name:token,…",
    "The agents and their tokens (`name:token,…`); customer care starts only with them.",
    secret=True,
)
CARE_SUPERVISORS = _declare(
    "MUSAED_CARE_SUPERVISORS", "", "names", "The agents who may read the care audit (comma-separated)."
)
CARE_TOKEN = _declare(
    "MUSAED_CARE_TOKEN", "", "secret", "`musaed-care`: your agent token (one of `MUSAED_CARE_TOKENS`).", secret=True
)
OFFICE_HOURS = _declare(
    "MUSAED_OFFICE_HOURS",
    "sun-thu 08:00-20:00",
    "office hours",
    "When agents answer live chats, Asia/Riyadh: `always`, or days and hours (`sun-thu 08:00-20:00`), "
    "and `; holidays 2026-12-24,…` (`musaed/office_hours.py`).",
)
CARE_URL = _declare(
    "MUSAED_CARE_URL", "http://127.0.0.1:5080", "url", "`musaed-care ask`: the care server to ask first."
)
CARE_LOG = _declare(
    "MUSAED_CARE_LOG", "var/care-cli.log", "path", "`musaed-care`: where it logs (it prints only its answers)."
)

# Development servers, the cluster and the tests.
OMP_NUM_THREADS = _declare(
    "OMP_NUM_THREADS", "1", "integer", "OpenMP threads in each server `make run` and `make cluster` start."
)
FRONT_PORT = _declare("MUSAED_FRONT_PORT", "8080", "integer", "`make cluster`: the port of nginx in front.")
PG_PASSWORD = _declare(
    "MUSAED_PG_PASSWORD",
    "",
    "secret",
    "Set by `make cluster`: the servers' PostgreSQL password, `${…}` in its endpoints file.",
    secret=True,
)
REDIS_PASSWORD = _declare(
    "MUSAED_REDIS_PASSWORD",
    "",
    "secret",
    "Set by `make cluster`: Redis's password, `${…}` in its endpoints file.",
    secret=True,
)
FUZZ_SEED = _declare(
    "MUSAED_FUZZ_SEED",
    "2512",
    "integer",
    "Tests: the seed of the random conversation walks (`tests/test_fuzz_conversations.py`).",
)


def by_name() -> Dict[str, Setting]:
    return {s.name: s for s in ALL}


def shown(setting: Setting, env: Optional[Mapping[str, str]] = None) -> Tuple[str, bool]:
    """(the value as it may be shown, whether it is the default): a secret only as set or unset."""
    value = setting.given(env)
    if setting.secret:
        return ("set" if value is not None else "unset"), value is None
    if value is None:
        return (setting.default or "unset"), bool(setting.default)
    return value, False


def report(env: Optional[Mapping[str, str]] = None) -> List[dict]:
    """Each setting with its value here, secrets hidden (what `musaed-care settings --json` prints)."""
    rows = []
    for s in ALL:
        value, default = shown(s, env)
        rows.append(
            {"name": s.name, "value": value, "default": default, "secret": s.secret, "description": s.description}
        )
    return rows


def describe(env: Optional[Mapping[str, str]] = None) -> str:
    """The report as text, one setting a line."""
    width = max(len(s.name) for s in ALL)
    lines = []
    for row in report(env):
        note = " (secret)" if row["secret"] else " (default)" if row["default"] else ""
        lines.append(f"{row['name']:<{width}}  {row['value']}{note}")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table() -> str:
    """The README's configuration table: variable, default, description (a secret's default never shown)."""
    lines = [
        "| Variable | Default | Description |",
        "| --- | --- | --- |",
    ]
    for s in ALL:
        default = "secret" if s.secret else f"`{s.default}`" if s.default else "unset"
        lines.append(f"| `{s.name}` | {_cell(default)} | {_cell(s.description)} |")
    return "\n".join(lines) + "\n"


def with_table(text: str) -> str:
    """`text` (the README) with the block between the settings markers made from this module."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {BEGIN} … {END} block")
    head = text[: start + len(BEGIN)]
    generated = "\n<!-- generated by `make settings` from musaed/settings.py: do not edit -->\n\n" + table() + "\n"
    return head + generated + text[end:]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m musaed.settings", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--readme", type=Path, help="rewrite this README's settings table")
    group.add_argument("--check", type=Path, help="exit 1 when this README's settings table is out of date")
    args = parser.parse_args(argv)
    readme = args.check or args.readme
    try:
        text = readme.read_text(encoding="utf-8") if readme else ""
        new = with_table(text) if readme else ""
    except ValueError as error:
        print(f"{readme}: {error}", file=sys.stderr)
        return 1
    if args.check:
        if new != text:
            print(f"{readme}: the settings table is out of date; run `make settings`", file=sys.stderr)
        return 0 if new == text else 1
    sys.stdout.write(describe())
    if readme and new != text:
        readme.write_text(new, encoding="utf-8")
        print(f"wrote the settings table in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
