"""`make run`: start the action server and the Rasa server; Ctrl-C stops both."""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import ROOT, Servers  # noqa: E402


def main() -> int:
    servers = Servers(rasa_port=5005, action_port=5055, log_dir=ROOT / "var" / "logs")
    print("Starting Musaed (action server :5055, Rasa server :5005)…", flush=True)
    servers.start()
    print(
        f"Musaed is up after {servers.startup_seconds:.1f} s. Talk to it:\n"
        f"  REST:      curl -s {servers.url}/webhooks/rest/webhook "
        "-d '{\"sender\": \"me\", \"message\": \"ضاعت هويتي\"}'\n"
        f"  socket.io: {servers.url}/socket.io (web widget)\n"
        f"  logs:      {servers.log_dir}/\n"
        "Ctrl-C stops both servers.",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in servers.procs):
            time.sleep(1)
        print("A server stopped unexpectedly; see the logs above.", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        print("\nStopping Musaed…", flush=True)
        return 0
    finally:
        servers.stop()


if __name__ == "__main__":
    sys.exit(main())
