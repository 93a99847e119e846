"""Small text helpers shared by the channels: the messengers cap message and label lengths."""

from __future__ import annotations

from typing import List


def split_long(text: str, limit: int) -> List[str]:
    """`text` in pieces of at most `limit` characters, cut at a line break (or a space) when possible."""
    text = text.strip()
    pieces: List[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].strip()
    if text:
        pieces.append(text)
    return pieces


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in "…" when it had to be cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"
