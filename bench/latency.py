"""`make bench`: server start-up time and the REST round trip for one user.

Starts the real servers on free loopback ports, sends a bounded number of
realistic messages one after another, and writes bench/results.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from servers import Servers, free_port  # noqa: E402

MESSAGES = [
    "السلام عليكم", "ضاعت هويتي وش اسوي", "كم الرسوم؟", "كم ياخذ التوصيل؟",
    "ابي اجدد اقامة زوجتي", "وش الشروط؟", "كيف افعل هويتي الجديدة", "شكرا",
]


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def one_user(url: str, rounds: int) -> list:
    session = requests.Session()
    timings = []
    for i in range(rounds):
        sender = f"bench-{uuid.uuid4().hex[:8]}"
        for text in MESSAGES:
            start = time.perf_counter()
            r = session.post(url, json={"sender": sender, "message": text}, timeout=30)
            timings.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=25, help="conversations of 8 messages")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()

    servers = Servers(rasa_port=free_port(), action_port=free_port()).start()
    try:
        url = f"{servers.url}/webhooks/rest/webhook"
        one_user(url, 1)  # warm-up: first calls build TensorFlow graphs
        timings = one_user(url, args.rounds)
    finally:
        servers.stop()
    results = {
        "server_startup_s": round(servers.startup_seconds, 1),
        "rest_one_user": {
            "messages": len(timings),
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(percentile(timings, 95), 1),
            "max_ms": round(max(timings), 1),
        },
    }
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
