"""`make bench`: measure Musaed on this machine.

    python -m bench.run [--quick] [--out DIR]

1. training time: `rasa train --force` of the full model (config.yml) into a temporary directory;
2. NLU: intent accuracy and macro F1 on tests/nlu/ (the held-out splits) for that model, and
   for our pipeline and Rasa's default pipeline (bench/default_config.yml) each trained on
   the same data with --seeds DIET seeds (mean reported); each one's in-process parse latency;
3. load: both real servers on free loopback ports with a temporary seeded
   database; start-up time; 1, 10, 20 and 50 concurrent conversations running
   whole flows over REST (bench/load.py); peak memory of both servers.

Writes DIR/results.json, DIR/results.md (the table, also printed; a full run
into bench/ also rewrites the latest-run section of bench/README.md)
and DIR/latency.png.  --quick: tiny counts, no default-pipeline training (a
check that the harness works, not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import answers, baseline, flood, load, nlu, report, resources, rig

ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def machine() -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    import rasa

    return {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "loadavg_before": round(os.getloadavg()[0], 2),
        "commit": commit,
        "rasa": rasa.__version__,
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick", action="store_true", help="tiny counts, skip training the default pipeline (checks the harness)"
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.* and latency.png go")
    p.add_argument("--levels", default=None, help="concurrency levels, comma-separated (default 1,10,20,50)")
    p.add_argument("--duration", type=float, default=None, help="time limit per level, s (default 30)")
    p.add_argument("--max-conversations", type=int, default=None, help="conversations per level at most (default 600)")
    p.add_argument(
        "--skip-train",
        action="store_true",
        help="no training: evaluate --model instead, no default pipeline, no training time",
    )
    p.add_argument("--skip-nlu", action="store_true", help="no NLU evaluation")
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="trainings per pipeline for the accuracy comparison, DIET seeds 1..N (default 3)",
    )
    p.add_argument("--skip-load", action="store_true", help="no servers, no load")
    p.add_argument("--skip-cluster", action="store_true", help="no load on the cluster (scripts/cluster.py)")
    p.add_argument("--skip-baseline", action="store_true", help="no plain `rasa init` bot beside Musaed")
    p.add_argument("--skip-flood", action="store_true", help="no bystander-under-flood measurement")
    p.add_argument("--model", type=Path, default=rig.MODEL, help="model the servers run")
    p.add_argument("--tracker-store", choices=["sql", "memory"], default="sql")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of both servers (TF threads, Sanic workers ...); repeatable",
    )
    args = p.parse_args(argv)
    args.levels = [int(x) for x in (args.levels or ("1,2" if args.quick else "1,10,20,50")).split(",")]
    args.duration = args.duration or (5.0 if args.quick else 30.0)
    args.max_conversations = args.max_conversations or (3 if args.quick else 600)
    return args


def measure_nlu(args, work: Path, trained_model) -> dict:
    """Both pipelines trained the same way (`rasa train nlu`, --seeds times each), tested on
    the held-out splits; accuracy is the mean over the seeds.

    The served model (`rasa train`, NLU and dialogue together) is tested too:
    its DIET does not come out identical to the NLU-only one.
    """
    out = {}
    served = trained_model or args.model
    limit = 30 if args.quick else None
    full_run = not (args.quick or args.skip_train)
    log(f"NLU: rasa test nlu on {nlu.TEST_SPLIT.name}, served model ({served.name})")
    out["served"] = {
        "config": "config.yml",
        "trained_with": "rasa train" if trained_model else str(served),
        "quality": nlu.evaluate(served, work / "nlu-served"),
    }
    log(f"  {out['served']['quality']}")
    log(f"NLU: out-of-domain split {nlu.OUT_OF_DOMAIN.name}, served model")
    ood = nlu.out_of_domain(served)
    out["served"]["out_of_domain"] = {k: v for k, v in ood.items() if k != "routed_examples"}
    log(f"  routed {ood['routed_share']:.1%}, with confidence >= {nlu.CONFIDENT}: {ood['confident_share']:.1%}")
    if full_run:
        out["ours"], ours_model = train_and_evaluate(work, nlu.ROOT / "config.yml", "ours", args.seeds)
    else:
        ours_model = served
        out["ours"] = dict(out["served"])
    out["ours"]["parse"] = nlu.parse_latency(ours_model, limit)
    log(f"  ours: {out['ours']}")
    if not full_run:
        out["default"] = None
        return out
    out["default"], default_model = train_and_evaluate(work, nlu.DEFAULT_CONFIG, "default", args.seeds)
    out["default"]["parse"] = nlu.parse_latency(default_model, limit)
    log(f"  default: {out['default']}")
    return out


def train_and_evaluate(work: Path, config: Path, name: str, seeds: int) -> tuple:
    """`rasa train nlu` with DIET seeds 1..seeds, each tested; (mean result, first model)."""
    runs, models, seconds = [], [], []
    for seed in range(1, seeds + 1):
        log(f"NLU: training {name} ({config.relative_to(nlu.ROOT)}), seed {seed} of {seeds}")
        model, s = nlu.train(work, nlu.seeded_config(config, seed, work), nlu_only=True, name=f"{name}-nlu-seed{seed}")
        runs.append(nlu.evaluate(model, work / f"nlu-{name}-seed{seed}"))
        models.append(model)
        seconds.append(s)
        log(f"  seed {seed}: accuracy {runs[-1]['accuracy']}")
    return (
        {
            "config": str(config.relative_to(nlu.ROOT)),
            "trained_with": "rasa train nlu",
            "seeds": seeds,
            "training_nlu_s": round(sum(seconds) / len(seconds), 1),
            "quality": nlu.mean_quality(runs),
        },
        models[0],
    )


def measure_load(args, work: Path) -> dict:
    env = dict(kv.split("=", 1) for kv in args.server_env)
    log(
        f"load: starting both servers ({args.model.name}, tracker store {args.tracker_store}"
        f"{', env ' + str(env) if env else ''})"
    )
    servers = rig.start(args.model, env=env, tracker_store=args.tracker_store, work_dir=work / "servers")
    try:
        memory_at_start = servers.memory()
        log(
            f"  up in {servers.startup_seconds:.1f} s; levels {args.levels}, "
            f"≤ {args.duration:.0f} s and ≤ {args.max_conversations} conversations each"
        )
        levels = asyncio.run(
            load.run_levels(
                servers.url,
                servers.db_file,
                args.levels,
                args.duration,
                args.max_conversations,
                cpu_of=servers.cpu_probes(),
                log=log,
            )
        )
        memory = servers.memory()
        log(f"load: one conversation of {baseline.LONG_MESSAGES} messages (guides and follow-ups)")
        long_conversation = baseline.growth(asyncio.run(baseline.long_conversation(servers.url, baseline.MUSAED_LONG)))
        log(f"  {long_conversation}")
    finally:
        servers.stop()
    return {
        "server_startup_s": round(servers.startup_seconds, 1),
        "load": levels,
        "long_conversation": long_conversation,
        "memory": memory,
        "memory_at_start": memory_at_start,
        "server_env": env,
        "tracker_store": args.tracker_store,
    }


# The limits switched off for the A/B: rates no one reaches.
NO_LIMITS = {"MUSAED_SENDER_RATE": "1000000/1s", "MUSAED_ADDRESS_RATE": "1000000/1s"}


def measure_flood(args, work: Path) -> dict:
    """A bystander's reply times while one client floods REST with a token (bench/flood.py),
    with the limits on (channels/limits.py) and, for comparison, off."""
    token = "bench-flood-token"
    out = {}
    for name, extra in (("limits_on", {}), ("limits_off", NO_LIMITS)):
        log(f"flood: a bystander while one client floods REST with a token, {name.replace('_', ' ')}")
        servers = rig.start(args.model, env={"MUSAED_REST_TOKEN": token, **extra}, work_dir=work / f"flood-{name}")
        try:
            seconds = 5.0 if args.quick else 20.0
            out[name] = asyncio.run(flood.measure(servers.url, token, seconds=seconds, quiet_seconds=seconds / 2))
        finally:
            servers.stop()
        for phase in ("quiet", "one_sender", "one_address"):
            r = out[name][phase]
            log(
                f"  {phase}: bystander p50 {r['bystander']['p50_ms']} / p95 {r['bystander']['p95_ms']} ms"
                + (f", flood {r['flood']}" if "flood" in r else "")
            )
    return {"flood": out}


def measure_answers(args, work: Path) -> dict:
    """Questions written blind from the articles, put to the running bot (bench/answers.py):
    the share answered with the right fact, the share of unknowns declined; and the
    shared-words out-of-domain split (tests/ood/shared_words.yml)."""
    log("answers: the blind question splits over REST")
    servers = rig.start(args.model, work_dir=work / "answers")
    by_split = {}
    try:
        # The newest split is the report's figure: the older ones' misses have been read.
        for name in ("questions_5", "questions_4", "questions_3", "questions_2", "questions"):
            result = answers.evaluate(servers.url, answers.load_split(answers.SPLIT.with_name(f"{name}.yml")))
            by_split[name] = {k: v for k, v in result.items() if k != "misses"}
            log(f"  {name}: answered right {result['answered_right']:.1%}, declined {result['declined']:.1%}")
    finally:
        servers.stop()
    shared = nlu.out_of_domain(args.model, nlu.SHARED_WORDS)
    log(f"  shared-words out of domain: routed {shared['routed_share']:.1%}, confident {shared['confident_share']:.1%}")
    return {
        "answers": by_split["questions_5"],
        "answers_by_split": by_split,
        "shared_words_out_of_domain": {k: v for k, v in shared.items() if k != "routed_examples"},
    }


def measure_cluster(args, work: Path) -> dict:
    """The same flows against `make cluster` (two Rasa servers, two action servers, PostgreSQL,
    Redis, nginx) at 20 and 50 conversations, with the CPU each part spent per message."""
    from scripts.cluster import Cluster  # scripts/cluster.py
    from scripts.servers import free_port

    levels = [c for c in args.levels if c >= 20] or args.levels[-1:]
    log(f"cluster: starting it (scripts/cluster.py); levels {levels}")
    cluster = Cluster(work / "cluster", free_port())
    try:
        settings = cluster.start()
        cpu = {
            name: (lambda pid=proc.pid: resources.tree_cpu_seconds(pid))
            for name, proc in cluster.procs.items()
            if name.startswith(("rasa", "actions", "nginx"))
        }
        cpu["postgres"] = lambda pid=cluster.backing[0].proc.pid: resources.tree_cpu_seconds(pid)
        cpu["redis"] = lambda pid=cluster.backing[1].proc.pid: resources.tree_cpu_seconds(pid)
        results = asyncio.run(
            load.run_levels(
                settings["MUSAED_FRONT_URL"],
                settings["MUSAED_DATABASE_URL"],
                levels,
                args.duration,
                args.max_conversations,
                cpu_of=cpu,
                log=log,
            )
        )
        log(f"cluster: one conversation of {baseline.LONG_MESSAGES} messages")
        long = baseline.growth(
            asyncio.run(baseline.long_conversation(settings["MUSAED_FRONT_URL"], baseline.MUSAED_LONG))
        )
        log(f"  {long}")
    finally:
        cluster.stop()
    return {"cluster": {"load": results, "long_conversation": long, "replicas": {"rasa": 2, "actions": 2}}}


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="musaed-bench-"))
    results = {
        "machine": machine(),
        "quick": args.quick,
        "settings": {"levels": args.levels, "duration_s": args.duration, "max_conversations": args.max_conversations},
    }
    try:
        trained = None
        if not args.skip_train:
            log("training: rasa train --force (config.yml) into a temporary directory")
            trained, seconds = nlu.train(work, name="musaed")
            results["training_s"] = round(seconds, 1)
            log(f"  {seconds:.0f} s")
        if not args.skip_nlu:
            results["nlu"] = measure_nlu(args, work, trained)
        if not args.skip_load:
            results.update(measure_load(args, work))
        if not args.skip_load and not args.skip_baseline:
            results["baseline"] = baseline.measure(
                args.levels, args.duration, args.max_conversations, work / "baseline", log=log
            )
            results["ratios"] = baseline.ratios(results, results["baseline"])
            log(f"  ratios, Musaed / rasa init: {results['ratios']}")
        if not args.skip_load and not args.skip_flood:
            results.update(measure_flood(args, work))
        if not args.skip_load:
            results.update(measure_answers(args, work))
        if not args.skip_load and not args.skip_cluster:
            results.update(measure_cluster(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_after"] = round(os.getloadavg()[0], 2)
    results["targets"] = {"thresholds": report.TARGETS, "pass": report.verdicts(results)}
    (args.out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    table = report.markdown(results)
    (args.out / "results.md").write_text(table)
    if args.out.resolve() == (ROOT / "bench").resolve() and not args.quick:  # a full run: the figures people read
        report.update_readme(ROOT / "bench" / "README.md", results, table)
    report.plot(results, args.out / "latency.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
