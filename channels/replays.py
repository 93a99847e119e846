"""Webhook replays: a delivery handled once, and never one that is old.

A signed WhatsApp body or a Telegram update with the right secret stays valid
for whoever captured it. So:

- each WhatsApp message id and Telegram update id is remembered in the
  application database for a day (``webhook_deliveries``, shared by every
  replica): a second delivery is acknowledged (200, so the sender stops
  retrying) and not handled;
- a message written more than 5 minutes ago (WhatsApp's ``timestamp``,
  Telegram's ``date``, or ``edit_date`` for an edit) is acknowledged and not
  handled. A day of ids covers far more than those 5 minutes, so a replay is
  caught by one rule or the other.

When the database cannot be reached the delivery is handled (and the error
logged): the age check still holds, and people's messages are not dropped
because of an outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from musaed import store

logger = logging.getLogger(__name__)

REMEMBER = timedelta(days=1)
MAX_AGE_S = 5 * 60


def too_old(sent_at: Any, now: Optional[float] = None) -> bool:
    """Whether a message sent at `sent_at` (Unix seconds, as the webhooks give it) is past MAX_AGE_S.

    A missing or unreadable time counts as old: both platforms always send one.
    """
    try:
        sent = float(sent_at)
    except (TypeError, ValueError):
        return True
    return (now if now is not None else time.time()) - sent > MAX_AGE_S


def _record(channel: str, delivery_id: str) -> bool:
    now = datetime.now(timezone.utc)
    return store.first_delivery(
        store.open_db(), channel, delivery_id, at=store.now_iso(now), forget_before=store.now_iso(now - REMEMBER)
    )


async def first_time(channel: str, delivery_id: Any) -> bool:
    """True the first time `channel` delivers `delivery_id` within a day; False for a replay."""
    if delivery_id in (None, ""):
        return True
    try:
        # In a worker thread: a database write must not hold up the server's other requests.
        return await asyncio.to_thread(_record, channel, str(delivery_id))
    except Exception:  # noqa: BLE001 - the database is down: handle it (see module doc)
        logger.exception("Could not check %s delivery %s for a replay", channel, delivery_id)
        return True
