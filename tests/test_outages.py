"""Outages get words (issue 18): the action server down, or the database locked by
another writer, gets a short reply in the person's language, and the
conversation goes on where it was once the service is back.

Servers of their own (this module stops and restarts the action server).
"""

import sqlite3

import pytest
from test_request_flows import ID, joined, latest_code

from musaed import catalogue, store
from scripts.servers import wait_until_up

from conftest import Conversation, start_servers

pytestmark = pytest.mark.e2e
AR, EN = catalogue.load("ar"), catalogue.load("en")


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """Servers of this module's own: it stops and restarts their action server."""
    s = start_servers(tmp_path_factory, "outage")
    yield s
    s.stop()


def test_the_action_server_down_mid_form_gets_words_and_the_form_goes_on_after(own):
    chat = Conversation(own.url)
    chat.say("ابي اجدد هويتي الوطنية")
    assert "رقم هويتك" in joined(chat.say("نعم"))
    own.stop_actions()
    try:
        assert joined(chat.say(ID["khalid"])) == AR.labels["unavailable"]
        # English gets it in English; what needs no action still answers.
        assert joined(chat.say("how do i renew my id?")) == EN.labels["unavailable"]
        assert joined(chat.say("السلام عليكم"))
    finally:
        own.start_actions()
        wait_until_up(f"http://127.0.0.1:{own.action_port}/health", own.actions, 60)
    # The form is where it was: the id is asked for, and taken now.
    sent = joined(chat.say(ID["khalid"]))
    assert "رمز تحقق" in sent, sent
    assert "ملخص الطلب" in joined(chat.say(latest_code(own, ID["khalid"])))
    # Nothing was made on the way: the request waits for the person's yes.
    db = store.open_db(own.db_file)
    assert [
        r for r in store.requests_visible_to(db, ID["khalid"]) if r["conversation_id"] == f"rest:{chat.sender}"
    ] == []


def test_a_database_locked_by_another_writer_gets_words_and_nothing_half_made(own):
    chat = Conversation(own.url)
    chat.say("ضاعت هويتي")
    chat.say("نعم")
    other = sqlite3.connect(own.db_file, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the database past the store's timeout
    try:
        assert joined(chat.say(ID["fahd"])) == AR.labels["unavailable"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "رمز تحقق" in joined(chat.say(ID["fahd"]))


def test_the_outage_is_logged_once_with_its_cause(own):
    log = (own.log_dir / "rasa.log").read_text(errors="replace")
    assert "No reply to a message in rest:test-" in log
    assert "Failed to execute custom action" in log or "Encountered an exception" in log
