"""PostgreSQL as scripts/backing.py starts it (the cluster's and the tests'): no one gets in
without a password, and the application's role can use its own databases and nothing else
(issue 25, item 4: `trust` and a passwordless superuser gave any local user a shell as postgres)."""

import os
import stat
import subprocess
import uuid
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest

from scripts.backing import Postgres, ensure_installed, new_password, pg_bin
from scripts.servers import free_port

pytestmark = pytest.mark.e2e


def refused(**kwargs) -> str:
    """Why PostgreSQL refused the connection (the test fails if it was let in)."""
    try:
        psycopg2.connect(connect_timeout=5, **kwargs).close()
    except psycopg2.OperationalError as e:
        return str(e)
    raise AssertionError(f"PostgreSQL let {kwargs.get('user')} in without the right password")


@pytest.fixture
def app(pg_server):
    """A role and database of this test's own, made as the cluster makes `musaed`."""
    name, password = f"app_{uuid.uuid4().hex[:10]}", new_password()
    pg_server.app_role(name, password, [name])
    conn = psycopg2.connect(pg_server.url_for(name, password, name))
    conn.autocommit = True
    yield pg_server, name, password, conn.cursor()
    conn.close()


@pytest.mark.parametrize("user", ["postgres", "app"])
def test_no_connection_without_the_password_on_the_port_or_the_socket(app, user):
    pg, name, _, _ = app
    role = name if user == "app" else "postgres"
    database = name if user == "app" else "postgres"
    socket_dir = str(pg.data_dir.parent / f"{pg.data_dir.name}-run")
    for host in ("127.0.0.1", socket_dir):
        where = dict(host=host, port=pg.port, user=role, dbname=database)
        assert "no password supplied" in refused(**where)
        assert "password authentication failed" in refused(password="postgres", **where)


def test_the_app_role_owns_its_database_and_nothing_else(app):
    pg, name, password, cur = app
    cur.execute("CREATE TABLE requests (id serial PRIMARY KEY, note text)")  # it makes its schema
    cur.execute("INSERT INTO requests (note) VALUES ('x') RETURNING id")
    assert cur.fetchone() == (1,)
    cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles WHERE rolname = %s", [name])
    assert cur.fetchone() == (False, False, False, False)
    for denied in (
        "COPY (SELECT 1) TO PROGRAM 'id'",  # a shell as the postgres user
        "COPY requests FROM PROGRAM 'id'",
        "CREATE ROLE intruder LOGIN SUPERUSER",
        "CREATE ROLE intruder LOGIN",
        "CREATE DATABASE elsewhere",
        "SELECT pg_read_file('/etc/passwd')",
        "ALTER ROLE postgres PASSWORD 'mine'",
    ):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(denied)
    # Other databases are the superuser's: it cannot even connect to them.
    where = dict(host="127.0.0.1", port=pg.port, user=name, password=password, dbname="postgres")
    assert "permission denied" in refused(**where)


def _initdb_with_trust(data: Path) -> None:
    """A data directory as the previous scripts/backing.py made it: `trust`, no password."""
    data.mkdir()
    as_postgres = {}
    if os.geteuid() == 0:
        import shutil

        shutil.chown(data, "postgres", "postgres")
        as_postgres = {"user": "postgres", "group": "postgres"}
        for d in data.parents:  # as backing.py does: the postgres user reaches its directory
            d.chmod(d.stat().st_mode | 0o001)
    subprocess.run(
        [pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd="/",
        **as_postgres,
    )


def test_a_data_directory_made_with_trust_asks_for_a_password_from_its_next_start(tmp_path):
    ensure_installed(("postgresql",))
    data = tmp_path / "pg"
    _initdb_with_trust(data)
    old = Postgres(data, free_port(), database="musaed").start()
    try:
        assert old.password  # given one at this start
        # Tables the superuser made (as an earlier version's seed did) become the application role's.
        conn = psycopg2.connect(old.url)
        conn.autocommit = True
        conn.cursor().execute("CREATE TABLE kept (id serial PRIMARY KEY, note text)")
        conn.close()
        assert "no password supplied" in refused(host="127.0.0.1", port=old.port, user="postgres", dbname="musaed")
        app_password = new_password()
        old.app_role("musaed", app_password, ["musaed"])
        conn = psycopg2.connect(old.url_for("musaed", app_password, "musaed"))
        conn.cursor().execute("INSERT INTO kept (note) VALUES ('still here')")
        conn.commit()
        conn.close()
    finally:
        old.stop()
    kept = old.password_file
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text().strip() == old.password
    again = Postgres(data, free_port(), database="musaed").start()  # the password kept is the one
    try:
        assert again.password == old.password
        assert "no password supplied" in refused(host="127.0.0.1", port=again.port, user="postgres", dbname="musaed")
    finally:
        again.stop()
    assert stat.S_IMODE(old.log.stat().st_mode) == 0o600
