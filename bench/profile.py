"""Where the time goes: sample both servers with py-spy under load and break it down per message.

    pip install py-spy   # not in requirements.txt: a profiling tool only
    python -m bench.profile [--concurrency 10] [--seconds 20] [--server-env KEY=VALUE ...]

Starts both servers (temporary seeded database), warms up, then runs the
load while `py-spy record --format raw` samples each server.  Prints, for
each server, its CPU milliseconds per answered message (from /proc) split
by the share of samples in each part of the code.  py-spy samples Python
stacks of busy threads; time inside TensorFlow's C++ kernels is attributed
to the Python call that runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from bench import load, rig

ROOT = Path(__file__).resolve().parent.parent

# (part, frame that marks it); the first match, top to bottom, wins.
RASA_PARTS: List[Tuple[str, str]] = [
    ("jsonschema check of each action-server reply", "_validate_action_result ("),
    ("NLU: parse_message (tokens, features, classifier)", "parse_message (rasa/core/processor.py"),
    ("policies: rules", "_predict_next_with_tracker (rasa/core/processor.py"),
    ("tracker store: read", "retrieve (rasa/core/tracker_store.py"),
    ("tracker store: write", "save (rasa/core/tracker_store.py"),
    ("call to the action server (aiohttp)", "request (rasa/utils/endpoints.py"),
    ("forms, events, responses (processor)", "handle_message (rasa/core/processor.py"),
    ("HTTP server, JSON, other", ""),
]
ACTION_PARTS: List[Tuple[str, str]] = [
    ("open_db: connect, pragmas, migration check", "open_db (musaed/store/connection.py"),
    ("SQLite queries and writes", "(sqlite_utils/"),
    ("our actions and checks (musaed, actions)", "(actions/"),
    ("rasa-sdk: request JSON, form logic, dispatch", "webhook (rasa_sdk/endpoint.py"),
    ("event loop, HTTP server, other", ""),
]


def _samples(raw: str) -> Iterator[Tuple[str, int]]:
    """(stack, sample count) for each line of py-spy's raw (collapsed) output."""
    for line in raw.splitlines():
        stack, _, n = line.rstrip().rpartition(" ")
        if n.isdigit():
            yield stack, int(n)


def breakdown(raw: str, parts: List[Tuple[str, str]]) -> Dict[str, float]:
    """Share of samples (0..1) in each part, from py-spy's raw (collapsed) output."""
    counts: Dict[str, int] = collections.Counter()
    total = 0
    for stack, n in _samples(raw):
        total += n
        for name, marker in parts:
            if marker in stack:
                counts[name] += n
                break
    return {name: counts[name] / total if total else 0.0 for name, _ in parts}


def top_frames(raw: str, n: int = 15) -> List[Tuple[str, float]]:
    """Inclusive share of the n most frequent frames (function (file)), line numbers dropped."""
    incl: Dict[str, int] = collections.Counter()
    total = 0
    for stack, k in _samples(raw):
        total += k
        for f in {re.sub(r":\d+\)", ")", f) for f in stack.split(";")}:
            incl[f] += k
    return [(f, c / total) for f, c in incl.most_common(n)] if total else []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--tracker-store", choices=["sql", "memory"], default="sql")
    p.add_argument("--keep", type=Path, help="copy py-spy's raw profiles here")
    args = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install py-spy")
    work = Path(tempfile.mkdtemp(prefix="musaed-profile-"))
    env = dict(kv.split("=", 1) for kv in args.server_env)
    servers = rig.start(env=env, tracker_store=args.tracker_store, work_dir=work)
    try:
        # One person per conversation (codes and open requests are per person).
        persons = iter(load.people(servers.db_file, 3000))
        asyncio.run(load.run_level(servers.url, servers.db_file, persons, 1, 60, 2))  # warm-up
        spies = {
            name: subprocess.Popen(
                [
                    spy,
                    "record",
                    "--format",
                    "raw",
                    "-r",
                    str(args.rate),
                    "-d",
                    str(args.seconds),
                    "-o",
                    str(work / f"{name}.txt"),
                    "--pid",
                    str(servers.pid(name)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in ("rasa", "actions")
        }
        result = asyncio.run(
            load.run_level(
                servers.url,
                servers.db_file,
                persons,
                args.concurrency,
                args.seconds + 2,
                10_000,
                cpu_of=servers.cpu_probes(),
            )
        )
        for proc in spies.values():
            proc.wait(timeout=120)
    finally:
        servers.stop()
    out = {
        "concurrency": args.concurrency,
        "messages": result["messages"],
        "messages_per_s": result["messages_per_s"],
        "latency": result["latency"],
        "cpu_ms_per_message": result["cpu_ms_per_message"],
        "servers": {},
    }
    for name, parts in (("rasa", RASA_PARTS), ("actions", ACTION_PARTS)):
        raw = (work / f"{name}.txt").read_text()
        cpu = result["cpu_ms_per_message"][name]
        shares = breakdown(raw, parts)
        out["servers"][name] = {
            "parts_ms_per_message": {k: round(v * cpu, 1) for k, v in shares.items()},
            "parts_share": {k: round(v, 3) for k, v in shares.items()},
            "top_frames": [(f, round(s, 3)) for f, s in top_frames(raw)],
        }
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(work / f"{name}.txt", args.keep / f"{name}.txt")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
