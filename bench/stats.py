"""Percentiles and per-level aggregation of measured latencies (pure Python, unit-tested)."""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence


def percentile(values: Iterable[float], p: float) -> Optional[float]:
    """The p-th percentile (0..100) with linear interpolation between closest ranks.

    Same definition as numpy's default ("linear"): p=0 is the minimum, p=100
    the maximum, p=50 the median.  None for no values.
    """
    xs = sorted(values)
    if not xs:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, not {p}")
    k = (len(xs) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(latencies_ms: Sequence[float]) -> Dict[str, Optional[float]]:
    """count, mean, p50, p95, p99 and max of latencies in milliseconds."""
    xs = list(latencies_ms)
    r = lambda v: None if v is None else round(v, 1)  # noqa: E731
    return {
        "count": len(xs),
        "mean_ms": r(sum(xs) / len(xs)) if xs else None,
        "p50_ms": r(percentile(xs, 50)),
        "p95_ms": r(percentile(xs, 95)),
        "p99_ms": r(percentile(xs, 99)),
        "max_ms": r(max(xs)) if xs else None,
    }


def aggregate_level(
    concurrency: int, samples: List[dict], elapsed_s: float, conversations_done: int, errors: List[dict]
) -> dict:
    """One concurrency level's result from its samples.

    `samples` are {"step": name, "ms": latency} for every answered message;
    throughput is answered messages over the level's wall time.
    """
    latencies = [s["ms"] for s in samples]
    by_step: Dict[str, List[float]] = {}
    for s in samples:
        by_step.setdefault(s["step"], []).append(s["ms"])
    return {
        "concurrency": concurrency,
        "messages": len(latencies),
        "conversations": conversations_done,
        "elapsed_s": round(elapsed_s, 2),
        "messages_per_s": round(len(latencies) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "errors": len(errors),
        "error_samples": errors[:5],
        "latency": summarize(latencies),
        "by_step_p50_ms": {k: summarize(v)["p50_ms"] for k, v in by_step.items()},
    }
