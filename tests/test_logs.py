"""No one-time code and no full national id in any log, even with both servers at debug level.

At debug level Rasa and rasa-sdk log what people type and the trackers they
pass around; musaed/logsafe.py rewrites every record before it is written.
"""

import pytest

from musaed import logsafe, seed, store

from conftest import Conversation
from servers import Servers, free_port

pytestmark = pytest.mark.e2e
ID = seed.ids()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("code 482913 typed", "code ****** typed"),
        ("رمزي ٤٨٢٩١٣", "رمزي ******"),
        ("id 1010000014 and ١٠١٠٠٠٠٠١٤", "id 1******014 and 1******014"),
        (
            "MSD-12345678, port 5005, 1234567, 2026-12-01 21:16:58",
            "MSD-12345678, port 5005, 1234567, 2026-12-01 21:16:58",
        ),
    ],
)
def test_redact_hides_codes_and_ids_and_nothing_else(text, expected):
    assert logsafe.redact(text) == expected


def test_a_whole_flow_at_debug_level_logs_no_code_and_no_full_id(tmp_path):
    db_file = tmp_path / "musaed.db"
    seed.seed(store.open_db(db_file))
    servers = Servers(
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path / "logs",
        env={"MUSAED_DB": str(db_file)},
        debug=True,
    ).start()
    try:
        chat = Conversation(servers.url)
        chat.say("ضاعت هويتي")
        chat.say("نعم")
        chat.say(ID["fahd"])
        code = store.latest_code(store.open_db(db_file), ID["fahd"])["code"]
        chat.say("٠٠٠٠٠٠" if code != "000000" else "١١١١١١")  # a wrong one, in Arabic-Indic digits
        assert "ملخص الطلب" in "\n".join(m.get("text", "") for m in chat.say(code))
        assert any("MSD-" in m.get("text", "") for m in chat.say("نعم"))
    finally:
        servers.stop()
    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log")}
    assert "DEBUG" in logs["rasa.log"] and "DEBUG" in logs["actions.log"]  # really at debug level
    assert "******" in logs["rasa.log"]  # what was typed reached the log, redacted
    for name, text in logs.items():
        assert code not in text, name
        assert ID["fahd"] not in text, name
