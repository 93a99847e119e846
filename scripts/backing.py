"""PostgreSQL and Redis on loopback ports, each with its own data directory.

What several replicas share: `make cluster` (scripts/cluster.py) and the
tests start them with this module, then stop them. Debian's packages
provide the programs (`ensure_installed` installs them when run as root).
PostgreSQL refuses to run as root, so as root it runs as the `postgres`
user the package creates, with the data directory handed to it.

Neither is open to whoever is on the machine (issue 25): PostgreSQL asks
every connection, the Unix socket's too, for a password (scram-sha-256; the
superuser's is generated at initdb and kept in `<data>.password`, 0600), and
the application gets a role of its own that is not a superuser
(`Postgres.app_role`). Redis asks for a password (`requirepass`, generated
unless given), which it reads from its standard input, so it is never on a
command line that `ps` shows. Every file they create is 0600 (umask 077).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional

from musaed.files import PRIVATE_UMASK

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


def new_password() -> str:
    """A generated password: 192 random bits, URL-safe (it goes in URLs unquoted)."""
    return secrets.token_urlsafe(24)


def private_file(path: Path, text: str) -> None:
    """Write `text` to a file only its owner reads, whatever the umask; whole or not at all
    (a reader that sees the file sees all of it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def let_through(directory: Path) -> None:
    """Another user (postgres, nginx's workers) must reach a directory below this one: add
    search (x, not read) for others to each parent that lacks it (temporary directories
    are 0700, and ours are made 0700 by the umask); nothing in them becomes readable."""
    for d in [directory, *directory.parents]:
        mode = d.stat().st_mode
        if not mode & 0o001:
            d.chmod(mode | 0o001)


def _as_postgres() -> dict:
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


# Every connection authenticates, the Unix socket's too: no `trust`, no `peer`.
PG_HBA = """# Written by scripts/backing.py: a password (scram-sha-256) for every connection.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""

# Everything in the public schema of a database handed to the application role becomes
# its own (a database made by an earlier version had the superuser create them). Indexes
# and a column's sequences follow their table.
_GIVE_PUBLIC_OBJECTS = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.oid::regclass AS name FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND pg_get_userbyid(c.relowner) <> {role}
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO %I', r.name, {role});
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS name FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> {role}
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.name, {role});
  END LOOP;
END $$
"""


@dataclass
class Postgres:
    """A PostgreSQL server: data in `data_dir` (made with initdb on first start), on loopback `port`.

    `url` is the superuser's, with its password; the application connects as the role
    `app_role` makes. The superuser's password is kept in `password_file` (0600, beside
    the data directory) for the next start.
    """

    data_dir: Path
    port: int
    database: str = "musaed"
    proc: Optional[subprocess.Popen] = None
    log: Optional[Path] = None
    password: Optional[str] = field(default=None, repr=False)

    SUPERUSER = "postgres"

    @property
    def url(self) -> str:
        return self.url_for(self.SUPERUSER, self.password or "", self.database)

    def url_for(self, role: str, password: str, database: str) -> str:
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.password"

    def start(self, timeout: float = 60) -> "Postgres":
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        run_dir = self.data_dir.parent / f"{self.data_dir.name}-run"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "postgres", "postgres")
            shutil.chown(run_dir, "postgres", "postgres")
            let_through(self.data_dir.parent)
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self._initdb(run_dir)
        elif self.password is None and self.password_file.exists():
            self.password = self.password_file.read_text(encoding="utf-8").strip()
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
                "-c",
                "password_encryption=scram-sha-256",
            ],
            stdout=open(os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab"),
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,
            umask=PRIVATE_UMASK,
            **_as_postgres(),
        )
        self._wait(timeout)
        if not fresh:
            self._require_passwords()
        self.create_database(self.database)
        return self

    def _initdb(self, run_dir: Path) -> None:
        """A new cluster whose superuser has a generated password, and no way in without one."""
        self.password = self.password or new_password()
        private_file(self.password_file, self.password + "\n")
        # initdb reads the password from a file (never a command line): one the postgres user can read.
        pwfile = run_dir / "initdb.pw"
        private_file(pwfile, self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            subprocess.run(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                cwd="/",
                umask=PRIVATE_UMASK,
                **_as_postgres(),
            )
        finally:
            pwfile.unlink()
        self._write_hba()

    def _write_hba(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(PG_HBA)  # the file initdb made: its owner and mode stay

    def _require_passwords(self) -> None:
        """A data directory an earlier version made with `trust`: give the superuser a password
        and ask every connection for one from now on."""
        if "trust" not in _hba_methods(self.data_dir / "pg_hba.conf"):
            return
        self.password = self.password or new_password()
        private_file(self.password_file, self.password + "\n")
        conn = self._connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET password_encryption = 'scram-sha-256'")
            cur.execute(f'ALTER ROLE "{self.SUPERUSER}" PASSWORD %s', [self.password])
            self._write_hba()
            cur.execute("SELECT pg_reload_conf()")
        conn.close()

    def _connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.SUPERUSER,
            password=self.password,
            dbname=database,
            connect_timeout=2,
        )

    def _wait(self, timeout: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: see {self.log}")
            try:
                self._connect().close()
                return
            except psycopg2.OperationalError as e:
                if "password authentication failed" in str(e) or "no password supplied" in str(e):
                    raise RuntimeError(
                        f"PostgreSQL in {self.data_dir} refused the superuser's password: "
                        f"its password is kept in {self.password_file}"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postgres did not start within {timeout:.0f} s: see {self.log}") from None
                time.sleep(0.2)

    def create_database(self, name: str, owner: Optional[str] = None) -> None:
        conn = self._connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
            elif owner:
                cur.execute(f'ALTER DATABASE "{name}" OWNER TO "{owner}"')
        conn.close()

    def app_role(self, role: str, password: str, databases: Iterable[str]) -> None:
        """`role` logs in with `password` and owns `databases` (tables, and CREATE in them), and
        nothing else: not a superuser, no new roles or databases, no replication, no server files
        or programs (`COPY … TO PROGRAM` is for superusers and pg_execute_server_program)."""
        databases = list(databases)
        conn = self._connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET password_encryption = 'scram-sha-256'")
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(
                f'{verb} ROLE "{role}" WITH LOGIN PASSWORD %s'
                " NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
                [password],
            )
            # No other way in for anyone: other databases stay the superuser's.
            cur.execute('REVOKE CONNECT, TEMPORARY ON DATABASE "postgres" FROM PUBLIC')
        conn.close()
        for name in databases:
            self.create_database(name, owner=role)
            conn = self._connect(name)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
                cur.execute(_GIVE_PUBLIC_OBJECTS.replace("{role}", conn_literal(role)))
            conn.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def conn_literal(text: str) -> str:
    """`text` as an SQL string literal (role names we choose: letters, digits, _)."""
    if not text.replace("_", "").isalnum():
        raise ValueError(f"not a plain name: {text!r}")
    return f"'{text}'"


def _hba_methods(path: Path) -> set:
    """The authentication methods pg_hba.conf names (the last word of each rule without options)."""
    methods = set()
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            methods.update(w for w in words[3:] if w in ("trust", "peer", "ident", "md5", "scram-sha-256", "password"))
    return methods


@dataclass
class Redis:
    """A Redis server on loopback `port`, nothing persisted (locks only), behind `password`."""

    data_dir: Path
    port: int
    proc: Optional[subprocess.Popen] = None
    args: List[str] = field(default_factory=list)
    password: str = field(default_factory=new_password, repr=False)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}"

    def client(self, **kwargs):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **kwargs)

    def start(self, timeout: float = 20) -> "Redis":
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "-",  # the rest of the configuration, the password, from standard input
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
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=PRIVATE_UMASK,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(f'requirepass "{self.password}"\n'.encode("ascii"))
        self.proc.stdin.close()
        import redis

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: see {log}")
            try:
                self.client(socket_timeout=1).ping()
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
