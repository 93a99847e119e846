"""Agents' messages (and notifications, to a widget open now) to the person, on the conversation's own channel.

The care server (its own process) writes an agent's message to the store; each
Rasa server polls the store for its channels' undelivered messages every
POLL_SECONDS and sends each one through the channel's own output (socket.io
push to the widget, the Telegram and WhatsApp send APIs). A message is claimed
before it is sent (a conditional UPDATE), so with two Rasa replicas exactly one
sends it; a web message is claimed only by the replica the widget's socket is
connected to, and waits in the store while the widget is closed. Why polling
and not Redis pub/sub or LISTEN/NOTIFY: docs/care.md.

The same poll delivers notifications (musaed/notifications.py: a status change,
a reminder) to a widget open at that moment, whatever the quiet hours: a web
notification is claimed with the notify worker's lease (musaed/store/notifications.py)
by the replica the widget's socket is connected to, so it is shown once; one that
no replica takes within notifications.WEB_GRACE is the worker's, for an SMS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Dict, List

from musaed import handover, notifications, store
from musaed.store import handover as rows
from musaed.store import notifications as outbox

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# A notification claimed for a widget is this replica's this long (a push takes milliseconds).
NOTICE_LEASE = timedelta(seconds=30)
SENDER = f"rasa:{socket.gethostname()}:{os.getpid()}"


def _pending(channel: str) -> List[dict]:
    return rows.to_deliver(store.open_db(), channel)


def _claim(message_id: int) -> bool:
    return rows.claim_delivery(store.open_db(), message_id, store.now_iso())


def _unclaim(message_id: int) -> None:
    rows.unclaim_delivery(store.open_db(), message_id)


def _pending_notices(channel: str) -> List[dict]:
    return outbox.queued_on(store.open_db(), channel, store.now_iso())


def _claim_notice(notice_id: int) -> bool:
    now = datetime.now(timezone.utc)
    return outbox.claim(store.open_db(), notice_id, SENDER, store.now_iso(now), store.now_iso(now + NOTICE_LEASE))


def _notice_sent(notice_id: int) -> None:
    outbox.mark_sent(store.open_db(), notice_id, SENDER, "widget", store.now_iso())


def _notice_back(notice: dict) -> None:
    """The push failed: the row is free again, at its own time (the worker's SMS after the grace)."""
    outbox.retry_at(store.open_db(), notice["id"], SENDER, notice["next_attempt_at"], "widget: push failed", None)


def notice_message(notice: dict) -> Dict[str, Any]:
    """A notification row as the channel's delivery takes a desk message (musaed/handover.py as_reply)."""
    said = notifications.render(notice)
    return {
        "id": notice["id"],
        "conversation": notice["conversation"],
        "side": "system",
        "agent": None,
        "text": said["text"],
        "buttons": json.dumps(said["buttons"], ensure_ascii=False) if said["buttons"] else None,
        "handover_state": None,
    }


def messenger_reply(message: dict) -> Dict[str, Any]:
    """A messenger has no mark for a person: the agent's name starts the text."""
    reply = handover.as_reply(message)
    if message["side"] == "agent":
        reply["text"] = f"{message['agent']}: {reply['text']}"
    reply.pop("custom", None)
    return reply


async def deliver_once(
    channel: str,
    deliver: Callable[[dict], Awaitable[None]],
    reachable: Callable[[str], bool] = lambda _: True,
    notices: bool = False,
) -> int:
    """Send what waits for `channel` and this process can reach; how many were sent. With
    `notices`, notifications too (the widget's: `reachable` says whether it is open here)."""
    sent = 0
    for message in await asyncio.to_thread(_pending, channel):
        if not reachable(message["conversation"]) or not await asyncio.to_thread(_claim, message["id"]):
            continue
        try:
            await deliver(message)
            sent += 1
        except Exception:  # noqa: BLE001 - the API or socket failed: the next poll tries again
            logger.exception("Could not deliver an agent's message to %s", message["conversation"])
            await asyncio.to_thread(_unclaim, message["id"])
    if not notices:
        return sent
    for notice in await asyncio.to_thread(_pending_notices, channel):
        if not reachable(notice["conversation"]) or not await asyncio.to_thread(_claim_notice, notice["id"]):
            continue
        try:
            await deliver(notice_message(notice))
        except Exception:  # noqa: BLE001 - the socket failed: free the row again
            logger.exception("Could not push notification %d", notice["id"])
            await asyncio.to_thread(_notice_back, notice)
            continue
        await asyncio.to_thread(_notice_sent, notice["id"])
        logger.info("notification %d (%s) pushed to the widget", notice["id"], notice["kind"])
        sent += 1
    return sent


async def deliver_forever(
    channel: str,
    deliver: Callable[[dict], Awaitable[None]],
    reachable: Callable[[str], bool] = lambda _: True,
    notices: bool = False,
) -> None:
    logger.info("Delivering agents' messages on %s (polling the store every %.1f s)", channel, POLL_SECONDS)
    await asyncio.to_thread(handover.warm)  # the gate's first held message is then as quick as the next
    while True:
        try:
            await deliver_once(channel, deliver, reachable, notices)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the store unreachable for a moment: keep polling
            logger.exception("Agents' messages on %s: the store could not be read", channel)
        await asyncio.sleep(POLL_SECONDS)
