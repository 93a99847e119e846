"""A file that reached a channel, made into a message of the conversation (issue 31).

Every channel that takes files (the widget's upload, REST's, Telegram's
photos and files, WhatsApp's images and documents) ends here: the bytes are
checked and, when they pass, kept (musaed/documents.py, off the event loop),
and the conversation gets one short message in place of the file,
``/inform{"document": "<id>"}`` or ``/inform{"document_refused": "<why>"}``,
which Rasa reads without the model (actions/documents.py answers it). The
message's metadata carries the title transcripts and agents read instead
(``📎 JPEG · 412 KB``: a type and a size, never a file name or a caption) and
the document's id, so a file that no one will take (an agent holds the
conversation: channels/handover_gate.py) is deleted at once.

A sender past its rate limit gets nothing downloaded or decoded: the message
goes on to channels/limits.py, which answers it as it answers a burst.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from channels import limits
from channels.handover_gate import DOCUMENT_KEY, TITLE_KEY
from musaed import documents, store

logger = logging.getLogger(__name__)


class TooLarge(Exception):
    """The platform says (or the download shows) the file is over the limit: not fetched further."""


class DownloadFailed(Exception):
    """The platform would not give the file."""


Message = Tuple[str, Dict[str, Any]]


def refused(reason: str) -> Message:
    return documents.refused_text(reason), {TITLE_KEY: documents.title() + " ✗"}


def _check_and_keep(data: bytes, conversation: str) -> Message:
    result = documents.check(data)
    if isinstance(result, documents.Refused):
        logger.info("file refused in %s (%s, %d KB)", conversation, result.reason, len(data) // 1024)
        return refused(result.reason)
    row = documents.keep(store.open_db(), conversation, result)
    return documents.message_text(row["id"]), {
        TITLE_KEY: documents.title(row["file_type"], row["size"]),
        DOCUMENT_KEY: row["id"],
    }


async def from_bytes(data: bytes, conversation: str) -> Message:
    """The conversation's message for a file's bytes (checked, and kept when it passes)."""
    return await asyncio.to_thread(_check_and_keep, data, conversation)


def has_room(conversation: str, address: Optional[str] = None) -> bool:
    """Whether the sender may send now (nothing counted: the message itself is, by the guard)."""
    return limits.limits().has_room(conversation, address)


async def fetched(
    download: Callable[[int], Awaitable[bytes]], conversation: str, address: Optional[str] = None
) -> Message:
    """The conversation's message for a file the platform holds: `download(limit)` fetches at
    most `limit` bytes (raising TooLarge past it, DownloadFailed when refused)."""
    if not has_room(conversation, address):
        return refused(documents.UNREADABLE)  # not fetched: the guard answers the burst
    try:
        data = await download(documents.max_bytes())
    except TooLarge:
        return refused(documents.TOO_LARGE)
    except (DownloadFailed, asyncio.TimeoutError, OSError) as error:
        logger.warning("a file in %s could not be downloaded: %s", conversation, type(error).__name__)
        return refused(documents.DOWNLOAD_FAILED)
    return await from_bytes(data, conversation)


async def read_at_most(chunks: Any, limit: int) -> bytes:
    """An aiohttp response body (`response.content`), at most `limit` bytes, else TooLarge."""
    body = bytearray()
    async for chunk in chunks.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise TooLarge()
    return bytes(body)
