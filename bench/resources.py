"""Memory and CPU of running processes, read from /proc (no psutil needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def status_kb(pid: int, field: str) -> int:
    """A kB field of /proc/<pid>/status (VmHWM = peak resident set, VmRSS = now); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def children(pid: int) -> List[int]:
    """Direct children of pid (from every thread's children list)."""
    kids: List[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                kids += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return kids


def tree(pid: int) -> List[int]:
    """pid and all its descendants (Sanic workers, if there are several)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of pid, in seconds (0 if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))


def memory(pid: int) -> Dict[str, float]:
    """Peak and current resident memory of a process tree in MB.

    peak_rss_mb is the largest VmHWM of any process in the tree (for one
    process, its peak); tree_rss_mb sums the current VmRSS of all of them.
    """
    pids = tree(pid)
    return {
        "peak_rss_mb": round(max(status_kb(p, "VmHWM") for p in pids) / 1024, 1),
        "rss_mb": round(status_kb(pid, "VmRSS") / 1024, 1),
        "tree_rss_mb": round(sum(status_kb(p, "VmRSS") for p in pids) / 1024, 1),
        "processes": len(pids),
    }
