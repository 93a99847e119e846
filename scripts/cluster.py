"""`make cluster`: Musaed as several replicas on this machine, as it runs beyond one.

PostgreSQL (the application data and Rasa's tracker store), Redis (Rasa's
lock store), two Rasa servers, two action servers, two notify workers, the web
page, customer care (when MUSAED_CARE_TOKENS is set) and nginx in front, all on loopback:

    front  http://127.0.0.1:<port>/       the web page (nginx → web server)
           /webhooks/…                    REST, Telegram, WhatsApp (round robin over the Rasa servers)
           /socket.io/…                   the widget (sticky: ip_hash)
           /care/…                        customer care
    nginx  127.0.0.1:<actions port>       the action servers, round robin, for the Rasa servers

Any message of a conversation may reach either Rasa server: they share the
tracker store, and a Redis lock that is correct across processes
(stores/lock_store.py) handles one conversation's messages one at a
time. A replica that dies is skipped by nginx until it is back. Pids go to
<dir>/pids/<name>.pid, settings to <dir>/env (KEY=value lines), logs to
<dir>/logs/. Ctrl-C stops everything.

Nothing is open to other users of the machine (issue 25): PostgreSQL asks
every connection for a password (scram-sha-256) and the servers connect as
`musaed`, a role that owns the application's two databases and is not a
superuser; Redis asks for a password; nginx's workers run as an unprivileged
user (www-data, else nobody) when this runs as root. The passwords are
generated: the application's and Redis's at each start, into <dir>/env
(0600) and the servers' environment, never a command line or a log (the
endpoints file names them as ${MUSAED_PG_PASSWORD} and ${MUSAED_REDIS_PASSWORD});
PostgreSQL's superuser's once, into <dir>/pg.password (0600). Every file
is created 0600 and every directory 0700 (umask 077).

    python -m scripts.cluster [--port 8080] [--dir var/cluster]
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from musaed import files, notify_worker, retention, settings
from musaed.web_security import web_origins
from scripts.backing import Postgres, Redis, ensure_installed, let_through, new_password, private_file
from scripts.credentials import write as write_credentials
from scripts.servers import BIN, MODEL, ROOT, SERVER_ENV, free_port, private_log, wait_until_up

REPLICAS = 2
APP_DATABASE = "musaed"
TRACKER_DATABASE = "rasa"
# The role every Rasa and action server (and customer care) connects as: it owns both databases.
APP_ROLE = "musaed"
# Who nginx's workers run as when the master is root (the first that exists).
NGINX_USERS = ("www-data", "nobody")


def nginx_user() -> tuple:
    """(user, group) for nginx's workers, or None when not root (they then run as this user)."""
    if os.geteuid() != 0:
        return None
    for name in NGINX_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, grp.getgrgid(entry.pw_gid).gr_name
    raise RuntimeError(f"none of the users {', '.join(NGINX_USERS)} exists for nginx's workers")


def nginx_conf(
    d: Path, front: int, actions_front: int, rasa: List[int], actions: List[int], web: int, care: int, user=None
) -> str:
    """nginx in front: one address for everything, and one for the action servers.

    `user` (user, group): who the workers run as, when the master is root; their
    temporary files go to <d>/nginx/, which is theirs.
    """

    def servers(ports: List[int]) -> str:
        # One failure takes a replica out for 5 s; the request goes to the next.
        return "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in ports)

    care_location = (
        f"""
    location /care/ {{ proxy_pass http://127.0.0.1:{care}; }}"""
        if care
        else ""
    )
    # The master (root) writes the pid and opens the log; the workers write only temporary files.
    user_line = f"user {user[0]} {user[1]};\n" if user else ""
    return f"""{user_line}worker_processes 1;
pid {d}/run/nginx.pid;
error_log {d}/logs/nginx.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server_tokens off;
  client_body_temp_path {d}/nginx/body;
  proxy_temp_path {d}/nginx/proxy;
  fastcgi_temp_path {d}/nginx/fastcgi;
  uwsgi_temp_path {d}/nginx/uwsgi;
  scgi_temp_path {d}/nginx/scgi;
  proxy_read_timeout 120s;
  # A replica that refuses or drops the connection: try the next one, POSTs
  # too (non_idempotent). A Rasa server that dies mid-message has saved none of
  # it (the tracker is saved at the end), and a request confirmed twice is
  # still one request (the store's one-open-request rule).
  proxy_next_upstream error timeout http_502 http_503 non_idempotent;
  # Limits per client address (issue 25; the app limits each sender, channels/limits.py):
  # REST 5 requests a second with bursts of 60 (the app's 60 in 10 s, 300 a minute), the
  # widget twice that (polling makes 2-3 requests a message), connections at once capped;
  # past them 429. Not Telegram or WhatsApp: everyone's messages come from their few
  # servers. Not this machine (make bench, make chat, the tests), as in the app.
  geo $musaed_outside {{
    default 1;
    127.0.0.1 0;
    ::1 0;
  }}
  map $musaed_outside $musaed_client {{
    0 "";
    1 $binary_remote_addr;
  }}
  limit_req_zone $musaed_client zone=musaed_rest:10m rate=5r/s;
  limit_req_zone $musaed_client zone=musaed_web:10m rate=10r/s;
  limit_conn_zone $musaed_client zone=musaed_conn:10m;
  limit_req_status 429;
  limit_conn_status 429;
  upstream rasa {{
{servers(rasa)}
  }}
  upstream rasa_sticky {{
    # socket.io's polling transport keeps its session in one server: one client, one replica.
    ip_hash;
{servers(rasa)}
  }}
  upstream actions {{
{servers(actions)}
  }}
  server {{
    listen 127.0.0.1:{front};
    # Messages past 4 KB get the app's short «too long» (channels/limits.py); bodies past 1 MB stop here.
    client_max_body_size 1m;
    # The app limits per address by these, believed only from a proxy on loopback.
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    location /webhooks/rest/ {{
      limit_req zone=musaed_rest burst=60 nodelay;
      limit_conn musaed_conn 20;
      proxy_pass http://rasa;
    }}
    # Documents (issue 31): the app reads no more than MUSAED_MAX_DOCUMENT_MB (5 MB) and says why.
    location = /webhooks/rest/document {{
      client_max_body_size 8m;
      proxy_request_buffering off;  # passed on as it comes, not spooled to disk
      limit_req zone=musaed_rest burst=60 nodelay;
      limit_conn musaed_conn 20;
      proxy_pass http://rasa;
    }}
    location = /webhooks/socketio/document {{
      client_max_body_size 8m;
      limit_req zone=musaed_web burst=120 nodelay;
      limit_conn musaed_conn 50;
      proxy_request_buffering off;  # streamed: the app stops reading past the limit
      # The replica the widget's socket is on: the bot's answer to the file goes out on that socket.
      proxy_pass http://rasa_sticky;
    }}
    location /webhooks/ {{ proxy_pass http://rasa; }}
    location /socket.io/ {{
      limit_req zone=musaed_web burst=120 nodelay;
      limit_conn musaed_conn 50;
      proxy_pass http://rasa_sticky;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header X-Real-IP $remote_addr;  # a location's own proxy_set_header drops the server's
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 3600s;
    }}{care_location}
    location / {{ proxy_pass http://127.0.0.1:{web}; }}
  }}
  server {{
    listen 127.0.0.1:{actions_front};
    location / {{ proxy_pass http://actions; }}
  }}
}}
"""


class Cluster:
    def __init__(self, directory: Path, port: int) -> None:
        self.dir = directory.resolve()
        self.port = port
        self.procs: Dict[str, subprocess.Popen] = {}
        self.backing: list = []
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("pids", "logs", "run", "nginx"):
            (self.dir / sub).mkdir(mode=0o700, exist_ok=True)
        # What an earlier version left readable by others (logs, settings, directories).
        files.tighten([self.dir, *self.dir.rglob("*")])

    def spawn(self, name: str, cmd: List[str], env: dict) -> subprocess.Popen:
        log = private_log(self.dir / "logs" / f"{name}.log", append=True)
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=files.PRIVATE_UMASK,
        )
        self.procs[name] = proc
        self.write_pid(name, proc.pid)
        return proc

    def write_pid(self, name: str, pid: int) -> None:
        (self.dir / "pids" / f"{name}.pid").write_text(f"{pid}\n")

    def start(self) -> Dict[str, str]:
        ensure_installed()
        begin = time.monotonic()
        pg = Postgres(self.dir / "pg", free_port(), database=APP_DATABASE).start()
        self.backing.append(pg)
        self.write_pid("postgres", pg.proc.pid)
        # A new password for the application at each start; the role owns both databases.
        app_password = new_password()
        pg.app_role(APP_ROLE, app_password, [APP_DATABASE, TRACKER_DATABASE])
        redis = Redis(self.dir / "redis", free_port()).start()
        self.backing.append(redis)
        self.write_pid("redis", redis.proc.pid)

        front_url = f"http://127.0.0.1:{self.port}"
        rasa_ports = [free_port() for _ in range(REPLICAS)]
        action_ports = [free_port() for _ in range(REPLICAS)]
        actions_front, web_port = free_port(), free_port()
        care_port = free_port() if settings.CARE_TOKENS.given() else 0
        # The servers' settings (musaed/settings.py) and where each part is: <dir>/env.
        cluster_env = {
            "MUSAED_FRONT_URL": front_url,
            "MUSAED_DATABASE_URL": pg.url_for(APP_ROLE, app_password, APP_DATABASE),
            "MUSAED_TRACKER_DB": pg.url_for(APP_ROLE, app_password, TRACKER_DATABASE),
            "MUSAED_REDIS_URL": redis.url,
            # What endpoints.yml names (Rasa fills ${…} in from the environment).
            "MUSAED_PG_PASSWORD": app_password,
            "MUSAED_REDIS_PASSWORD": redis.password,
            "MUSAED_RASA_URLS": ",".join(f"http://127.0.0.1:{p}" for p in rasa_ports),
            "MUSAED_ACTION_URLS": ",".join(f"http://127.0.0.1:{p}" for p in action_ports),
            "MUSAED_ACTIONS_FRONT_URL": f"http://127.0.0.1:{actions_front}",
            "MUSAED_PUBLIC_URL": front_url,
            # The page is served at the front: its origin may use the bot from a browser.
            "MUSAED_WEB_ORIGINS": settings.WEB_ORIGINS.given() or f"{front_url} http://localhost:{self.port}",
            # Shared by every replica (each would otherwise make its own beside its database).
            "MUSAED_RECEIPT_SECRET": settings.RECEIPT_SECRET.given() or secrets.token_hex(32),
            "MUSAED_SESSION_SECRET": settings.SESSION_SECRET.given() or secrets.token_hex(32),
            # People's documents: one directory every replica, action server and care reads and writes
            # (in Kubernetes, a ReadWriteMany volume mounted there; docs/operations.md).
            "MUSAED_DOCUMENTS_DIR": settings.DOCUMENTS_DIR.given() or str(self.dir / "documents"),
            "MUSAED_LOGS": str(self.dir / "logs"),
        }
        if care_port:
            cluster_env["MUSAED_CARE_URL"] = f"{front_url}/care/"
        env = {**os.environ, **SERVER_ENV, **cluster_env, "PYTHONPATH": str(ROOT)}

        subprocess.run([str(BIN / "python"), "-m", "musaed.seed", "--if-missing"], cwd=ROOT, env=env, check=True)
        endpoints = self.dir / "endpoints.yml"
        private_file(
            endpoints,
            f'action_endpoint:\n  url: "http://127.0.0.1:{actions_front}/webhook"\n'
            # Rasa's SQL store with checkpoints (stores/tracker_store.py).
            "tracker_store:\n  type: stores.tracker_store.PostgresTrackerStore\n"
            "  dialect: postgresql\n  url: 127.0.0.1\n"
            f"  port: {pg.port}\n  db: {TRACKER_DATABASE}\n  username: {APP_ROLE}\n"
            "  password: ${MUSAED_PG_PASSWORD}\n"
            "lock_store:\n  type: stores.lock_store.RedisMutexLockStore\n  url: 127.0.0.1\n"
            f"  port: {redis.port}\n  db: 1\n  password: ${{MUSAED_REDIS_PASSWORD}}\n",
        )
        credentials = self.dir / "credentials.yml"
        for note in write_credentials(os.environ, credentials):
            print(note, flush=True)

        for n, port in enumerate(action_ports, start=1):
            self.spawn(
                f"actions-{n}",
                [str(BIN / "python"), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
                {**env, "SANIC_HOST": "127.0.0.1"},
            )
        for n, port in enumerate(rasa_ports, start=1):
            self.spawn(
                f"rasa-{n}",
                [
                    str(BIN / "rasa"),
                    "run",
                    "--model",
                    str(MODEL),
                    "--port",
                    str(port),
                    "--interface",
                    "127.0.0.1",
                    "--credentials",
                    str(credentials),
                    "--endpoints",
                    str(endpoints),
                    "--cors",  # the configured web origins only (musaed/web_security.py)
                    *web_origins(env),
                ],
                env,
            )
        self.spawn(
            "web",
            [str(BIN / "python"), "-m", "web.serve", "--port", str(web_port), "--rasa-url", front_url],
            env,
        )
        # Retention (MUSAED_RETENTION): what is past it is deleted every hour.
        self.spawn("retention", retention.timer_command(str(BIN / "python")), env)
        # Notifications: a worker per replica; each row is claimed with a lease, so it is sent once.
        for n in range(1, REPLICAS + 1):
            self.spawn(f"notify-{n}", notify_worker.command(str(BIN / "python")), env)
        if care_port:
            self.spawn("care", [str(BIN / "python"), "-m", "care.server", "--port", str(care_port)], env)
        conf = self.dir / "nginx.conf"
        user = nginx_user()
        if user:
            # The workers' own directory for temporary files (nginx makes its subdirectories theirs).
            shutil.chown(self.dir / "nginx", *user)
            let_through(self.dir)
        private_file(
            conf, nginx_conf(self.dir, self.port, actions_front, rasa_ports, action_ports, web_port, care_port, user)
        )
        nginx = self.spawn("nginx", ["nginx", "-c", str(conf), "-p", str(self.dir / "run"), "-g", "daemon off;"], env)
        for n, port in enumerate(action_ports, start=1):
            wait_until_up(f"http://127.0.0.1:{port}/health", self.procs[f"actions-{n}"], 120)
        for n, port in enumerate(rasa_ports, start=1):
            wait_until_up(f"http://127.0.0.1:{port}/", self.procs[f"rasa-{n}"], 300)
        wait_until_up(f"http://127.0.0.1:{web_port}/", self.procs["web"], 60)
        wait_until_up(f"{front_url}/webhooks/rest/", nginx, 60)
        # Holds the shared secrets and passwords: owner only.
        private_file(self.dir / "env", "".join(f"{k}={v}\n" for k, v in cluster_env.items()))
        print(
            f"Musaed's cluster is up after {time.monotonic() - begin:.0f} s: {front_url}\n"
            f"  settings: {self.dir / 'env'}  pids: {self.dir / 'pids'}/  logs: {self.dir / 'logs'}/\n"
            "Ctrl-C stops them all.",
            flush=True,
        )
        return cluster_env

    def watch(self) -> None:
        """Stay up while nginx is: a replica that dies is reported (the others carry on)."""
        reported = set()
        while self.procs["nginx"].poll() is None:
            for name, proc in self.procs.items():
                if proc.poll() is not None and name not in reported:
                    print(f"{name} exited ({proc.returncode}); the others carry on", flush=True)
                    reported.add(name)
            time.sleep(1)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for server in reversed(self.backing):
            server.stop()
        for pid_file in (self.dir / "pids").glob("*.pid"):
            pid_file.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=settings.FRONT_PORT.integer())
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "cluster")
    args = parser.parse_args()
    files.private()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cluster = Cluster(args.dir, args.port)
    try:
        cluster.start()
        cluster.watch()
        print("nginx stopped; stopping the rest", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        print("\nStopping Musaed's cluster…", flush=True)
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
