"""Conversation ids that say which channel a conversation belongs to.

Rasa keys a conversation by its sender id alone, and a channel's own ids are
easy to know (a WhatsApp number, a Telegram chat id). So every channel files
its messages under ``<channel>:<its own id>`` — ``whatsapp:9665…``,
``telegram:7000…``, ``rest:me``, ``web:<server-issued id>`` — and no message
on one channel can reach another channel's conversation: a REST caller who
sends ``whatsapp:9665…`` as its sender talks in ``rest:whatsapp:9665…``.
"""

from __future__ import annotations

from typing import Optional


def conversation_id(channel: str, external_id: object) -> str:
    """The conversation of `external_id` on `channel`."""
    return f"{channel}:{external_id}"


def external_id(channel: str, conversation: str) -> str:
    """The channel's own id (phone number, chat id) of one of its conversations."""
    prefix = f"{channel}:"
    return conversation[len(prefix) :] if conversation.startswith(prefix) else conversation


def channel_of(conversation: str) -> Optional[str]:
    """Which channel a conversation id belongs to, or None for an id without one."""
    head, sep, _ = conversation.partition(":")
    return head if sep else None
