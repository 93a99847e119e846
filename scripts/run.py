"""`make run`: start the action server, the Rasa server and the web page; Ctrl-C stops them."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import ROOT, Servers  # noqa: E402


def main() -> int:
    servers = Servers(rasa_port=5005, action_port=5055, log_dir=ROOT / "var" / "logs",
                      tracker_db=ROOT / "var" / "trackers.db")
    print("Starting Musaed (action server :5055, Rasa server :5005)…", flush=True)
    servers.start()
    web_log = servers.log_dir / "web.log"
    servers.spawn([sys.executable, str(ROOT / "web" / "serve.py"), "--port", "8000",
                    "--rasa-url", servers.url.replace("127.0.0.1", "localhost")],
                   {**os.environ, "PYTHONPATH": str(ROOT)}, web_log)
    print(
        f"Musaed is up after {servers.startup_seconds:.1f} s. Talk to it:\n"
        f"  REST:      curl -s {servers.url}/webhooks/rest/webhook "
        "-d '{\"sender\": \"me\", \"message\": \"ضاعت هويتي\"}'\n"
        "  web chat:  http://localhost:8000  (the widget, and a snippet to embed it)\n"
        f"  logs:      {servers.log_dir}/\n"
        "Ctrl-C stops them all.",
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
