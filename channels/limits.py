"""Limits on volume: long messages and bursts are answered briefly and never reach the model.

Every public channel wraps its handler in `guard` (outside `never_silent`):

- A message over ``MUSAED_MAX_MESSAGE_BYTES`` (default 4096 bytes of UTF-8
  text) gets a short "too long" reply in the language it was written in. It
  is not parsed and Rasa never sees it, so nothing of it is stored (a 900 KB
  message used to take seconds of the model's time and become a 5 MB event).
- A sender (its conversation: ``web:…``, ``telegram:…``, ``rest:…``) gets at
  most ``MUSAED_SENDER_RATE`` (default ``20/10s,60/60s``) messages through,
  and a network address (``musaed_address`` in the metadata: web sockets and
  REST with a token) at most ``MUSAED_ADDRESS_RATE`` (default
  ``60/10s,300/60s``). A message past either is not processed; the first one
  of a burst gets a polite "slow down" in the person's language, the rest of
  that burst nothing (a flood is not answered message by message).

Why these rates: a person typing or tapping buttons sends at most a message
every second or two; 20 in 10 s is past any person, and 60 a minute keeps a
slow script to one message a second (a few percent of one Rasa server). An
address is often shared (an office, a mobile carrier's NAT), so it gets more:
300 a minute is about a hundred people chatting at once.

The limiter is a sliding window: the times of each key's messages let
through in the last minute (at most 60 numbers a sender, 300 an address;
keys with nothing left in the window are swept away), so "20 in 10 s" means
exactly that, in any 10 s. A refused message uses up nothing. Written here
rather than taken from the ``limits`` package: that one needs ``packaging``
≥ 21, and Rasa 3.6 pins ``packaging`` < 21. The state is in this process (one machine);
in the cluster nginx limits each address in front of the replicas
(scripts/cluster.py), and each replica limits its senders.

Tokenless REST is exempt (REST is open only on loopback then: tests,
`make chat`, `make bench`), and so is this machine's own address from the
per-address limit (as at the cluster's nginx; its senders are still limited).
Telegram and WhatsApp give no address, only the sender.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence

from rasa.core.channels.channel import UserMessage

from musaed import catalogue, language, settings

logger = logging.getLogger(__name__)

ADDRESS_KEY = "musaed_address"  # the client's network address in a message's metadata (set by the channel)
DEFAULT_MAX_BYTES = int(settings.MAX_MESSAGE_BYTES.default)
DEFAULT_SENDER_RATE = settings.SENDER_RATE.default
DEFAULT_ADDRESS_RATE = settings.ADDRESS_RATE.default
# Keys tracked at most (a flood of new senders or addresses must not grow memory without end).
MAX_KEYS = 100_000
_SWEEP_EVERY = 1024
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float


def parse_rates(text: str) -> List[Rate]:
    """``"20/10s,60/60s"`` → two rates: 20 messages in 10 s, 60 in 60 s."""
    rates = []
    for part in text.split(","):
        match = _RATE.match(part)
        if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
            raise ValueError(f"not a rate like 20/10s: {part!r}")
        rates.append(Rate(int(match.group(1)), float(match.group(2))))
    return rates


class Limiter:
    """A sliding window over several rates at once: `allow(key)` is True when, for every rate,
    fewer than `count` messages of `key` were allowed in the last `seconds`; only then it counts."""

    def __init__(
        self, rates: Sequence[Rate], clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self.rates = list(rates)
        self.clock = clock
        self.max_keys = max_keys
        self.window = max(r.seconds for r in self.rates)
        self._times: "OrderedDict[str, List[float]]" = OrderedDict()  # key -> when it was allowed, oldest first
        self._calls = 0

    def allow(self, key: str) -> bool:
        """Whether `key` has room, counting this message when it has."""
        if not self.room(key):
            return False
        self.take(key)
        return True

    def room(self, key: str) -> bool:
        """Whether `key` may send one more message now (nothing is counted)."""
        now = self.clock()
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        times = self._times.get(key)
        if not times:
            return True
        # What fell out of the longest window is of no use any more.
        del times[: bisect.bisect_right(times, now - self.window)]
        return all(len(times) - bisect.bisect_right(times, now - r.seconds) < r.count for r in self.rates)

    def take(self, key: str) -> None:
        """Count one message of `key`, now."""
        self._times.setdefault(key, []).append(self.clock())
        self._times.move_to_end(key)
        while len(self._times) > self.max_keys:
            self._times.popitem(last=False)  # the key allowed longest ago starts afresh

    def _sweep(self, now: float) -> None:
        """Forget keys with nothing in the window: they are as good as new."""
        for key in [k for k, times in self._times.items() if not times or times[-1] <= now - self.window]:
            del self._times[key]

    def __len__(self) -> int:
        return len(self._times)


# What `Limits.check` says about a message.
GO, SLOW_DOWN, QUIET = "go", "slow_down", "quiet"


class Limits:
    """The per-sender and per-address limiters of this process, and who has been told to slow down."""

    def __init__(
        self,
        sender_rates: Sequence[Rate],
        address_rates: Sequence[Rate],
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.senders = Limiter(sender_rates, clock)
        self.addresses = Limiter(address_rates, clock)
        self.max_bytes = max_bytes
        self.clock = clock
        # A burst is told once: sender -> when; forgotten once the sender gets a message through,
        # or after the longest window (a flood that goes on hears it again once a minute).
        self._told: "OrderedDict[str, float]" = OrderedDict()
        self._told_for = max(r.seconds for r in [*sender_rates, *address_rates])

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Limits":
        """The limits set in `env` (default: this process's environment)."""
        return cls(
            parse_rates(settings.SENDER_RATE.get(env)),
            parse_rates(settings.ADDRESS_RATE.get(env)),
            settings.MAX_MESSAGE_BYTES.integer(env),
        )

    def too_long(self, text: Any) -> bool:
        text = text if isinstance(text, str) else str(text or "")  # a REST caller may send any JSON
        if len(text) > self.max_bytes:  # at least one byte a character: no need to encode it all
            return True
        return len(text) * 4 > self.max_bytes and len(text.encode("utf-8", "surrogatepass")) > self.max_bytes

    def has_room(self, sender: str, address: Optional[str]) -> bool:
        """Whether a message of `sender` (from `address`) would go through now; nothing is counted
        (a file is fetched and read only then: channels/documents.py)."""
        limited_address = address if address is not None and not _local(address) else None
        return (limited_address is None or self.addresses.room(limited_address)) and self.senders.room(sender)

    def check(self, sender: str, address: Optional[str]) -> str:
        """GO, or SLOW_DOWN (the first refused message of a burst), or QUIET (the rest of it)."""
        limited_address = address if address is not None and not _local(address) else None
        # Counted only when both have room: a refused message uses up nothing, of either.
        if (limited_address is None or self.addresses.room(limited_address)) and self.senders.room(sender):
            if limited_address is not None:
                self.addresses.take(limited_address)
            self.senders.take(sender)
            self._told.pop(sender, None)
            return GO
        now = self.clock()
        told = self._told.get(sender)
        if told is not None and now - told < self._told_for:
            return QUIET
        self._told[sender] = now
        self._told.move_to_end(sender)
        while len(self._told) > MAX_KEYS or (self._told and now - next(iter(self._told.values())) >= self._told_for):
            self._told.popitem(last=False)
        return SLOW_DOWN


_limits: Optional[Limits] = None


def limits() -> Limits:
    """This process's limits, made from the environment on first use (shared by every channel)."""
    global _limits
    if _limits is None:
        _limits = Limits.from_env()
    return _limits


def reply(label: str, text: Any) -> str:
    """A catalogue label in the language of `text` (its start is enough to tell)."""
    start = (text if isinstance(text, str) else str(text or ""))[:1000]
    return catalogue.load(language.detect(start) or language.ARABIC).labels[label]


# -- addresses ---------------------------------------------------------------------


def _ip(value: Optional[str]) -> Optional[str]:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def _local(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def client_address(peer: Optional[str], headers: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The client's address: the peer's, or, when the peer is a proxy on loopback (the cluster's
    nginx), the address it passes in X-Real-IP (else the last X-Forwarded-For entry, the one it added)."""
    address = _ip(peer)
    if address is None or not ipaddress.ip_address(address).is_loopback or not headers:
        return address
    forwarded = _ip(headers.get("X-Real-IP"))
    if forwarded is None:
        forwarded = _ip((headers.get("X-Forwarded-For") or "").split(",")[-1])
    return forwarded or address


def with_address(metadata: Any, address: Optional[str]) -> Dict[str, Any]:
    """The message's metadata with the server's `musaed_address`, whatever the client sent under that key."""
    out = dict(metadata) if isinstance(metadata, dict) else {}
    out.pop(ADDRESS_KEY, None)
    if address:
        out[ADDRESS_KEY] = address
    return out


def address_of(message: UserMessage) -> Optional[str]:
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    address = metadata.get(ADDRESS_KEY)
    return address if isinstance(address, str) and address else None


# -- the wrapper -------------------------------------------------------------------


async def _say(message: UserMessage, text: str) -> None:
    try:
        await message.output_channel.send_response(message.sender_id, {"text": text})
    except Exception:  # noqa: BLE001 - the channel is down: nothing more to say
        logger.exception("Could not answer a refused message in %s", message.sender_id)


def guard(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    rate_limited: bool = True,
    current: Callable[[], Limits] = limits,
) -> Callable[[UserMessage], Awaitable[Any]]:
    """`on_new_message` behind the size cap and (unless `rate_limited` is False) the rate limits."""

    async def handle(message: UserMessage) -> Any:
        lim = current()
        if lim.too_long(message.text):
            logger.warning(
                "A message of %d characters in %s refused: over %d bytes",
                len(message.text or ""),
                message.sender_id,
                lim.max_bytes,
            )
            await _say(message, reply("too_long", message.text))
            return None
        if rate_limited:
            verdict = lim.check(message.sender_id, address_of(message))
            if verdict != GO:
                if verdict == SLOW_DOWN:
                    logger.warning("Messages from %s come too fast: told to slow down", message.sender_id)
                    await _say(message, reply("slow_down", message.text))
                return None
        return await on_new_message(message)

    return handle
