"""The rig the load runs against: both real servers on free loopback ports and a temporary seeded database."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from bench import resources
from scripts.servers import MODEL, Servers, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BenchServers(Servers):
    """scripts/servers.Servers, with the tracker store selectable for experiments.

    tracker_store "sql" (what the project runs: SQLite) or "memory" (Rasa's
    InMemoryTrackerStore: the generated endpoints file without its
    tracker_store section).
    """

    tracker_store: str = "sql"

    def spawn(self, cmd, env, log):
        if self.tracker_store == "memory" and "--endpoints" in cmd:
            endpoints = Path(cmd[cmd.index("--endpoints") + 1])
            text = endpoints.read_text()
            endpoints.write_text(re.sub(r"tracker_store:\n(  .*\n)*", "", text))
        return super().spawn(cmd, env, log)

    def pid(self, which: str) -> int:
        """pid of "rasa" (the Rasa server) or "actions" (the action server).

        The Rasa server is the process given --model; the action server is
        the other one (`rasa run actions` or `python -m rasa_sdk`).
        """
        for p in self.procs:
            is_rasa = "--model" in p.args
            if (which == "rasa") == is_rasa:
                return p.pid
        raise LookupError(which)

    def cpu_probes(self) -> Dict[str, callable]:
        return {name: (lambda pid=self.pid(name): resources.tree_cpu_seconds(pid)) for name in ("rasa", "actions")}  # noqa: B008 - bind each pid now

    def memory(self) -> Dict[str, dict]:
        return {name: resources.memory(self.pid(name)) for name in ("rasa", "actions")}


def start(
    model: Path = MODEL, env: Optional[dict] = None, tracker_store: str = "sql", work_dir: Optional[Path] = None
) -> BenchServers:
    """Seed a temporary database and start both servers against it (caller stops them)."""
    from musaed import seed, store

    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="musaed-bench-"))
    db_file = work_dir / "musaed.db"
    seed.seed(store.open_db(db_file))
    servers = BenchServers(
        rasa_port=free_port(),
        action_port=free_port(),
        model=Path(model),
        log_dir=work_dir / "logs",
        env={"MUSAED_DB": str(db_file), **(env or {})},
        tracker_store=tracker_store,
    )
    servers.db_file = db_file
    return servers.start()
