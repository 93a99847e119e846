"""The one place every input channel asks, before Rasa sees a message: is a person answering?

While an agent holds the conversation (musaed/handover.py) the person's
message, text or button, goes to the agent's side and nothing reaches the
dialogue: no form starts, no answer is given. While waiting, the bot still
answers («ارجع للمساعد» cancels the wait); out of hours, the next message is
kept for the next agent; after a close, the rating buttons are read here.
REST has no push: a REST caller gets the agent's messages with its next
request, before anything else (docs/care.md).

Each channel wraps its handler once: ``limits.guard(gate(never_silent(...)))``
(inside the limits, outside never_silent: a held message is meant to get no reply).
A button's title, when the channel knows it, comes in the metadata as
``musaed_title``: the agent reads what the person saw, not the payload.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel, UserMessage

from channels.ids import channel_of
from musaed import documents, handover, store

logger = logging.getLogger(__name__)

TITLE_KEY = "musaed_title"
DOCUMENT_KEY = "musaed_document"  # a file's kept document (channels/documents.py)
PULL_CHANNELS = ("rest",)  # no push: delivered with the caller's next request


def title_of(metadata: Any) -> Optional[str]:
    title = metadata.get(TITLE_KEY) if isinstance(metadata, dict) else None
    return title.strip()[: handover.MAX_TEXT] if isinstance(title, str) and title.strip() else None


def _decide(conversation: str, text: str, title: Optional[str]) -> Tuple[List[Dict[str, Any]], handover.Decision]:
    db = store.open_db()
    channel = channel_of(conversation) or ""
    pending = handover.pending_for(db, conversation, channel) if channel in PULL_CHANNELS else []
    return pending, handover.on_person_message(db, conversation, text, title=title)


async def send(output: OutputChannel, recipient: str, reply: Dict[str, Any]) -> None:
    """One reply; an agent's is one message marked with the agent (a collecting channel keeps
    the mark in the same message, where Rasa's own would send it as a second one)."""
    inner = getattr(output, "inner", output)  # never_silent's wrapper, should one be outside
    if isinstance(inner, CollectingOutputChannel):
        message = inner._message(
            recipient, text=reply.get("text"), buttons=reply.get("buttons"), custom=reply.get("custom")
        )
        await inner._persist_message(message)
        return
    await output.send_response(recipient, {k: v for k, v in reply.items() if k != "custom"})


async def _drop_document(conversation: str, metadata: Any) -> None:
    """A file sent while an agent holds the conversation: the agent reads that one came (its
    title), and no request will take it, so what was kept of it goes now."""
    document_id = metadata.get(DOCUMENT_KEY) if isinstance(metadata, dict) else None
    if isinstance(document_id, str):
        await asyncio.to_thread(documents.discard, store.open_db(), document_id, conversation)


def gate(on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Callable[[UserMessage], Awaitable[Any]]:
    async def handle(message: UserMessage) -> Any:
        conversation = message.sender_id or ""
        try:
            pending, decision = await asyncio.to_thread(
                _decide, conversation, message.text or "", title_of(message.metadata)
            )
        except Exception:  # noqa: BLE001 - the store down: the bot answers as it would without handover
            logger.exception("Handover state of %s unknown: the bot answers", conversation)
            return await on_new_message(message)
        for reply in pending + decision.replies:
            await send(message.output_channel, conversation, reply)
        if not decision.to_bot:
            logger.info("Message in %s kept from the bot (handover)", conversation)
            await _drop_document(conversation, message.metadata)
            return None
        return await on_new_message(message)

    return handle
