"""Delivering one-time codes and notifications: the development outbox, or an SMS gateway over HTTP.

One small interface, `Sender.deliver(mobile, text)`, so a real gateway is an
adapter, not a change to the identity flow:

- `OutboxOnly` (the default): the code is already in the `otp_outbox` table,
  which `make code ID=…` reads; nothing leaves the machine.
- `HttpGateway` (``MUSAED_SMS_URL`` set): POSTs ``{"to": mobile, "text": …}``
  as JSON, with ``Authorization: Bearer $MUSAED_SMS_TOKEN`` when set.

The gateway call runs on a background thread: a reply that waited for it
would take longer for a registered id than for one not on file, which tells
an attacker who is registered. A failed delivery is logged without the text
(it holds the code); the person can ask for a new code.

The notify worker (musaed/notify_worker.py) calls `HttpGateway.send` instead,
on its own thread, which raises `SmsError` with why (no number, no text) so the
notification is tried again; with no gateway it records the notification as
`sms_outbox`, as the codes' outbox does.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Mapping, Optional, Protocol

import requests

from musaed import settings

log = logging.getLogger(__name__)

TIMEOUT_S = 10


class SmsError(Exception):
    """An SMS not taken by the gateway: `reason` names the failure, never the number or the text."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Sender(Protocol):
    def deliver(self, mobile: str, text: str) -> Optional[Future]:
        """Send `text` to `mobile`; never raise, never log `text`."""


class OutboxOnly:
    """Development: the `otp_outbox` row is the delivery."""

    def deliver(self, mobile: str, text: str) -> Optional[Future]:
        return None


class HttpGateway:
    """An SMS gateway that takes one JSON POST per message."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = TIMEOUT_S) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sms")

    def send(self, mobile: str, text: str) -> None:
        """POST one message now; SmsError (why, without the number or the text) when it is not taken."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = requests.post(self.url, json={"to": mobile, "text": text}, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise SmsError(f"sms: gateway unreachable ({type(error).__name__})") from None
        if r.status_code >= 300:
            # A refusal of the request itself will be refused again; the gateway's own trouble may pass.
            raise SmsError(f"sms: HTTP {r.status_code}", permanent=400 <= r.status_code < 500 and r.status_code != 429)

    def _post(self, mobile: str, text: str) -> bool:
        try:
            self.send(mobile, text)
        except SmsError as error:
            log.error("%s: code not delivered to mobile ending %s", error.reason, mobile[-2:])
            return False
        return True

    def deliver(self, mobile: str, text: str) -> Optional[Future]:
        return self._pool.submit(self._post, mobile, text)


_senders: dict = {}


def from_env(env: Optional[Mapping[str, str]] = None) -> Sender:
    """The gateway when MUSAED_SMS_URL is set, else the development outbox (one per setting).

    `env`: where to read the settings (default: this process's environment)."""
    url = settings.SMS_URL.get(env).strip()
    if not url:
        return OutboxOnly()
    key = (url, settings.SMS_TOKEN.given(env))
    if key not in _senders:
        _senders[key] = HttpGateway(*key)
    return _senders[key]
