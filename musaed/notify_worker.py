"""The notify worker: sends the store's queued notifications, and queues the day's expiry reminders.

    python -m musaed.notify_worker [--poll 0.25] [--lease 60] [--once]

`make run` starts one (its supervisor starts it again if it stops), `make cluster`
two. Every `--poll` seconds it reads the queued notifications whose time has come
and, one at a time, claims each with a lease (one conditional UPDATE: any number
of workers, each row sent by one), sends it by the channel rules of
musaed/notifications.py and marks it `sent`, to be tried again later, or `failed`
with why. A worker that dies mid-send holds its row until the lease runs out;
then another sends it. Once a day (Asia/Riyadh), and at start, it queues the
reminders due for the people who asked for them.

Senders, each a plain HTTP client (no Rasa): Telegram's Bot API (TELEGRAM_TOKEN,
TELEGRAM_API_URL), WhatsApp's Graph API (WHATSAPP_ACCESS_TOKEN,
WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_API_URL; the template outside the 24-hour
window: WHATSAPP_TEMPLATE, WHATSAPP_TEMPLATE_LANGUAGE), and the SMS gateway
(musaed/sms.py; without one, the notification is recorded as `sms_outbox`).
Widgets are the Rasa servers' (channels/care_delivery.py): the worker takes a web
notification only after notifications.WEB_GRACE, for an SMS.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

import requests

from musaed import bidi, catalogue, files, language, logsafe, notifications, settings, sms, store
from musaed.store import notifications as outbox

log = logging.getLogger("musaed.notify")

TIMEOUT_S = 10
# A claimed row is the worker's this long: far longer than one send (TIMEOUT_S), so a live
# worker never loses it mid-send; a dead one's is taken over after it.
LEASE = timedelta(seconds=60)
BATCH = 20
# WhatsApp's errors: outside the 24-hour window (send the template instead), and a number
# that cannot get messages (trying again will not help).
WA_WINDOW_CLOSED = {131047}
WA_UNDELIVERABLE = {131026, 131030, 131045, 131051, 132000, 132001}


class SendError(Exception):
    """A send that did not go: `reason` is the API's status and code, never personal data."""

    def __init__(
        self, reason: str, *, permanent: bool = False, blocked: bool = False, window_closed: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.blocked = blocked
        self.window_closed = window_closed


def _http_error(name: str, status: int) -> SendError:
    # 429 and the server's own trouble may pass; any other refusal of the request will be refused again.
    return SendError(f"{name}: HTTP {status}", permanent=400 <= status < 500 and status != 429)


class Telegram:
    """sendMessage on the Bot API, buttons as an inline keyboard."""

    def __init__(self, token: str, api_url: str, timeout: float = TIMEOUT_S) -> None:
        self.url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self.timeout = timeout
        self.http = requests.Session()

    def send(self, chat_id: str, text: str, buttons: List[Dict[str, str]]) -> None:
        body: Dict[str, Any] = {"chat_id": chat_id, "text": text}
        if buttons:
            body["reply_markup"] = {
                "inline_keyboard": [[{"text": b["title"], "callback_data": b["payload"]}] for b in buttons]
            }
        try:
            r = self.http.post(self.url, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise SendError(f"telegram: unreachable ({type(error).__name__})") from None
        if r.status_code == 403:  # "Forbidden: bot was blocked by the user"
            raise SendError("telegram: the chat blocked the bot (HTTP 403)", permanent=True, blocked=True)
        if r.status_code >= 300:
            raise _http_error("telegram", r.status_code)


class WhatsApp:
    """POST /{phone_number_id}/messages: a text, reply buttons, or the approved template."""

    def __init__(
        self, token: str, phone_number_id: str, api_url: str, template: str, languages: str, timeout: float = TIMEOUT_S
    ) -> None:
        self.url = f"{api_url.rstrip('/')}/{phone_number_id}/messages"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.template = template
        self.languages = [code.strip() for code in languages.split(",") if code.strip()] or ["ar"]
        self.timeout = timeout
        self.http = requests.Session()

    def template_language(self, lang: str) -> str:
        """The person's language if the template is approved in it (`en` matches `en_US`), else the first."""
        return next((code for code in self.languages if code.split("_")[0] == lang), self.languages[0])

    def _post(self, to: str, message: Dict[str, Any]) -> None:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **message}
        try:
            r = self.http.post(self.url, json=body, headers=self.headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise SendError(f"whatsapp: unreachable ({type(error).__name__})") from None
        if r.status_code < 300:
            return
        try:
            code = int(((r.json() or {}).get("error") or {}).get("code") or 0)
        except (ValueError, TypeError, AttributeError):
            code = 0
        reason = f"whatsapp: HTTP {r.status_code}" + (f", error {code}" if code else "")
        if code in WA_WINDOW_CLOSED:
            raise SendError(reason, window_closed=True)
        if code in WA_UNDELIVERABLE:
            raise SendError(reason, permanent=True)
        raise SendError(reason, permanent=_http_error("whatsapp", r.status_code).permanent)

    def send(self, to: str, text: str, buttons: List[Dict[str, str]]) -> None:
        if not buttons:
            self._post(to, {"type": "text", "text": {"preview_url": False, "body": text}})
            return
        self._post(
            to,
            {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": text},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": b["payload"][:256], "title": b["title"][:20]}}
                            for b in buttons[:3]
                        ]
                    },
                },
            },
        )

    def send_template(self, to: str, text: str, lang: str) -> None:
        # The template's one body parameter is the text (a parameter may hold no line breaks).
        self._post(
            to,
            {
                "type": "template",
                "template": {
                    "name": self.template,
                    "language": {"code": self.template_language(lang)},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": " ".join(text.split())}]}],
                },
            },
        )


@dataclass
class Senders:
    telegram: Optional[Telegram] = None
    whatsapp: Optional[WhatsApp] = None
    sms: sms.Sender = sms.OutboxOnly()

    @property
    def configured(self) -> Tuple[str, ...]:
        return tuple(name for name in ("telegram", "whatsapp") if getattr(self, name) is not None)

    @classmethod
    def from_env(cls) -> "Senders":
        telegram = whatsapp = None
        if settings.TELEGRAM_TOKEN.given():
            telegram = Telegram(settings.TELEGRAM_TOKEN.get(), settings.TELEGRAM_API_URL.get())
        if settings.WHATSAPP_ACCESS_TOKEN.given() and settings.WHATSAPP_PHONE_NUMBER_ID.given():
            whatsapp = WhatsApp(
                settings.WHATSAPP_ACCESS_TOKEN.get(),
                settings.WHATSAPP_PHONE_NUMBER_ID.get(),
                settings.WHATSAPP_API_URL.get(),
                settings.WHATSAPP_TEMPLATE.get(),
                settings.WHATSAPP_TEMPLATE_LANGUAGE.get(),
            )
        return cls(telegram, whatsapp, sms.from_env())


def _external(conversation: str) -> str:
    """The channel's own id (chat id, wa_id) of `telegram:…`/`whatsapp:…` (channels/ids.py)."""
    return conversation.partition(":")[2]


def worker_name() -> str:
    return f"notify:{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Drains the outbox (`run_once`) and queues the day's reminders (`daily`). `clock` gives now."""

    def __init__(
        self,
        db: store.Db,
        senders: Senders,
        *,
        name: Optional[str] = None,
        lease: timedelta = LEASE,
        retry: Optional[notifications.RetryPolicy] = None,
        quiet: Optional[notifications.QuietHours] = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.db = db
        self.senders = senders
        self.name = name or worker_name()
        self.lease = lease
        self.retry = retry or notifications.retry_from_env()
        self.quiet = quiet if quiet is not None else notifications.quiet_from_env()
        self.clock = clock
        self.scanned_on: Optional[date] = None

    def daily(self, now: Optional[datetime] = None) -> int:
        """The reminders due today, once a day (and at start): how many were queued."""
        now = now or self.clock()
        today = notifications.today_in_riyadh(now)
        if today == self.scanned_on:
            return 0
        queued = notifications.scan_reminders(self.db, today, now)
        self.scanned_on = today
        log.info("reminders for %s: %d queued", today.isoformat(), queued)
        return queued

    def run_once(self, now: Optional[datetime] = None) -> int:
        """Send what is due now; how many rows were dealt with (sent, postponed, failed)."""
        now = now or self.clock()
        done = 0
        for row in outbox.due(self.db, store.now_iso(now), BATCH):
            done += self.process(row, now)
        return done

    def process(self, row: dict, now: datetime) -> int:
        contact = outbox.contact(self.db, row["conversation"]) if row["channel"] in ("telegram", "whatsapp") else None
        way = notifications.route(row, contact, self.senders.configured, now)
        at = store.now_iso(now)
        quiet_until = self.quiet.until(now)
        if quiet_until is not None and way in notifications.PHONE_ROUTES:
            # Phones are left alone in quiet hours: the row waits, no attempt counted.
            return int(outbox.postpone(self.db, row["id"], store.now_iso(quiet_until), at))
        if not outbox.claim(self.db, row["id"], self.name, at, store.now_iso(now + self.lease)):
            return 0  # another sender has it
        attempts = int(row["attempts"]) + 1
        try:
            if way == "blocked":
                raise SendError("telegram: the chat blocked the bot (HTTP 403)", permanent=True)
            used = self.send(row, way, now)
        except SendError as error:
            wait = None if error.permanent else self.retry.wait_after(attempts)
            if wait is None:
                outbox.mark_failed(self.db, row["id"], self.name, error.reason, way)
                log.warning(
                    "notification %d (%s) failed after %d attempt(s): %s",
                    row["id"],
                    row["kind"],
                    attempts,
                    error.reason,
                )
            else:
                outbox.retry_at(self.db, row["id"], self.name, store.now_iso(now + wait), error.reason, way)
                log.info("notification %d: %s; trying again in %.0f s", row["id"], error.reason, wait.total_seconds())
            return 1
        if outbox.mark_sent(self.db, row["id"], self.name, used, at):
            log.info("notification %d (%s) sent by %s, attempt %d", row["id"], row["kind"], used, attempts)
        else:
            log.warning("notification %d was sent after its lease ran out", row["id"])
        return 1

    def send(self, row: dict, way: str, now: datetime) -> str:
        """Send `row` the way chosen; the way it went."""
        message = notifications.render(row)
        if way == "telegram":
            assert self.senders.telegram is not None
            try:
                self.senders.telegram.send(
                    _external(row["conversation"]), bidi.isolate(message["text"]), message["buttons"]
                )
                return "telegram"
            except SendError as error:
                if not error.blocked:
                    raise
                # The person blocked the bot: no more messages to this chat; a reminder stops there
                # (blocking ends the subscription), a status change goes by SMS.
                outbox.mark_blocked(self.db, row["conversation"], store.now_iso(now))
                notifications.unsubscribe(self.db, row["conversation"], now=now)
                if row["kind"] == "reminder":
                    raise
                log.info("notification %d: the Telegram chat blocked the bot; sending it by SMS", row["id"])
                return self.send(row, "sms", now)
        if way in ("whatsapp", "whatsapp_template"):
            assert self.senders.whatsapp is not None
            to, text = _external(row["conversation"]), bidi.isolate(message["text"])
            if way == "whatsapp":
                try:
                    self.senders.whatsapp.send(to, text, message["buttons"])
                    return "whatsapp"
                except SendError as error:
                    if not error.window_closed:
                        raise
            self.senders.whatsapp.send_template(to, text, row["language"])
            return "whatsapp_template"
        return self.send_sms(row, message["text"])

    def send_sms(self, row: dict, text: str) -> str:
        person = store.get_person(self.db, row["national_id"])
        mobile = (person or {}).get("mobile")
        if not mobile:
            raise SendError("sms: no mobile on file", permanent=True)
        if not isinstance(self.senders.sms, sms.HttpGateway):
            return "sms_outbox"  # development: no gateway, nothing leaves the machine
        try:
            self.senders.sms.send(mobile, text)
        except sms.SmsError as error:
            raise SendError(error.reason, permanent=error.permanent) from None
        return "sms"


def command(python: str, *args: str) -> List[str]:
    """The process `make run` and `make cluster` keep beside the servers."""
    return [python, "-m", "musaed.notify_worker", *args]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m musaed.notify_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between looks at the outbox")
    parser.add_argument("--lease", type=float, default=LEASE.total_seconds(), help="seconds a claimed row is ours")
    parser.add_argument("--once", action="store_true", help="send what is due and queue today's reminders, then stop")
    args = parser.parse_args(argv)
    files.private()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logsafe.install()  # ids and phone numbers masked in every line
    for lang in language.LANGUAGES:  # parsed once, now (a broken one stops here), not on the first send in it
        catalogue.load(lang)
    worker = Worker(store.open_db(), Senders.from_env(), lease=timedelta(seconds=args.lease))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())  # the send under way ends first
    log.info(
        "notify worker %s: channels %s, SMS %s, quiet hours %s",
        worker.name,
        ", ".join(worker.senders.configured) or "none",
        "gateway" if isinstance(worker.senders.sms, sms.HttpGateway) else "development outbox",
        settings.QUIET_HOURS.get(),
    )
    while not stopping.is_set():
        try:
            worker.daily()
            worker.run_once()
        except Exception:  # noqa: BLE001 - the store unreachable for a moment: the next round tries again
            log.exception("notify round failed")
        if args.once:
            return 0
        stopping.wait(args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())
