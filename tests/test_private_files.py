"""Databases, secrets and logs are their owner's only (issue 25, item 4): what the real
servers create, as `make run` starts them, is 0600, and the directories we make 0700,
even from a shell whose umask (022) would make them readable by every local user."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from musaed import files, seed, store
from scripts.servers import MODEL, ROOT, Servers, free_port

pytestmark = pytest.mark.e2e
ID = seed.ids()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """`make run` in small: the seed, then the two servers, from a shell with umask 022;
    then a request made, which writes a code, a conversation and a receipt link."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train`")
    base = tmp_path_factory.mktemp("private")
    var, logs = base / "var", base / "logs"  # neither exists yet: the programs make them
    env = {"MUSAED_DB": str(var / "musaed.db")}
    shell = os.umask(0o022)
    try:
        subprocess.run(
            [sys.executable, "-m", "musaed.seed"],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
        )
        servers = Servers(
            rasa_port=free_port(), action_port=free_port(), log_dir=logs, tracker_db=var / "trackers.db", env=env
        ).start()
    finally:
        os.umask(shell)
    try:
        url, sender = f"{servers.url}/webhooks/rest/webhook", "private-files"

        def say(text):
            r = requests.post(url, json={"sender": sender, "message": text}, timeout=60)
            assert r.status_code == 200, r.text
            return "\n".join(m.get("text", "") for m in r.json())

        say("ضاعت هويتي")
        say("نعم")
        say(ID["khalid"])
        say(store.latest_code(store.open_db(var / "musaed.db"), ID["khalid"])["code"])
        assert re.search(r"MSD-\d{8}", say("نعم"))
        # Seen while the servers run: SQLite's -wal and -shm files exist only then.
        listing = {p: mode(p) for p in [var, logs, *var.iterdir(), *logs.iterdir()]}
    finally:
        servers.stop()
    return var, logs, listing


def test_databases_secrets_and_logs_are_created_0600(made):
    var, logs, listing = made
    names = {p.name for p in listing}
    # What there is to protect, all of it made by the seed and the servers.
    expected = {"musaed.db", "musaed.db-wal", "trackers.db", "receipt.secret", "session.secret"}
    assert expected <= names, sorted(names)
    assert {"rasa.log", "actions.log"} <= names, sorted(names)
    readable = {str(p): oct(m) for p, m in listing.items() if p.is_file() and m != 0o600}
    assert readable == {}


def test_the_directories_they_make_are_0700(made):
    var, logs, listing = made
    assert (oct(listing[var]), oct(listing[logs])) == (oct(0o700), oct(0o700))


def test_files_made_readable_before_are_tightened_and_links_left_alone(tmp_path):
    db, logs, elsewhere = tmp_path / "musaed.db", tmp_path / "logs", tmp_path / "elsewhere"
    db.write_text("x")
    db.chmod(0o644)
    logs.mkdir(mode=0o755)
    logs.chmod(0o755)
    elsewhere.write_text("y")
    elsewhere.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    files.tighten([db, logs, link, tmp_path / "missing"])
    assert (mode(db), mode(logs), mode(elsewhere)) == (0o600, 0o700, 0o644)


def test_a_database_opened_first_by_any_program_is_0600_whatever_the_umask(tmp_path):
    shell = os.umask(0o022)
    try:
        db = store.open_db(tmp_path / "new" / "musaed.db")
        db.execute("CREATE TABLE t (a)")
    finally:
        os.umask(shell)
    made = sorted((tmp_path / "new").iterdir())
    assert [p.name for p in made][:1] == ["musaed.db"]
    assert {p.name: oct(mode(p)) for p in made} == {p.name: oct(0o600) for p in made}
    assert mode(tmp_path / "new") == 0o700
