"""`make run`: start the action server, the Rasa server, the web page and the notify worker; Ctrl-C stops them.

A server that stops is started again, the others left running: while the Rasa
server restarts (it loads the model for about half a minute) the web page
stays up and the widget says Musaed is reconnecting, then sends what was typed.
One that keeps stopping (RESTARTS in RESTART_WINDOW) stops everything, with
its log's name, rather than restarting for ever.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Dict, List

from musaed import files, notify_worker, retention, settings
from scripts.credentials import write as write_credentials
from scripts.servers import ROOT, Servers

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
RESTARTS = 5
RESTART_WINDOW = 300.0  # seconds


class Supervisor:
    """Starts again whichever of the servers' processes stopped."""

    def __init__(self, servers: Servers, clock=time.monotonic) -> None:
        self.servers = servers
        self.clock = clock
        self.restarts: Dict[str, List[float]] = {}

    def check(self) -> str:
        """Restart what stopped; the name of one that stopped too often (then nothing is restarted), else ""."""
        for proc in list(self.servers.procs):
            code = proc.poll()
            if code is None:
                continue
            name = self.servers.name_of(proc)
            now = self.clock()
            recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW]
            if len(recent) >= RESTARTS:
                return name
            self.restarts[name] = recent + [now]
            print(f"{name} stopped (exit {code}); starting it again (log: {name}.log).", file=sys.stderr, flush=True)
            self.servers.restart(proc)
        return ""


def exposure_refusal(interface: str, env) -> str:
    """Why the bot must not listen on `interface`, or "" when it may.

    REST without a token is for trusted callers on this machine: beyond
    loopback anyone could post as any sender.
    """
    if interface.strip() in LOOPBACK or (settings.REST_TOKEN.given(env) or "").strip():
        return ""
    return (
        f"Refusing to listen on {interface}: the REST channel has no token there. "
        "Set MUSAED_REST_TOKEN (callers send Authorization: Bearer <token>) or keep MUSAED_INTERFACE on loopback."
    )


def private_var() -> None:
    """What this process and the servers create is owner-only; files an earlier version
    left readable by others (databases, secrets, logs) are made so too."""
    files.private()
    var = ROOT / "var"
    var.mkdir(mode=0o700, exist_ok=True)
    # Not var/ itself: `make cluster` lets PostgreSQL's user through it to var/cluster/.
    files.tighten([*var.glob("*.db*"), *var.glob("*.secret"), *var.glob("*.log"), var / "credentials.yml"])
    logs = var / "logs"
    files.tighten([logs, *logs.glob("*")] if logs.is_dir() else [])


def main() -> int:
    private_var()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops everything, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    interface = settings.INTERFACE.get()
    refusal = exposure_refusal(interface, os.environ)
    if refusal:
        print(refusal, file=sys.stderr, flush=True)
        return 2
    # rest and socketio always; Telegram and WhatsApp only when their secrets
    # are in the environment (one line says which were left out).
    creds = ROOT / "var" / "credentials.yml"
    for note in write_credentials(os.environ, creds):
        print(note, flush=True)
    servers = Servers(
        rasa_port=5005,
        action_port=5055,
        log_dir=ROOT / "var" / "logs",
        tracker_db=ROOT / "var" / "trackers.db",
        credentials=creds,
        interface=interface,
    )
    print("Starting Musaed (action server :5055, Rasa server :5005, web :8000)…", flush=True)
    try:
        servers.start()
        servers.spawn(
            [sys.executable, "-m", "web.serve", "--port", "8000", "--rasa-url", "http://localhost:5005"],
            {**os.environ, "PYTHONPATH": str(ROOT)},
            servers.log_dir / "web.log",
        )
        # Retention (MUSAED_RETENTION): what is past it is deleted every hour.
        servers.spawn(
            retention.timer_command(sys.executable, servers.tracker_db),
            {**os.environ, "PYTHONPATH": str(ROOT)},
            servers.log_dir / "retention.log",
        )
        # Notifications (status changes, expiry reminders): the outbox sent, the day's reminders queued.
        servers.spawn(
            notify_worker.command(sys.executable),
            {**os.environ, "PYTHONPATH": str(ROOT)},
            servers.log_dir / "notify.log",
        )
        if settings.CARE_TOKENS.given():
            servers.spawn(
                [sys.executable, "-m", "care.server", "--port", "5080", "--tracker-db", str(servers.tracker_db)],
                {**os.environ, "PYTHONPATH": str(ROOT)},
                servers.log_dir / "care.log",
            )
            print("customer care: http://localhost:5080/care/ (starting; it loads the model)", flush=True)
        else:
            print('customer care: off (set MUSAED_CARE_TOKENS="name:token,..." to start it)', flush=True)
        print(
            f"Musaed is up after {servers.startup_seconds:.1f} s. Talk to it:\n"
            "  web chat:  http://localhost:8000  (the widget, and a snippet to embed it)\n"
            "  terminal:  make chat\n"
            "  REST:      curl -s localhost:5005/webhooks/rest/webhook "
            '-d \'{"sender": "me", "message": "ضاعت هويتي"}\'\n'
            f"  logs:      {servers.log_dir}/  (one-time codes: make code ID=<national id>)\n"
            "Ctrl-C stops them all.",
            flush=True,
        )
        supervisor = Supervisor(servers)
        while True:
            time.sleep(1)
            failing = supervisor.check()
            if failing:
                print(
                    f"{failing} stopped {RESTARTS} times in {RESTART_WINDOW / 60:.0f} minutes; stopping Musaed. "
                    f"See {servers.log_dir}/{failing}.log.",
                    file=sys.stderr,
                )
                return 1
    except (KeyboardInterrupt, SystemExit):
        print("\nStopping Musaed…", flush=True)
        return 0
    finally:
        servers.stop()


if __name__ == "__main__":
    sys.exit(main())
