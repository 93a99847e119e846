"""`make run` (scripts/run.py): REST without a token stays on loopback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.run import RESTART_WINDOW, RESTARTS, Supervisor, exposure_refusal
from scripts.servers import Servers

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("interface", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_token(interface):
    assert exposure_refusal(interface, {}) == ""


@pytest.mark.parametrize("interface", ["0.0.0.0", "10.0.0.5", "::"])
def test_a_wider_interface_needs_the_rest_token(interface):
    assert "MUSAED_REST_TOKEN" in exposure_refusal(interface, {})
    assert "MUSAED_REST_TOKEN" in exposure_refusal(interface, {"MUSAED_REST_TOKEN": "  "})
    assert exposure_refusal(interface, {"MUSAED_REST_TOKEN": "s3cret"}) == ""


def test_make_run_refuses_beyond_loopback_without_a_token_in_one_line_and_starts_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MUSAED_REST_TOKEN"}
    env.update(MUSAED_INTERFACE="0.0.0.0", MUSAED_DB=str(tmp_path / "musaed.db"), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "scripts.run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Refusing to listen on 0.0.0.0")
    assert "Starting Musaed" not in done.stdout


def test_a_server_that_stops_is_started_again_and_the_others_keep_running(tmp_path):
    """The Rasa server stopping leaves the web page up (issue 29): only the stopped one starts again."""
    servers = Servers(rasa_port=0, action_port=0, log_dir=tmp_path)
    env = {**os.environ}
    try:
        web = servers.spawn([sys.executable, "-c", "import time; time.sleep(60)"], env, tmp_path / "web.log")
        rasa = servers.spawn([sys.executable, "-c", "print('up', flush=True)"], env, tmp_path / "rasa.log")
        rasa.wait(timeout=20)
        supervisor = Supervisor(servers)
        assert supervisor.check() == ""
        assert web in servers.procs and web.poll() is None  # untouched
        assert rasa not in servers.procs
        [again] = [p for p in servers.procs if servers.name_of(p) == "rasa"]
        again.wait(timeout=20)
        assert (tmp_path / "rasa.log").read_text().count("up") == 2  # its log continued, not replaced
    finally:
        servers.stop()


def test_a_server_that_keeps_stopping_stops_make_run(tmp_path):
    servers = Servers(rasa_port=0, action_port=0, log_dir=tmp_path)
    now = [0.0]
    supervisor = Supervisor(servers, clock=lambda: now[0])
    try:
        servers.spawn([sys.executable, "-c", "pass"], {**os.environ}, tmp_path / "rasa.log")
        for restart in range(RESTARTS):
            [proc] = servers.procs
            proc.wait(timeout=20)
            now[0] += 10
            assert supervisor.check() == "", restart
        [proc] = servers.procs
        proc.wait(timeout=20)
        assert supervisor.check() == "rasa"  # the sixth stop within five minutes
        now[0] += RESTART_WINDOW  # the earlier ones are long past: started again
        assert supervisor.check() == ""
    finally:
        servers.stop()
