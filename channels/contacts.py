"""When a person last wrote on a messenger, for the notify worker (musaed/notifications.py).

WhatsApp takes a free-form message only within 24 hours of the person's last one
(outside it, an approved template); a Telegram chat that blocked the bot (a 403 to
the worker) is written to again once the person writes. Both channels record each
authentic, first-time message here (`messenger_contacts`, migration 009): the
channel sees every message, the handover gate's and the limits' too, which the
tracker store would not hold, and the row is one upsert, kept a day (retention).
A failure is logged: the message is handled anyway (the worker then sends the
template, which is always allowed).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from musaed import store
from musaed.store import notifications as outbox

logger = logging.getLogger(__name__)


def _at(sent_at: Any) -> datetime:
    """The message's own time (Unix seconds, as the webhooks give it), else now."""
    now = datetime.now(timezone.utc)
    try:
        return min(datetime.fromtimestamp(float(sent_at), timezone.utc), now)
    except (TypeError, ValueError, OverflowError, OSError):
        return now


def _record(conversation: str, at: datetime) -> None:
    outbox.record_inbound(store.open_db(), conversation, store.now_iso(at))


async def wrote(conversation: str, sent_at: Any = None) -> None:
    """The person in `conversation` wrote at `sent_at`."""
    try:
        await asyncio.to_thread(_record, conversation, _at(sent_at))
    except Exception:  # noqa: BLE001 - the database is down: the message is handled anyway
        logger.exception("Could not record a message's time for %s", conversation)
