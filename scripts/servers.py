"""Start and stop Musaed's two servers: used by `make run`, the tests and the benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from musaed import settings
from musaed.files import PRIVATE_UMASK
from musaed.web_security import web_origins

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "musaed.tar.gz"


# The environment every Musaed server starts with (a caller's own settings win).
SERVER_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # One OpenMP thread: the sentence encoder asks for one, but the OpenMP
    # runtime is often started by another library before it loads and then
    # takes a thread per core; those threads spin while they wait. Measured
    # (bench, this machine): Rasa server CPU per message 48 -> 31 ms with one
    # process, and with two Rasa servers on 2 cores 4.6 -> 43 msg/s at 10
    # conversations (bench/NOTES.md, round 7).
    "OMP_NUM_THREADS": settings.OMP_NUM_THREADS.get(),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Poll `url` until it answers; return seconds waited. Fail fast if proc died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def private_log(path: Path, append: bool = False):
    """A file (a log) only its owner reads, opened to write bytes: what people type reaches
    the logs at debug level."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # one an earlier version made readable too
    return open(fd, "ab" if append else "wb")


@dataclass
class Servers:
    """A Rasa server and an action server on loopback ports."""

    rasa_port: int
    action_port: int
    env: dict = field(default_factory=dict)
    model: Path = MODEL
    credentials: Path = ROOT / "credentials.yml"
    log_dir: Optional[Path] = None
    # SQLite file of Rasa's tracker store (customer care reads conversations
    # there); default: beside the logs.
    tracker_db: Optional[Path] = None
    # Loopback by default; a deployment behind a proxy may listen wider.
    interface: str = "127.0.0.1"
    # Both servers at debug level (they then log what people type: musaed/logsafe.py).
    debug: bool = False
    procs: List[subprocess.Popen] = field(default_factory=list)
    # How each process was started (command, environment, log): `restart` starts it so again.
    started: Dict[int, Tuple[List[str], dict, Path]] = field(default_factory=dict)
    actions: Optional[subprocess.Popen] = None
    startup_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def start(self, timeout: float = 180) -> "Servers":
        env = {**os.environ, **SERVER_ENV, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix="musaed-logs-"))
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tracker_db = Path(self.tracker_db or log_dir / "trackers.db").resolve()
        endpoints = log_dir / "endpoints.yml"
        with private_log(endpoints) as f:
            f.write(
                f'action_endpoint:\n  url: "http://127.0.0.1:{self.action_port}/webhook"\n'
                f"tracker_store:\n  type: stores.tracker_store.SQLiteTrackerStore\n"
                f'  db: "{self.tracker_db}"\n'.encode()
            )
        begin = time.monotonic()
        self.log_dir = log_dir
        actions = self.start_actions(env)
        rasa = self.spawn(
            [
                str(BIN / "rasa"),
                "run",
                "--model",
                str(self.model),
                "--port",
                str(self.rasa_port),
                "--interface",
                self.interface,
                "--credentials",
                str(self.credentials),
                "--endpoints",
                str(endpoints),
                # Only the configured web origins (MUSAED_WEB_ORIGINS), never "*": Rasa's CORS
                # sends credentials, so "*" reflected any site's origin.
                "--cors",
                *web_origins(env),
            ]
            + (["--debug"] if self.debug else []),
            env,
            log_dir / "rasa.log",
        )
        try:
            wait_until_up(f"http://127.0.0.1:{self.action_port}/health", actions, timeout)
            # Rasa loads the model before it opens its port, so "/" answering
            # means the bot is ready to talk.
            wait_until_up(f"{self.url}/", rasa, timeout)
        except Exception:
            self.stop()
            for log in ("actions.log", "rasa.log"):
                sys.stderr.write(f"--- {log} ---\n{(log_dir / log).read_text()[-4000:]}\n")
            raise
        self.startup_seconds = time.monotonic() - begin
        return self

    def start_actions(self, env: Optional[dict] = None) -> subprocess.Popen:
        """The action server on its port (again, after `stop_actions`: an outage and its end)."""
        assert self.log_dir is not None
        env = env or {**os.environ, **SERVER_ENV, **self.env, "PYTHONPATH": str(ROOT)}
        self.actions = self.spawn(
            # rasa_sdk directly, not `rasa run actions`: the same server
            # without importing Rasa (half the memory, starts faster; bench/NOTES.md).
            [str(BIN / "python"), "-m", "rasa_sdk", "--actions", "actions", "--port", str(self.action_port)]
            + (["--debug"] if self.debug else []),
            # The action server trusts the tracker it is sent (slots included):
            # only the Rasa server may reach it, so it listens on loopback
            # (rasa_sdk reads SANIC_HOST; its default is every interface).
            {"SANIC_HOST": "127.0.0.1", **env},
            self.log_dir / "actions.log",
        )
        return self.actions

    def stop_actions(self) -> None:
        assert self.actions is not None
        self.actions.terminate()
        self.actions.wait(timeout=20)
        self.procs.remove(self.actions)
        self.started.pop(self.actions.pid, None)

    def spawn(self, cmd: List[str], env: dict, log: Path, append: bool = False) -> subprocess.Popen:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=private_log(log, append=append),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Whatever it creates (databases, secrets, logs) is 0600: musaed/files.py.
            umask=PRIVATE_UMASK,
        )
        self.procs.append(proc)
        self.started[proc.pid] = (cmd, env, log)
        return proc

    def restart(self, proc: subprocess.Popen) -> subprocess.Popen:
        """Start a process that stopped again, as it was started, its log continued."""
        cmd, env, log = self.started.pop(proc.pid)
        self.procs.remove(proc)
        again = self.spawn(cmd, env, log, append=True)
        if proc is self.actions:
            self.actions = again
        return again

    def name_of(self, proc: subprocess.Popen) -> str:
        """A process's log's name without .log: "rasa", "actions", "web"."""
        return self.started[proc.pid][2].stem

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        self.started.clear()
