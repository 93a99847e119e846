import shutil
import sys
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from servers import MODEL, Servers, free_port  # noqa: E402

from musaed import seed, store  # noqa: E402


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """A real Rasa server and action server on free loopback ports."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test does it for you)")
    db_file = tmp_path_factory.mktemp("db") / "musaed.db"
    seed.seed(store.open_db(db_file))
    s = Servers(
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path_factory.mktemp("server-logs"),
        env={"MUSAED_DB": str(db_file)},
    ).start()
    s.db_file = db_file
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fresh_records(request):
    """Each end-to-end test starts from the demo records, with no requests, codes or
    identity locks left by another test (a person may have one open request per
    service and three codes in 15 minutes: tests must not spend each other's)."""
    for name in ("servers", "bot"):
        if name in request.fixturenames:
            seed.seed(store.open_db(request.getfixturevalue(name).db_file))


class Conversation:
    """One user talking to the bot over Rasa's REST channel."""

    def __init__(self, url: str, token: str = "") -> None:
        self.url = f"{url}/webhooks/rest/webhook"
        self.sender = f"test-{uuid.uuid4().hex[:12]}"
        # The conversation the REST channel files this sender's messages under.
        self.conversation_id = f"rest:{self.sender}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def say(self, text: str) -> list:
        r = requests.post(self.url, json={"sender": self.sender, "message": text},
                          headers=self.headers, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def chat(servers):
    return Conversation(servers.url)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download).

    Module-scoped: Playwright's sync API holds an event loop while it runs,
    which the async tests of other modules must not meet.
    """
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("chromium is missing: `make test` installs Debian's chromium (scripts/ensure-chromium)")
    with sync_playwright() as p:
        # The flags keep Chromium off the network it cannot reach here.
        b = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()
