"""A bystander's reply time while one client floods (issue 25, item 3).

Through a public channel with the limits on: REST with a token
(channels/limits.py), from two client addresses as the cluster's nginx
passes them (X-Real-IP from loopback). The bystander sends an ordinary
message every `interval_s` (a new sender every 10 messages, so it stays
under its own limit) and its reply times are what is measured, in three
phases:

    quiet        the bystander alone
    one_sender   one flooder: one sender, `connections` requests at a time, as fast as it is answered
    one_address  one flooder: a new sender for every message, from one address (what an open REST
                 or widget endpoint used to serve in full: 600 senders, 600 answers)

Each flood phase also counts the flooder's messages that were answered by
the bot, told to slow down, or refused in silence.
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
    slow_down: str,
    counts: Dict[str, int],
) -> None:
    """Messages as fast as they are answered until `until`: all from `sender`, or each from a new one (None)."""
    while time.monotonic() < until:
        who = sender or f"flood-{uuid.uuid4().hex[:10]}"
        replies = await _post(session, url, token, address, who, "ابي اجدد هويتي")
        if replies is None:
            counts["failed"] += 1
        elif not replies:
            counts["refused_quietly"] += 1
        elif replies[0].get("text") == slow_down:
            counts["told_to_slow_down"] += 1
        else:
            counts["answered"] += 1


async def measure(
    base_url: str,
    token: str,
    seconds: float = 20,
    quiet_seconds: float = 10,
    connections: int = 8,
    interval_s: float = 0.25,
) -> dict:
    """The three phases against Rasa servers started with MUSAED_REST_TOKEN=`token`."""
    from musaed import catalogue

    check_loopback(base_url)
    url = f"{base_url}/webhooks/rest/webhook"
    slow_down = catalogue.load().labels["slow_down"]
    timeout = aiohttp.ClientTimeout(total=120)
    results: Dict[str, dict] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections + 2), timeout=timeout) as session:
        # Warm up: the first messages build TensorFlow's graphs.
        for text in BYSTANDER_TEXTS:
            await _post(session, url, token, BYSTANDER_ADDRESS, "warm-up", text)
        samples: List[float] = []
        failures = await _bystander(session, url, token, time.monotonic() + quiet_seconds, interval_s, samples)
        results["quiet"] = {"bystander": summarize(samples), "bystander_failures": failures}
        for phase, sender in (("one_sender", f"flood-{uuid.uuid4().hex[:10]}"), ("one_address", None)):
            samples = []
            counts = {"answered": 0, "told_to_slow_down": 0, "refused_quietly": 0, "failed": 0}
            until = time.monotonic() + seconds
            flooders = [
                _flooder(session, url, token, until, FLOODER_ADDRESSES[phase], sender, slow_down, counts)
                for _ in range(connections)
            ]
            outcome = await asyncio.gather(_bystander(session, url, token, until, interval_s, samples), *flooders)
            results[phase] = {
                "bystander": summarize(samples),
                "bystander_failures": outcome[0],
                "flood": {**counts, "per_s": round(sum(counts.values()) / seconds, 1)},
            }
    results["settings"] = {"seconds": seconds, "connections": connections, "bystander_interval_s": interval_s}
    return results
