"""A plain `rasa init` bot, trained and served in the same run as Musaed (issue 19).

`make bench` compares Musaed against what Rasa gives out of the box on the
same machine, at the same moment: the bot `rasa init --no-prompt` generates
(its own config, data and domain, in a temporary folder, trained by
`rasa init` itself), served alone with `rasa run`, under the same load
levels. Its conversations are its own small talk (greeting, mood, "are you a
bot?", goodbye); Musaed's are whole requests, so the ratios say what
Musaed's pipeline, forms and actions cost against Rasa's defaults.

Also the long-conversation measure, for both bots: the median reply time of
messages 251–300 of one conversation over that of messages 1–50.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import aiohttp

from bench import load, resources
from bench.stats import aggregate_level

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The init bot's own intents, one message each (its data/nlu.yml knows them).
INIT_FLOW = ["hello there", "I am feeling great", "are you a bot?", "I am very sad", "yes", "no", "bye"]
# A long Musaed conversation: guides and follow-ups, no request (a request ends a flow).
MUSAED_LONG = ["ابي اجدد هويتي الوطنية", "كم الرسوم؟", "وش الشروط؟", "شكرا", "ضاعت هويتي", "كم ياخذ التوصيل؟"]
LONG_MESSAGES = 300


def init_bot(work: Path) -> tuple:
    """`rasa init --no-prompt` into work/init (it trains the model too); (model path, seconds)."""
    target = work / "init"
    target.mkdir(parents=True, exist_ok=True)  # rasa init wants the folder to exist
    start = time.monotonic()
    log = work / "init.log"
    with open(log, "wb") as f:
        rc = subprocess.call(
            [str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", str(target)],
            cwd=work,
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**_env(), "RASA_TELEMETRY_ENABLED": "false"},
        )
    seconds = time.monotonic() - start
    models = sorted((target / "models").glob("*.tar.gz"))
    if rc != 0 or not models:
        raise RuntimeError(f"rasa init failed ({rc}):\n{log.read_text()[-3000:]}")
    return models[-1], seconds


def _env() -> dict:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}


class InitServer:
    """The init bot's Rasa server on a free loopback port (no action server: it needs none)."""

    def __init__(self, model: Path, work: Path) -> None:
        from scripts.servers import free_port, wait_until_up  # scripts/servers.py

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / "init-server.log"
        begin = time.monotonic()
        self.proc = subprocess.Popen(
            [
                str(BIN / "rasa"),
                "run",
                "--model",
                str(model),
                "--port",
                str(self.port),
                "--interface",
                "127.0.0.1",
                "--credentials",
                str(work / "init" / "credentials.yml"),
            ],
            cwd=work / "init",
            env=_env(),
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_up(f"{self.url}/", self.proc, 300)
        except Exception:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - begin

    def cpu(self) -> float:
        return resources.tree_cpu_seconds(self.proc.pid)

    def memory(self) -> dict:
        return resources.memory(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def _small_talk(base_url: str, concurrency: int, duration_s: float, max_conversations: int, cpu_of) -> dict:
    """`concurrency` init-bot conversations at once, each the INIT_FLOW, as load.run_level does for Musaed."""
    load.check_loopback(base_url)
    url = f"{base_url}/webhooks/rest/webhook"
    samples: List[dict] = []
    errors: List[dict] = []
    started = done = 0
    cpu_before = {k: f() for k, f in (cpu_of or {}).items()}
    begin = time.monotonic()
    deadline = begin + duration_s

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal started, done
        while time.monotonic() < deadline and started < max_conversations:
            started += 1
            conv = load.Conversation(session, url, deadline, samples)
            try:
                for i, text in enumerate(INIT_FLOW):
                    if await conv.say(f"init{i}", text, lambda rs: bool(rs)) is None:
                        break
                else:
                    done += 1
            except load.FlowError as e:
                errors.append({"step": e.step, "kind": e.kind, "detail": e.detail})

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result = aggregate_level(concurrency, samples, time.monotonic() - begin, done, errors)
    if cpu_of:
        result["cpu_ms_per_message"] = {
            k: round((f() - cpu_before[k]) * 1000 / max(len(samples), 1), 1) for k, f in cpu_of.items()
        }
    return result


async def small_talk_levels(base_url, levels: Sequence[int], duration_s, max_conversations, cpu_of=None, log=print):
    await _small_talk(base_url, 1, 120, 2, None)  # warm-up, as for Musaed
    out = []
    for c in levels:
        r = await _small_talk(base_url, c, duration_s, max_conversations, cpu_of)
        log(f"  init bot, {c:>3} conversations: {r['messages_per_s']} msg/s, p95 {r['latency']['p95_ms']} ms")
        out.append(r)
    return out


async def long_conversation(base_url: str, texts: Sequence[str], messages: int = LONG_MESSAGES) -> List[float]:
    """Reply times (ms) of `messages` messages in one conversation, cycling through `texts`."""
    load.check_loopback(base_url)
    url, sender, times = f"{base_url}/webhooks/rest/webhook", f"long-{uuid.uuid4().hex[:10]}", []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for i in range(messages):
            start = time.perf_counter()
            async with session.post(url, json={"sender": sender, "message": texts[i % len(texts)]}) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"long conversation: http {r.status} at message {i + 1}")
            times.append((time.perf_counter() - start) * 1000)
    return times


def growth(times: Sequence[float]) -> Optional[dict]:
    """Median of messages 1–50 and 251–300 (1-based), and their ratio: 1.0 is flat."""
    if len(times) < 300:
        return None
    first, late = statistics.median(times[:50]), statistics.median(times[250:300])
    return {"first_50_p50_ms": round(first, 1), "251_300_p50_ms": round(late, 1), "ratio": round(late / first, 2)}


def ratios(musaed: dict, init: dict) -> Dict[str, Optional[float]]:
    """Musaed's figures over the init bot's: latency, throughput, Rasa CPU, memory, long-conversation growth."""

    def level(results: dict, c: int) -> Optional[dict]:
        return next((r for r in results.get("load", []) if r["concurrency"] == c), None)

    def div(a, b) -> Optional[float]:
        return round(a / b, 2) if a is not None and b else None

    out: Dict[str, Optional[float]] = {}
    for c in sorted({r["concurrency"] for r in init.get("load", [])}):
        m, i = level(musaed, c), level(init, c)
        if m and i:
            out[f"p95_at_{c}"] = div(m["latency"]["p95_ms"], i["latency"]["p95_ms"])
            out[f"throughput_at_{c}"] = div(m["messages_per_s"], i["messages_per_s"])
            # CPU per message: the figure that least depends on the machine and its noise.
            cpu_m, cpu_i = (m.get("cpu_ms_per_message") or {}), (i.get("cpu_ms_per_message") or {})
            out[f"rasa_cpu_at_{c}"] = div(cpu_m.get("rasa"), cpu_i.get("rasa"))

    def rss(results: dict):
        return ((results.get("memory") or {}).get("rasa") or {}).get("peak_rss_mb")

    out["rasa_rss"] = div(rss(musaed), rss(init))
    m_long, i_long = (musaed.get("long_conversation") or {}), (init.get("long_conversation") or {})
    out["long_conversation_growth"] = div(m_long.get("ratio"), i_long.get("ratio"))
    return out


def measure(levels, duration_s, max_conversations, work: Path, log: Callable = print) -> dict:
    """Make, serve and load the init bot; its results in the shape of Musaed's."""
    log("baseline: rasa init --no-prompt (generates and trains a plain bot) in a temporary folder")
    model, seconds = init_bot(work)
    log(f"  trained in {seconds:.0f} s")
    server = InitServer(model, work)
    try:
        results = asyncio.run(
            small_talk_levels(server.url, levels, duration_s, max_conversations, {"rasa": server.cpu}, log)
        )
        long_times = asyncio.run(long_conversation(server.url, INIT_FLOW))
        memory = server.memory()
    finally:
        server.stop()
    return {
        "training_s": round(seconds, 1),
        "server_startup_s": round(server.startup_seconds, 1),
        "load": results,
        "memory": {"rasa": memory},
        "long_conversation": growth(long_times),
    }
