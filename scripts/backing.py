"""PostgreSQL and Redis on loopback ports, each with its own data directory.

What several replicas share: `make cluster` (scripts/cluster.py) and the
tests start them with this module, then stop them. Debian's packages
provide the programs (`ensure_installed` installs them when run as root).
PostgreSQL refuses to run as root, so as root it runs as the `postgres`
user the package creates, with the data directory handed to it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

PACKAGES = {"postgresql": "initdb", "redis-server": "redis-server", "nginx": "nginx"}


def pg_bin(name: str) -> Optional[str]:
    """A PostgreSQL program: Debian keeps them under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _have(program: str) -> bool:
    if program == "initdb":
        return pg_bin("initdb") is not None
    return shutil.which(program) is not None or Path("/usr/sbin", program).exists()


def ensure_installed(packages=tuple(PACKAGES)) -> None:
    """Install the Debian packages that are missing, when root; else say in one line what to install."""
    missing = [p for p in packages if not _have(PACKAGES[p])]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing Debian's {' '.join(missing)}…", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)
        return
    sys.exit(f"Several replicas need Debian's {', '.join(missing)}: apt-get install {' '.join(missing)}")


def _let_postgres_through(directory: Path) -> None:
    """The postgres user must reach its data directory: add search (x, not read) for
    others to each parent that lacks it (temporary directories are 0700)."""
    for d in [directory, *directory.parents]:
        mode = d.stat().st_mode
        if not mode & 0o001:
            d.chmod(mode | 0o001)


def _as_postgres() -> dict:
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


@dataclass
class Postgres:
    """A PostgreSQL server: data in `data_dir` (made with initdb on first start), on loopback `port`."""

    data_dir: Path
    port: int
    database: str = "musaed"
    proc: Optional[subprocess.Popen] = None
    log: Optional[Path] = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 60) -> "Postgres":
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_dir = self.data_dir.parent / f"{self.data_dir.name}-run"
        run_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "postgres", "postgres")
            shutil.chown(run_dir, "postgres", "postgres")
            _let_postgres_through(self.data_dir.parent)
        if not (self.data_dir / "PG_VERSION").exists():
            # trust on loopback only: the server listens on 127.0.0.1 and a socket in run_dir.
            subprocess.run(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                cwd="/",
                **_as_postgres(),
            )
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.proc = subprocess.Popen(
            [
                pg_bin("postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(run_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
            ],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,
            **_as_postgres(),
        )
        self._wait(timeout)
        self.create_database(self.database)
        return self

    def _connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database, connect_timeout=2)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: see {self.log}")
            try:
                self._connect().close()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postgres did not start within {timeout:.0f} s: see {self.log}") from None
                time.sleep(0.2)

    def create_database(self, name: str) -> None:
        conn = self._connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Redis:
    """A Redis server on loopback `port`, nothing persisted (locks only)."""

    data_dir: Path
    port: int
    proc: Optional[subprocess.Popen] = None
    args: List[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> "Redis":
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(log),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import redis

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: see {log}")
            try:
                redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server did not start: see {log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
