"""The load generator: concurrent conversations that run real flows over Rasa's REST channel.

Each conversation has its own sender id and walks one whole path:

    guidance   a how-to question ("ضاعت هويتي وش اسوي")
    followup   a follow-up on it ("كم الرسوم؟")
    affirm     «نعم» to the offer → the bot asks for the national id
    national_id                   → a one-time code goes to the outbox
    otp        the code, read from the app database's otp_outbox → summary
    confirm    «نعم» → the request is created (MSD-…)
    tracking   "وين وصل طلبي MSD-…" → its status

A reply that does not move the flow on (an HTTP error, a timeout, or an
answer without what the step expects) counts as an error and ends that
conversation.  Each conversation is a new person, as on a real morning: a
person gets at most 3 codes in 15 minutes and has one open request per
service, so `people()` makes as many people as the run has conversations
and each is used once.

Everything is bounded: a level stops starting messages at its time limit or
after `max_conversations` conversations, whichever comes first.  Only
loopback URLs are accepted.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence
from urllib.parse import urlparse

import aiohttp

from bench.stats import aggregate_level

TRACKING = re.compile(r"MSD-\d{8}")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# (first message, follow-up): how-to questions in dialect and MSA whose
# service the person can then request.
LOST_ID = [
    ("ضاعت هويتي وش اسوي", "كم الرسوم؟"),
    ("فقدت بطاقة الهوية الوطنية كيف ابلغ", "وش الشروط؟"),
    ("سرقوا محفظتي وفيها الهوية", "كم ياخذ التوصيل؟"),
]
RENEW_ID = [
    ("ابي اجدد هويتي الوطنية", "كم الرسوم؟"),
    ("هويتي قربت تنتهي كيف اجددها", "وش الشروط؟"),
]


@dataclass
class Person:
    key: str
    national_id: str
    scripts: Sequence[tuple]


class FlowError(Exception):
    def __init__(self, step: str, kind: str, detail: str = "") -> None:
        super().__init__(f"{step}: {kind} {detail}")
        self.step, self.kind, self.detail = step, kind, detail[:200]


def people(db_path, n: int) -> List[Person]:
    """n people who can request a lost-ID replacement (and some a renewal): one per conversation.

    The demo people whose checks pass come first (Khalid, Sara, Fahd,
    Abdullah); past them, copies of Khalid with new valid ids and mobiles are
    added to the database at db_path (a temporary one: never the demo db).
    """
    from musaed import seed, store

    ids = seed.ids()
    out = [Person("khalid", ids["khalid"], LOST_ID + RENEW_ID)]
    out += [Person(k, ids[k], LOST_ID) for k in ("sara", "fahd", "abdullah")]
    if n > len(out):
        db = open_target(db_path)
        khalid = store.get_person(db, ids["khalid"])
        new = []
        for i in range(n - len(out)):
            nid = seed.with_check_digit(f"1099{i:05d}")
            new.append({**khalid, "national_id": nid, "name": f"مستخدم اختبار {i}", "mobile": f"05590{i:05d}"})
            out.append(Person(f"bench{i}", nid, LOST_ID + RENEW_ID))
        store.insert_rows(db, "people", new, ignore_existing=True)  # there from an earlier call: kept
    return out[: max(n, 1)]


def open_target(db_path):
    """The application database: a SQLite file, or the cluster's postgresql:// URL."""
    from musaed import store

    if str(db_path).startswith("postgres"):
        return store.open_db(url=str(db_path))
    return store.open_db(db_path)


def latest_code(db_path, national_id: str) -> Optional[str]:
    from musaed import store

    row = store.latest_code(open_target(db_path), national_id)
    return row["code"] if row else None


def text_of(replies: list) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


class Conversation:
    def __init__(self, session: aiohttp.ClientSession, url: str, deadline: float, samples: List[dict]) -> None:
        self.session, self.url, self.deadline, self.samples = session, url, deadline, samples
        self.sender = f"bench-{uuid.uuid4().hex[:12]}"

    async def say(self, step: str, text: str, expect: Callable[[list], bool]) -> Optional[list]:
        """Send one message; None when the level's time is up (nothing sent)."""
        if time.monotonic() >= self.deadline:
            return None
        start = time.perf_counter()
        try:
            async with self.session.post(self.url, json={"sender": self.sender, "message": text}) as r:
                body = await r.text()
                if r.status != 200:
                    raise FlowError(step, f"http {r.status}", body)
                replies = await r.json(content_type=None)
        except asyncio.TimeoutError:
            raise FlowError(step, "timeout") from None
        except aiohttp.ClientError as e:
            raise FlowError(step, "connection", repr(e)) from None
        self.samples.append({"step": step, "ms": (time.perf_counter() - start) * 1000})
        if not expect(replies):
            raise FlowError(step, "unexpected reply", text_of(replies))
        return replies


async def run_flow(conv: Conversation, person: Person, script: tuple, db_path) -> bool:
    """One whole conversation; True when it reached the end before the deadline."""
    first, followup = script
    has_offer = lambda rs: bool(rs) and any(b.get("payload") == "/affirm" for b in rs[-1].get("buttons") or [])  # noqa: E731
    if await conv.say("guidance", first, has_offer) is None:
        return False
    if await conv.say("followup", followup, lambda rs: bool(text_of(rs))) is None:
        return False
    if await conv.say("affirm", "نعم", lambda rs: "رقم هويتك" in text_of(rs)) is None:
        return False
    if await conv.say("national_id", person.national_id, lambda rs: "رمز تحقق" in text_of(rs)) is None:
        return False
    code = await asyncio.to_thread(latest_code, db_path, person.national_id)
    if code is None:
        raise FlowError("otp", "no code in otp_outbox")
    if await conv.say("otp", code, lambda rs: "ملخص الطلب" in text_of(rs)) is None:
        return False
    created = await conv.say("confirm", "نعم", lambda rs: bool(TRACKING.search(text_of(rs))))
    if created is None:
        return False
    number = TRACKING.search(text_of(created)).group()
    return await conv.say("tracking", f"وين وصل طلبي {number}", lambda rs: number in text_of(rs)) is not None


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"the load generator only talks to loopback addresses, not {host!r}")


async def run_level(
    base_url: str,
    db_path,
    persons: Iterable[Person],
    concurrency: int,
    duration_s: float,
    max_conversations: int,
    timeout_s: float = 60,
    cpu_of: Optional[Dict[str, Callable[[], float]]] = None,
) -> dict:
    """`concurrency` conversations at once, each worker starting a new one when its last ends.

    cpu_of: {name: () -> CPU seconds of a server}; the level then reports
    each server's CPU milliseconds per answered message.
    """
    check_loopback(base_url)
    url = f"{base_url}/webhooks/rest/webhook"
    samples: List[dict] = []
    errors: List[dict] = []
    started = done = 0
    fresh = iter(persons)  # shared by the workers: each conversation takes the next person
    cpu_before = {k: f() for k, f in (cpu_of or {}).items()}
    begin = time.monotonic()
    deadline = begin + duration_s

    async def worker(w: int, session: aiohttp.ClientSession) -> None:
        nonlocal started, done
        n = 0
        while time.monotonic() < deadline and started < max_conversations:
            person = next(fresh, None)
            if person is None:
                errors.append({"step": "start", "kind": "no fresh person left", "detail": ""})
                return
            started += 1
            script = person.scripts[(w + n) % len(person.scripts)]
            n += 1
            conv = Conversation(session, url, deadline, samples)
            try:
                if await run_flow(conv, person, script, db_path):
                    done += 1
            except FlowError as e:
                errors.append({"step": e.step, "kind": e.kind, "detail": e.detail})

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(w, session) for w in range(concurrency)))
    elapsed = time.monotonic() - begin
    result = aggregate_level(concurrency, samples, elapsed, done, errors)
    if cpu_of:
        result["cpu_ms_per_message"] = {
            k: round((f() - cpu_before[k]) * 1000 / max(len(samples), 1), 1) for k, f in cpu_of.items()
        }
    return result


async def run_levels(
    base_url: str,
    db_path,
    levels: Sequence[int],
    duration_s: float,
    max_conversations: int,
    warmup_conversations: int = 2,
    cpu_of=None,
    log=print,
) -> List[dict]:
    """Warm up (TensorFlow builds its graphs on the first calls), then each level in turn."""
    persons = iter(people(db_path, warmup_conversations + len(levels) * max_conversations))
    if warmup_conversations:
        await run_level(base_url, db_path, persons, 1, 120, warmup_conversations)
    results = []
    for c in levels:
        r = await run_level(base_url, db_path, persons, c, duration_s, max_conversations, cpu_of=cpu_of)
        lat = r["latency"]
        log(
            f"  {c:>3} conversations: {r['messages']} messages in {r['elapsed_s']} s, "
            f"{r['messages_per_s']} msg/s, p50 {lat['p50_ms']} / p95 {lat['p95_ms']} / "
            f"p99 {lat['p99_ms']} ms, {r['errors']} errors"
        )
        results.append(r)
    return results
