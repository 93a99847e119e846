"""A bystander's reply time while one client floods (issue 25, item 3).

Through a public channel with the limits on: REST with a token
(channels/limits.py), from two client addresses as the cluster's nginx
passes them (X-Real-IP from loopback). The bystander sends an ordinary
message every `interval_s` (a new sender every 10 messages, so it stays
under its own limit) and its reply times are what is measured, in three
phases:

    quiet        the bystander alone
    one_sender   one flooder, one sender: `rate` messages a second (50: twice what one Rasa server
                 answers), each sent without waiting for the last one's answer
    one_address  the same from one address, a new sender for every message (what an open endpoint
                 used to serve in full: 600 senders, 600 answers)

Each flood phase also counts the flooder's messages that were answered by
the bot, told to slow down, got an empty reply (with the limits on: the rest
of a burst, refused in silence), failed, or were not sent (100 unanswered
already).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Dict, List, Optional

import aiohttp

from bench.load import check_loopback
from bench.stats import summarize

BYSTANDER_ADDRESS = "198.51.100.10"
FLOODER_ADDRESSES = {"one_sender": "203.0.113.66", "one_address": "203.0.113.67"}  # a fresh one each phase
BYSTANDER_TEXTS = ("مرحبا", "ضاعت هويتي", "كم الرسوم؟", "شكرا")


async def _post(
    session: aiohttp.ClientSession, url: str, token: str, address: str, sender: str, text: str
) -> Optional[list]:
    headers = {"Authorization": f"Bearer {token}", "X-Real-IP": address}
    try:
        async with session.post(url, json={"sender": sender, "message": text}, headers=headers) as r:
            return await r.json(content_type=None) if r.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None


async def _bystander(
    session: aiohttp.ClientSession, url: str, token: str, until: float, interval_s: float, samples: List[float]
) -> int:
    """Ordinary messages until `until`; their reply times (ms) go to `samples`. Returns failures."""
    failures = 0
    sender = ""
    for n in itertools.count():
        if time.monotonic() >= until:
            return failures
        if n % 10 == 0:
            sender = f"bystander-{uuid.uuid4().hex[:10]}"
        start = time.perf_counter()
        replies = await _post(session, url, token, BYSTANDER_ADDRESS, sender, BYSTANDER_TEXTS[n % len(BYSTANDER_TEXTS)])
        if replies:
            samples.append((time.perf_counter() - start) * 1000)
        else:
            failures += 1
        await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - start)))
    return failures


async def _flooder(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    until: float,
    address: str,
    sender: Optional[str],
    rate: float,
    max_outstanding: int,
    slow_down: str,
    counts: Dict[str, int],
) -> None:
    """`rate` messages a second until `until`, each sent without waiting for the last one's answer (at most
    `max_outstanding` unanswered; past that a message is not sent): all from `sender`, or each from a new one."""

    async def one(who: str) -> None:
        replies = await _post(session, url, token, address, who, "ابي اجدد هويتي")
        if replies is None:
            counts["failed"] += 1
        elif not replies:
            counts["no_reply"] += 1
        elif replies[0].get("text") == slow_down:
            counts["told_to_slow_down"] += 1
        else:
            counts["answered"] += 1

    pending: set = set()
    start = time.monotonic()
    for n in itertools.count():
        at = start + n / rate
        if at >= until:
            break
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        pending = {t for t in pending if not t.done()}
        if len(pending) >= max_outstanding:
            counts["not_sent"] += 1
            continue
        pending.add(asyncio.create_task(one(sender or f"flood-{uuid.uuid4().hex[:10]}")))
    if pending:  # the answers still owed, for the counts (a backlog without limits can take a while)
        await asyncio.wait(pending, timeout=60)


async def measure(
    base_url: str,
    token: str,
    seconds: float = 20,
    quiet_seconds: float = 10,
    rate: float = 50,
    max_outstanding: int = 100,
    interval_s: float = 0.25,
    phases: tuple = ("one_sender", "one_address"),
) -> dict:
    """The quiet phase and `phases` against Rasa servers started with MUSAED_REST_TOKEN=`token`."""
    from musaed import catalogue

    check_loopback(base_url)
    url = f"{base_url}/webhooks/rest/webhook"
    slow_down = catalogue.load().labels["slow_down"]
    timeout = aiohttp.ClientTimeout(total=120)
    results: Dict[str, dict] = {}
    # Two clients: the flood's connections must not hold up the bystander's on this side.
    async with (
        aiohttp.ClientSession(timeout=timeout) as bystander,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max_outstanding), timeout=timeout) as flooder,
    ):
        # Warm up: the first messages build TensorFlow's graphs.
        for text in BYSTANDER_TEXTS:
            await _post(bystander, url, token, BYSTANDER_ADDRESS, "warm-up", text)
        samples: List[float] = []
        failures = await _bystander(bystander, url, token, time.monotonic() + quiet_seconds, interval_s, samples)
        results["quiet"] = {"bystander": summarize(samples), "bystander_failures": failures}
        for phase in phases:
            sender = f"flood-{uuid.uuid4().hex[:10]}" if phase == "one_sender" else None
            samples = []
            counts = {"answered": 0, "told_to_slow_down": 0, "no_reply": 0, "failed": 0, "not_sent": 0}
            until = time.monotonic() + seconds
            outcome = await asyncio.gather(
                _bystander(bystander, url, token, until, interval_s, samples),
                _flooder(
                    flooder,
                    url,
                    token,
                    until,
                    FLOODER_ADDRESSES[phase],
                    sender,
                    rate,
                    max_outstanding,
                    slow_down,
                    counts,
                ),
            )
            results[phase] = {
                "bystander": summarize(samples),
                "bystander_failures": outcome[0],
                "flood": counts,
            }
    results["settings"] = {
        "seconds": seconds,
        "flood_per_s": rate,
        "max_outstanding": max_outstanding,
        "bystander_interval_s": interval_s,
    }
    return results
