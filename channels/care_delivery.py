"""Agents' messages to the person, on the conversation's own channel, from any process.

The care server (its own process) writes an agent's message to the store; each
Rasa server polls the store for its channels' undelivered messages every
POLL_SECONDS and sends each one through the channel's own output (socket.io
push to the widget, the Telegram and WhatsApp send APIs). A message is claimed
before it is sent (a conditional UPDATE), so with two Rasa replicas exactly one
sends it; a web message is claimed only by the replica the widget's socket is
connected to, and waits in the store while the widget is closed. Why polling
and not Redis pub/sub or LISTEN/NOTIFY: docs/care.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, List

from musaed import handover, store
from musaed.store import handover as rows

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2


def _pending(channel: str) -> List[dict]:
    return rows.to_deliver(store.open_db(), channel)


def _claim(message_id: int) -> bool:
    return rows.claim_delivery(store.open_db(), message_id, store.now_iso())


def _unclaim(message_id: int) -> None:
    rows.unclaim_delivery(store.open_db(), message_id)


def messenger_reply(message: dict) -> Dict[str, Any]:
    """A messenger has no mark for a person: the agent's name starts the text."""
    reply = handover.as_reply(message)
    if message["side"] == "agent":
        reply["text"] = f"{message['agent']}: {reply['text']}"
    reply.pop("custom", None)
    return reply


async def deliver_once(
    channel: str, deliver: Callable[[dict], Awaitable[None]], reachable: Callable[[str], bool] = lambda _: True
) -> int:
    """Send what waits for `channel` and this process can reach; how many were sent."""
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
    return sent


async def deliver_forever(
    channel: str, deliver: Callable[[dict], Awaitable[None]], reachable: Callable[[str], bool] = lambda _: True
) -> None:
    logger.info("Delivering agents' messages on %s (polling the store every %.1f s)", channel, POLL_SECONDS)
    await asyncio.to_thread(handover.warm)  # the gate's first held message is then as quick as the next
    while True:
        try:
            await deliver_once(channel, deliver, reachable)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the store unreachable for a moment: keep polling
            logger.exception("Agents' messages on %s: the store could not be read", channel)
        await asyncio.sleep(POLL_SECONDS)
