"""Delivering one-time codes: the development outbox, or an SMS gateway over HTTP.

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
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Mapping, Optional, Protocol

import requests

from musaed import settings

log = logging.getLogger(__name__)

TIMEOUT_S = 10


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

    def _post(self, mobile: str, text: str) -> bool:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = requests.post(self.url, json={"to": mobile, "text": text}, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            log.error(
                "SMS gateway unreachable (%s): code not delivered to mobile ending %s",
                type(error).__name__,
                mobile[-2:],
            )
            return False
        if r.status_code >= 300:
            log.error("SMS gateway refused a code (HTTP %s) to mobile ending %s", r.status_code, mobile[-2:])
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
