"""Intent quality on the held-out splits and in-process parse latency of an NLU model.

`python -m bench.nlu parse MODEL [--limit N]` prints the parse latency as
JSON; bench/run.py runs it in a child process so that each model's
TensorFlow stays out of the load generator's process.

`python -m bench.nlu ood MODEL [--max-routed 0.10 --max-confident 0.03]`
parses the out-of-domain split (tests/ood/: banking, telecom, shopping, …,
written blind) and says how much of it the bot would route into a service
or a follow-up, and how much of that with confidence ≥ 0.7; with the bars
given it fails when the data does not meet them (`make test` does so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Every file in tests/nlu/ is a held-out split; `rasa test nlu` reads them together.
TEST_SPLIT = ROOT / "tests" / "nlu"
TRAINING_DATA = ROOT / "data" / "nlu"
DEFAULT_CONFIG = ROOT / "bench" / "default_config.yml"
OUT_OF_DOMAIN = ROOT / "tests" / "ood" / "out_of_domain.yml"
# Written blind this week (issue 26): other domains' messages that share our words.
SHARED_WORDS = ROOT / "tests" / "ood" / "shared_words.yml"
# At or above this confidence a wrong route is said with conviction (issue 17).
CONFIDENT = 0.7


def _env() -> dict:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(cmd: List[str], log: Path, env: Optional[dict] = None) -> float:
    """Run a rasa command from the project root; seconds taken. Raises with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log, "wb") as f:
        rc = subprocess.call(cmd, cwd=ROOT, env={**_env(), **(env or {})}, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {rc}:\n{log.read_text()[-3000:]}")
    return seconds


def train(out_dir: Path, config: Path = ROOT / "config.yml", nlu_only: bool = False, name: str = "model") -> tuple:
    """`rasa train [nlu] --force` into out_dir; (model path, seconds).

    With an empty training cache of its own (RASA_CACHE_DIRECTORY): `--force`
    alone still restores unchanged components from .rasa/cache, which would
    time a cache hit, not a training.
    """
    cmd = (
        [str(BIN / "rasa"), "train"]
        + (["nlu"] if nlu_only else ["--force"])
        + ["--config", str(config), "--out", str(out_dir), "--fixed-model-name", name]
    )
    cache = out_dir / f"{name}-cache"
    seconds = _run(cmd, out_dir / f"{name}-train.log", env={"RASA_CACHE_DIRECTORY": str(cache)})
    return out_dir / f"{name}.tar.gz", seconds


def evaluate(model: Path, out_dir: Path) -> dict:
    """`rasa test nlu` on the held-out splits; accuracy and F1 from intent_report.json,
    plus accuracy per split file and on the examples not also in the training data."""
    _run(
        [str(BIN / "rasa"), "test", "nlu", "--model", str(model), "--nlu", str(TEST_SPLIT), "--out", str(out_dir)],
        out_dir / "test.log",
    )
    quality = read_intent_report(out_dir / "intent_report.json")
    errors = json.loads((out_dir / "intent_errors.json").read_text(encoding="utf-8"))
    quality.update(split_accuracy({(e["text"], e["intent"]) for e in errors}))
    return quality


def _examples(path: Path) -> set:
    from rasa.shared.nlu.training_data.loading import load_data

    return {(m.get("text"), m.get("intent")) for m in load_data(str(path)).intent_examples}


def split_accuracy(wrong: set) -> dict:
    """Accuracy per split file, and on the examples that are not, word for word,
    in the training data (short stock phrases like «شكرا» often are)."""
    seen = {text for text, _ in _examples(TRAINING_DATA)}
    splits = {f.stem: _examples(f) for f in sorted(TEST_SPLIT.glob("*.yml"))}
    novel = {ex for examples in splits.values() for ex in examples if ex[0] not in seen}

    def acc(examples: set) -> dict:
        return {
            "examples": len(examples),
            "accuracy": round(1 - len(examples & wrong) / len(examples), 4) if examples else None,
        }

    return {"splits": {name: acc(ex) for name, ex in splits.items()}, "novel": acc(novel)}


def seeded_config(config: Path, seed: int, out_dir: Path) -> Path:
    """A copy of config with `random_seed` set on DIET and ResponseSelector.

    One training of a pipeline with DIET (Rasa's default) is one draw: its
    seeds can differ by more than two pipelines do (bench/NOTES.md, rounds 2
    and 3).  The benchmark therefore compares means over a few seeds; a
    pipeline with nothing seeded, like ours, gives the same figure each time.
    """
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for component in data.get("pipeline") or []:
        if component.get("name") in {"DIETClassifier", "ResponseSelector"}:
            component["random_seed"] = seed
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{config.stem}-seed{seed}.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def mean_quality(runs: List[dict]) -> dict:
    """The mean of several trainings' `evaluate` results; each one's accuracy under "runs"."""

    def mean(values) -> float:
        return round(statistics.fmean(values), 4)

    first = runs[0]
    out = {k: mean(r[k] for r in runs) for k in ("accuracy", "macro_f1", "weighted_f1")}
    out.update(examples=first["examples"], intents=first["intents"], runs=[r["accuracy"] for r in runs])
    out["splits"] = {
        name: {"examples": split["examples"], "accuracy": mean(r["splits"][name]["accuracy"] for r in runs)}
        for name, split in first["splits"].items()
    }
    out["novel"] = {"examples": first["novel"]["examples"], "accuracy": mean(r["novel"]["accuracy"] for r in runs)}
    return out


def read_intent_report(path: Path) -> dict:
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    macro = report["macro avg"]
    return {
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(macro["f1-score"], 4),
        "weighted_f1": round(report["weighted avg"]["f1-score"], 4),
        "examples": int(macro["support"]),
        "intents": sum(
            1 for k, v in report.items() if isinstance(v, dict) and "f1-score" in v and not k.endswith(" avg")
        ),
    }


def parse_latency(model: Path, limit: Optional[int] = None) -> dict:
    """Parse latency in a child process (loads the model once, parses the split)."""
    cmd = [sys.executable, "-m", "bench.nlu", "parse", str(model)] + (["--limit", str(limit)] if limit else [])
    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"parse latency of {model} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_texts(limit: Optional[int] = None) -> List[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    texts = [m.get("text") for m in load_data(str(TEST_SPLIT)).intent_examples]
    return texts[:limit] if limit else texts


async def _time_parses(model: Path, texts: List[str]) -> List[float]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    for t in texts[:5]:  # warm-up: TensorFlow traces its graphs on the first calls
        await agent.parse_message(t)
    timings = []
    for t in texts:
        start = time.perf_counter()
        await agent.parse_message(t)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def out_of_domain_texts(path: Path = OUT_OF_DOMAIN) -> List[tuple]:
    """(domain, text) for each example of the split; the domain is the `# domain: …`
    comment above its block (comments are the only place YAML keeps it)."""
    from rasa.shared.nlu.training_data.loading import load_data

    domain, by_text = "unknown", {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("# domain:"):
            domain = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("- ") and not stripped.startswith("- intent:"):
            by_text.setdefault(stripped[2:].strip(), domain)
    return [(by_text.get(m.get("text"), "unknown"), m.get("text")) for m in load_data(str(path)).intent_examples]


def routed_intents() -> set:
    """Intents that take a person into a service's answer or flow: the services and the follow-ups."""
    from musaed import catalogue

    return set(catalogue.load().services) | {f"ask_{aspect}" for aspect in catalogue.FOLLOWUPS}


async def _route_out_of_domain(model: Path, examples: List[tuple]) -> dict:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    routed_to, domains, wrong = routed_intents(), {}, []
    for domain, text in examples:
        intent = (await agent.parse_message(text))["intent"]
        routed = intent["name"] in routed_to
        confident = routed and intent["confidence"] >= CONFIDENT
        d = domains.setdefault(domain, {"messages": 0, "routed": 0, "confident": 0})
        d["messages"] += 1
        d["routed"] += routed
        d["confident"] += confident
        if routed:
            wrong.append({"text": text, "intent": intent["name"], "confidence": round(intent["confidence"], 3)})
    total = {k: sum(d[k] for d in domains.values()) for k in ("messages", "routed", "confident")}
    return {
        **total,
        "routed_share": round(total["routed"] / total["messages"], 4),
        "confident_share": round(total["confident"] / total["messages"], 4),
        "domains": domains,
        "routed_examples": sorted(wrong, key=lambda w: -w["confidence"]),
    }


def out_of_domain(model: Path, split: Path = OUT_OF_DOMAIN) -> dict:
    """The out-of-domain figures in a child process (as parse_latency)."""
    cmd = [sys.executable, "-m", "bench.nlu", "ood", str(model), "--split", str(split)]
    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"out-of-domain check of {model} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parse", help="time parse_message over the held-out splits")
    p.add_argument("model")
    p.add_argument("--limit", type=int)
    o = sub.add_parser("ood", help="how much of the out-of-domain split is routed into a service")
    o.add_argument("model")
    o.add_argument("--split", type=Path, default=OUT_OF_DOMAIN, help="the out-of-domain split (Rasa NLU YAML)")
    o.add_argument("--max-routed", type=float, help="fail above this share routed")
    o.add_argument("--max-confident", type=float, help=f"fail above this share routed with confidence >= {CONFIDENT}")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    if args.cmd == "ood":
        return _check_out_of_domain(args)
    from bench.stats import summarize

    timings = asyncio.run(_time_parses(Path(args.model), test_texts(args.limit)))
    print(json.dumps(summarize(timings)))
    return 0


def _check_out_of_domain(args) -> int:
    result = asyncio.run(_route_out_of_domain(Path(args.model), out_of_domain_texts(args.split)))
    failed = []
    if args.max_routed is not None and result["routed_share"] > args.max_routed:
        failed.append(f"routed {result['routed_share']:.1%} > {args.max_routed:.0%}")
    if args.max_confident is not None and result["confident_share"] > args.max_confident:
        failed.append(f"confidently routed {result['confident_share']:.1%} > {args.max_confident:.0%}")
    if args.max_routed is not None or args.max_confident is not None:
        print(
            f"out of domain: {result['messages']} messages, {result['routed_share']:.1%} routed into a service "
            f"or follow-up, {result['confident_share']:.1%} with confidence >= {CONFIDENT}",
            file=sys.stderr,
        )
        for w in result["routed_examples"][:15]:
            print(f"  {w['confidence']:.2f} {w['intent']}: {w['text']}", file=sys.stderr)
        for reason in failed:
            print(f"FAIL: {reason}", file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
