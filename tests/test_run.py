"""`make run` (scripts/run.py): REST without a token stays on loopback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.run import exposure_refusal

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
