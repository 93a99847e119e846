"""No one-time code, full national id or phone number in any log, and one record one line.

At debug level Rasa and rasa-sdk log what people type and the trackers they
pass around; at any level a UserWarning quotes a malformed ``/inform{…}``
payload. musaed/logsafe.py rewrites every record (warnings included) before
it is written, and escapes control characters so a message cannot forge a line.
"""

import re
import subprocess
import sys
import textwrap

import document_samples as samples
import pytest
import requests

from musaed import logsafe, seed, store
from musaed.arabic import to_ascii_digits
from scripts.servers import Servers, free_port

from conftest import Conversation

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


@pytest.mark.parametrize(
    "text, expected",
    [
        # As the bot accepts them: in groups, with spaces or dashes, in any digit script.
        ("my id 1010 000 014 ok", "my id 1******014 ok"),
        ("1010-000-014", "1******014"),
        ("١٠١٠ ٠٠٠ ٠١٤", "1******014"),
        ("code 659 185.", "code ******."),
        ("٦٥٩ ١٨٥", "******"),
        ("659-185", "******"),
        ("1010 000 014 659 185", "1******014 ******"),
        # Mobile numbers.
        ("call 0551234567", "call 05******67"),
        ("966551234567", "9665******67"),
        ("+966 55 123 4567", "+9665******67"),
        ("00966551234567", "009665******67"),
        # JSON writers escape Arabic-Indic digits.
        ('"\\u0666\\u0665\\u0669\\u0661\\u0668\\u0665"', '"******"'),
        # Log lines' own numbers stay: times, dates, ports, sizes, versions, tracking numbers.
        ("2026-12-05 22:28:19,123 INFO 200 1234 took 0.25 s", "2026-12-05 22:28:19,123 INFO 200 1234 took 0.25 s"),
        ("[2026-12-05 22:28:19 +0000] pid 12345 v3.6.21 MSD-12345678", None),
    ],
)
def test_redact_reads_numbers_as_the_bot_does(text, expected):
    assert logsafe.redact(text) == (text if expected is None else expected)


def test_escape_keeps_one_record_on_one_line_and_in_order():
    assert logsafe.clean("hi\n2026-12-05 INFO forged\r\x1b[2J\u202egnp.exe\u2066") == (
        "hi\\n2026-12-05 INFO forged\\r\\u001b[2J\\u202egnp.exe\\u2066"
    )
    assert logsafe.clean("مرحبا\tبك") == "مرحبا\\tبك"


PROCESS = textwrap.dedent(
    """
    import logging, sys, warnings
    from musaed import logsafe
    logsafe.install()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
    warnings.warn('Failed to parse /inform{"national_id": "1010 000 014", "otp": "659-185"}')
    logging.getLogger("some.library").info("user said %r", "hi\\n2026-12-05 INFO root: forged 0551234567")
    access = logging.StreamHandler(sys.stdout)
    access.setFormatter(logging.Formatter("ACCESS %(request)s"))
    logging.getLogger("sanic.access").addHandler(access)
    logging.getLogger("sanic.access").propagate = False
    logging.getLogger("sanic.access").info("", extra={"request": "GET /?id=1010000014"})
    try:
        raise ValueError("bad id 1010-000-014\\nINFO root: forged in a traceback")
    except ValueError:
        logging.getLogger("rasa").exception("failed for ٦٥٩ ١٨٥")
    """
)


def test_every_record_of_a_process_is_masked_and_one_line_warnings_included(tmp_path):
    """A process with logsafe installed: a warning, another library's logger, an extra
    field and a traceback — nothing readable, and nothing that starts a line of its own."""
    out = subprocess.run(
        [sys.executable, "-c", PROCESS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    compact = re.sub(r"[\s\-]", "", to_ascii_digits(text))
    for secret in ("1010000014", "659185", "0551234567"):
        assert secret not in compact, text
    lines = text.splitlines()
    assert lines[0].startswith("WARNING py.warnings: ") and "UserWarning" in lines[0] and "1******014" in lines[0]
    assert "******" in lines[0]
    assert any(line.startswith("INFO some.library: user said") and "forged 05******67" in line for line in lines)
    # A record starts at the margin; a traceback's lines are indented, the forged one too.
    assert not any(line.startswith(("2026-12-05", "INFO root")) for line in lines), text
    assert any(line.startswith("ERROR rasa: failed for ******") for line in lines)
    assert "ACCESS GET /?id=1******014" in lines
    assert any(line.startswith("  ") and "forged in a traceback" in line for line in lines)


def seeded_servers(tmp_path, debug: bool) -> Servers:
    """Both servers on a seeded database of their own, logging into tmp_path/logs."""
    db_file = tmp_path / "musaed.db"
    seed.seed(store.open_db(db_file))
    return Servers(
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=tmp_path / "logs",
        env={"MUSAED_DB": str(db_file)},
        debug=debug,
    ).start()


def test_a_whole_flow_at_debug_level_logs_no_code_and_no_full_id(tmp_path):
    servers = seeded_servers(tmp_path, debug=True)
    try:
        chat = Conversation(servers.url)
        chat.say("ضاعت هويتي")
        chat.say("نعم")
        chat.say(ID["fahd"])
        code = store.latest_code(store.open_db(tmp_path / "musaed.db"), ID["fahd"])["code"]
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


# Messages that reach the logs at the default level too: malformed payloads (a UserWarning
# quotes them whole), ids, codes and phones typed in groups, and a line forged after a newline.
TYPED = [
    '/inform{"national_id": "1010000014", "otp": "659185", "phone": "0551234567"}',
    '/inform{"national_id": "1010 000 014"} 659 185',
    '/inform{"national_id": "١٠١٠-٠٠٠-٠١٤", bad',
    "1010-000-014",
    "٦٥٩ ١٨٥",
    "جوالي 966551234567",
    "/nosuchintent\n2026-12-05 22:28:25 INFO     rasa.core.processor  - FORGED by a person",
]
SECRETS = ("1010000014", "659185", "0551234567", "966551234567")


@pytest.mark.parametrize("debug", [False, True], ids=["default-level", "debug-level"])
def test_what_people_type_reaches_no_log_readable_or_as_a_line_of_its_own(tmp_path, debug):
    servers = seeded_servers(tmp_path, debug=debug)
    try:
        for text in TYPED:
            r = requests.post(
                f"{servers.url}/webhooks/rest/webhook", json={"sender": "logs-test", "message": text}, timeout=60
            )
            assert r.status_code == 200, r.text
    finally:
        servers.stop()
    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log")}
    rasa = logs["rasa.log"]
    # The warnings reached the log (through logging), masked.
    assert "UserWarning: Failed to parse arguments" in rasa and "1******014" in rasa, rasa[-3000:]
    assert "FORGED by a person" in rasa  # the forged text was logged, inside its record
    for name, text in logs.items():
        compact = re.sub(r"[\s\-]", "", to_ascii_digits(text))
        for secret in SECRETS:
            assert secret not in compact, (name, secret)
        for line in text.splitlines():
            assert not line.startswith("2026-12-05 22:28:25"), (name, line)
            assert "\x1b[2J" not in line


def test_a_documents_metadata_reaches_no_log_and_no_transcript_at_debug_level(tmp_path):
    """Issue 31: of a document, the logs and the tracker store hold its type and size at most;
    never what its file says (the camera, the GPS position, a comment), its hash or its file name."""
    servers = seeded_servers(tmp_path, debug=True)
    try:
        chat = Conversation(servers.url)
        chat.say("سجل الاسرة تمزق ابي بدل تالف")
        chat.say("نعم")
        chat.say(ID["khalid"])
        chat.say(store.latest_code(store.open_db(tmp_path / "musaed.db"), ID["khalid"])["code"])
        chat.say("بدل تالف")
        assert any("✅" in m.get("text", "") for m in chat.send_file(samples.photo()))
        assert any("✅" in m.get("text", "") for m in chat.send_file(samples.scan_pdf()))
    finally:
        servers.stop()
    rows = list(store.open_db(tmp_path / "musaed.db").query("SELECT * FROM documents"))
    assert len(rows) == 2
    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log")}
    assert "DEBUG" in logs["rasa.log"] and "JPEG · " in logs["rasa.log"]  # at debug level; its type and size
    # The tracker store, with its write-ahead log.
    stored = sorted(servers.tracker_db.parent.glob(servers.tracker_db.name + "*"))
    trackers = b"".join(f.read_bytes() for f in stored).decode("utf-8", errors="replace")
    assert "musaed_title" in trackers and "JPEG" in trackers  # what a transcript shows of it: type and size
    secrets = [samples.CAMERA, samples.COMMENT.decode(), "GPSInfo", *(r["sha256"] for r in rows)]
    secrets += [r["stored_name"] for r in rows]
    for name, text in {**logs, "trackers.db": trackers}.items():
        for secret in secrets:
            assert secret not in text, (name, secret)
