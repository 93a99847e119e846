"""Customer care: answer lookup, request desk, conversation review, the API, the CLI and the page.

Unit tests run the help desk (musaed/help_desk.py) on a seeded temporary
database (the conversation reader has its own, tests/test_conversation_reader.py);
the e2e ones drive the real model, the real Rasa and action servers (the `servers` fixture), the care API in a
subprocess and its page in headless Chromium.
"""

import json
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import requests as http

from care import auth
from care.server import make_app
from musaed import catalogue, help_desk, seed, store

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "musaed.tar.gz"
CLI = ROOT / ".venv" / "bin" / "musaed-care"
SHOTS = ROOT / "results" / "care"
CAT = catalogue.load()
ID = seed.ids()
TODAY = date(2026, 11, 23)
TRACKING = re.compile(r"MSD-\d{8}")
TOKENS = {"huda": "tok-huda-7f3a9c2e51", "omar": "tok-omar-0b8d44e6a2"}
TOKENS_SPEC = ",".join(f"{n}:{t}" for n, t in TOKENS.items())
e2e = pytest.mark.e2e


def as_agent(name="huda", **env):
    """The command line's environment for an agent: the agents' tokens and this one's."""
    return {"MUSAED_CARE_TOKENS": TOKENS_SPEC, "MUSAED_CARE_TOKEN": TOKENS[name], **env}


def first_step(service_id: str) -> str:
    return f"1. {CAT.services[service_id].steps[0]}"


# -- answer lookup ---------------------------------------------------------------


def test_a_confident_service_intent_gets_the_bots_answer_from_the_catalogue():
    result = help_desk.answer(
        [
            {"name": "report_lost_id", "confidence": 0.97},
            {"name": "renew_national_id", "confidence": 0.02},
            {"name": "thank", "confidence": 0.01},
        ]
    )
    assert result["matched"] and result["service"] == "report_lost_id"
    assert result["confidence"] == pytest.approx(0.97)
    assert [s["id"] for s in result["services"]] == ["report_lost_id", "renew_national_id"]
    assert result["services"][0]["name"] == CAT.services["report_lost_id"].name
    # The same text the bot gives: the how-to answer, then fees and delivery.
    for text in (CAT.howto("report_lost_id"), CAT.fees("report_lost_id"), CAT.delivery("report_lost_id")):
        assert text in result["text"]
    assert first_step("report_lost_id") in result["text"]
    assert result["answer"]["requirements"] == CAT.requirements("report_lost_id")
    assert result["nearest"] == []


@pytest.mark.parametrize(
    "ranking, top",
    [
        # A service on top, but not confident.
        (
            [
                {"name": "renew_national_id", "confidence": 0.41},
                {"name": "digital_id", "confidence": 0.3},
                {"name": "greet", "confidence": 0.2},
            ],
            "renew_national_id",
        ),
        # Small talk or out of scope on top.
        (
            [
                {"name": "out_of_scope", "confidence": 0.93},
                {"name": "digital_id", "confidence": 0.04},
                {"name": "renew_national_id", "confidence": 0.02},
            ],
            "out_of_scope",
        ),
        # The fallback the bot answers with "not understood": the intent it replaced is named.
        (
            [
                {"name": "nlu_fallback", "confidence": 0.45},
                {"name": "thank", "confidence": 0.28},
                {"name": "digital_id", "confidence": 0.2},
                {"name": "renew_national_id", "confidence": 0.1},
            ],
            "thank",
        ),
    ],
)
def test_a_question_that_matches_nothing_well_says_so_and_lists_the_nearest(ranking, top):
    result = help_desk.answer(ranking)
    assert not result["matched"] and result["service"] is None and result["answer"] is None
    assert [s["id"] for s in result["nearest"]] == [r["name"] for r in ranking if r["name"] in CAT.services][:3]
    assert result["text"].startswith(CAT.labels["care_not_matched"].split("(")[0])
    assert top in result["text"].splitlines()[0]
    for s in result["nearest"]:
        assert s["name"] in result["text"]
    assert not any(step in result["text"] for s in CAT.services.values() for step in s.steps)


def test_the_threshold_is_a_parameter():
    ranking = [{"name": "digital_id", "confidence": 0.6}]
    assert help_desk.answer(ranking)["matched"]
    assert not help_desk.answer(ranking, threshold=0.7)["matched"]
    assert not help_desk.answer([])["matched"]


# -- request desk ------------------------------------------------------------------


@pytest.fixture
def db(tmp_path):
    db = store.open_db(tmp_path / "musaed.db")
    seed.seed(db, today=TODAY)
    return db


def new_request(db, service="renew_resident_id", applicant="khalid", beneficiary="amal", conversation="c1"):
    request, _ = store.create_request(
        db, service_id=service, applicant_id=ID[applicant], beneficiary_id=ID[beneficiary], conversation_id=conversation
    )
    return request["tracking_number"]


def test_find_requests_by_tracking_number_and_by_national_id_with_history(db):
    wife = new_request(db)
    own = new_request(db, service="report_lost_id", beneficiary="khalid")
    other = new_request(db, service="report_lost_id", applicant="sara", beneficiary="sara", conversation="c2")

    [found] = help_desk.find_requests(db, tracking_number=wife.lower())
    assert found["tracking_number"] == wife and found["status"] == "submitted"
    assert found["status_text"] == CAT.status_text("submitted")
    assert found["service"] == CAT.services["renew_resident_id"].name
    assert found["applicant_id"] == ID["khalid"] and found["beneficiary_name"] == "أمل حسين"  # ids in full
    assert [(e["status"], e["actor"]) for e in found["history"]] == [("submitted", ID["khalid"])]
    # Arabic-Indic digits, and only the digits.
    arabic = wife[4:].translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert [r["tracking_number"] for r in help_desk.find_requests(db, tracking_number=arabic)] == [wife]

    # By national id: the head of family sees his own and his dependents' requests.
    assert {r["tracking_number"] for r in help_desk.find_requests(db, national_id=ID["khalid"])} == {wife, own}
    assert [r["tracking_number"] for r in help_desk.find_requests(db, national_id=ID["amal"])] == [wife]
    assert [r["tracking_number"] for r in help_desk.find_requests(db, national_id=ID["sara"])] == [other]
    # Both given: the request only if that person may see it.
    assert help_desk.find_requests(db, tracking_number=other, national_id=ID["khalid"]) == []
    assert help_desk.find_requests(db, tracking_number="MSD-00000001") == []
    with pytest.raises(ValueError):
        help_desk.find_requests(db)


def test_change_status_is_an_event_with_the_agent_and_the_time(db):
    number = new_request(db, service="report_lost_id", beneficiary="khalid")
    changed = help_desk.change_status(db, number, "approved", "huda")
    assert changed["status"] == "approved" and store.get_request(db, number)["status"] == "approved"
    last = store.request_events(db, number)[-1]
    assert last["actor"] == "agent:huda" and last["status"] == "approved" and last["note"] is None
    assert abs(datetime.fromisoformat(last["at"]) - datetime.now(timezone.utc)).total_seconds() < 60

    for status in ("printed", "out_for_delivery", "returned_to_branch", "delivered"):
        help_desk.change_status(db, number, status, "omar")
    assert [e["status"] for e in help_desk.find_requests(db, tracking_number=number)[0]["history"]] == [
        "submitted",
        "approved",
        "printed",
        "out_for_delivery",
        "returned_to_branch",
        "delivered",
    ]


def test_rejecting_needs_a_reason_and_it_is_kept(db):
    number = new_request(db)
    with pytest.raises(help_desk.CareError) as refused:
        help_desk.change_status(db, number, "rejected", "huda", reason="  ")
    assert refused.value.code == "reason_required"
    assert refused.value.message == CAT.labels["care_reason_required"]
    assert store.get_request(db, number)["status"] == "submitted"
    assert len(store.request_events(db, number)) == 1  # nothing written

    changed = help_desk.change_status(db, number, "rejected", "huda", reason="الصورة غير واضحة")
    assert changed["history"][-1]["note"] == "الصورة غير واضحة"
    assert changed["status_text"] == CAT.status_text("rejected")


@pytest.mark.parametrize("status", ["cancelled", "submitted", "teleported", ""])
def test_unknown_or_reserved_statuses_are_refused(db, status):
    number = new_request(db)
    with pytest.raises(help_desk.CareError) as refused:
        help_desk.change_status(db, number, status, "huda")
    assert refused.value.code == "unknown_status"
    assert CAT.status_text("approved") in refused.value.message
    assert store.get_request(db, number)["status"] == "submitted"


def test_a_missing_request_cannot_be_moved(db):
    with pytest.raises(help_desk.CareError) as refused:
        help_desk.change_status(db, "MSD-00000001", "approved", "huda")
    assert refused.value.code == "not_found"
    with pytest.raises(help_desk.CareError):
        help_desk.change_status(db, "not a number", "approved", "huda")


# -- tokens and the API in-process (a stand-in ranker) ------------------------------


def test_tokens_come_from_name_token_pairs():
    assert auth.parse_tokens(" huda:abc , omar:def ") == {"huda": "abc", "omar": "def"}
    assert auth.parse_tokens("") == {}
    for bad in ("huda", "huda:", ":abc", "huda:abc,omar:abc"):
        with pytest.raises(ValueError):
            auth.parse_tokens(bad)
    tokens = {"huda": "abc", "omar": "def"}
    assert auth.agent_for("Bearer def", tokens) == "omar"
    assert auth.agent_for("bearer  abc ", tokens) == "huda"
    for header in (None, "", "Bearer", "Bearer ab", "Basic abc", "abc", "Bearer abcd"):
        assert auth.agent_for(header, tokens) is None


class StandInRanker:
    """The model's parse as care reads it: the intent ranking and the facts ranking."""

    async def parse(self, text):
        return {"intent_ranking": await self.rank(text), "facts": []}

    async def rank(self, text):
        return [{"name": "report_lost_id", "confidence": 0.9}, {"name": "greet", "confidence": 0.1}]


ENDPOINTS = [
    ("GET", "/care/answer?q=ضاعت هويتي"),
    ("GET", "/care/statuses"),
    ("GET", f"/care/requests?national_id={ID['khalid']}"),
    ("GET", "/care/requests?tracking_number=MSD-00000001"),
    ("POST", "/care/requests/MSD-00000001/status"),
    ("GET", "/care/conversations/alice"),
    ("GET", "/care/handovers"),
    ("GET", "/care/fallbacks"),
    # Live handover (issue 28).
    ("GET", "/care/queue"),
    ("GET", "/care/events"),
    ("GET", "/care/stats"),
    *(
        ("POST", f"/care/conversations/web:x/{action}")
        for action in ("claim", "messages", "notes", "pass", "release", "close")
    ),
]
BAD_HEADERS = [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {TOKENS['huda']}"},
    {"Authorization": "Bearer "},
    {"Authorization": TOKENS["huda"]},
]


async def test_the_api_in_process_refuses_without_a_token_and_logs_agents(db, tracker_db, tmp_path, caplog):
    from aiohttp.test_utils import TestClient, TestServer

    number = new_request(db)
    app = make_app(None, tracker_db, TOKENS, db_path=tmp_path / "musaed.db", ranker=StandInRanker())
    async with TestClient(TestServer(app)) as client:
        for method, path in ENDPOINTS:
            for headers in BAD_HEADERS:
                r = await client.request(method, path, headers=headers, json={"status": "approved"})
                assert r.status == 401, (path, headers)
                assert await r.json() == {"error": "unauthorized"}
        page = await client.get("/care/")
        assert page.status == 200 and 'dir="rtl"' in await page.text()
        good = {"Authorization": f"Bearer {TOKENS['omar']}"}
        with caplog.at_level(logging.INFO, logger="care"):
            found = await (await client.get(f"/care/requests?national_id={ID['khalid']}", headers=good)).json()
            assert [r["tracking_number"] for r in found["requests"]] == [number]
            r = await client.post(f"/care/requests/{number}/status", headers=good, json={"status": "rejected"})
            assert r.status == 400 and (await r.json())["error"] == "reason_required"
            r = await client.post(
                f"/care/requests/{number}/status", headers=good, json={"status": "rejected", "reason": "بيانات ناقصة"}
            )
            assert r.status == 200 and (await r.json())["request"]["history"][-1]["actor"] == "agent:omar"
            r = await client.post("/care/requests/MSD-00000001/status", headers=good, json={"status": "approved"})
            assert r.status == 404
            answer = await (await client.get("/care/answer?q=x", headers=good)).json()
            assert answer["service"] == "report_lost_id" and first_step("report_lost_id") in answer["text"]
            assert (await client.get("/care/conversations/nobody", headers=good)).status == 404
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "care")
        assert "agent omar" in logged and f"{number} moved to rejected" in logged
        assert ID["khalid"] not in logged and "1******014" in logged


async def test_the_api_answers_a_conflict_with_409_and_audits_for_supervisors(db, tracker_db, tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    old = new_request(db, service="report_lost_id", beneficiary="khalid")
    help_desk.change_status(db, old, "delivered", "huda")
    new = new_request(db, service="report_lost_id", beneficiary="khalid", conversation="c2")
    app = make_app(
        None, tracker_db, TOKENS, db_path=tmp_path / "musaed.db", ranker=StandInRanker(), supervisors={"huda"}
    )
    async with TestClient(TestServer(app)) as client:
        omar = {"Authorization": f"Bearer {TOKENS['omar']}"}
        r = await client.post(f"/care/requests/{old}/status", headers=omar, json={"status": "approved"})
        body = await r.json()
        assert r.status == 409 and body["error"] == "conflict" and new in body["message"]
        assert store.get_request(db, old)["status"] == "delivered"
        assert (await client.get("/care/conversations/alice", headers=omar)).status == 200
        # The audit: for supervisors only.
        assert (await client.get("/care/audit", headers=omar)).status == 403
        huda = {"Authorization": f"Bearer {TOKENS['huda']}"}
        r = await client.get(f"/care/audit?national_id={ID['khalid']}", headers=huda)
        actions = [(row["agent"], row["action"]) for row in (await r.json())["audit"]]
        assert ("omar", "change_status_refused") in actions and ("huda", "change_status") in actions
        assert store.care_audit(db, limit=1)[0]["action"] == "read_audit"


# -- the CLI against the real trained model -----------------------------------------------


def run_cli(*args, env=None, timeout=300):
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def cli_answers():
    """`musaed-care ask --json` for a clear and a nonsense question, run side by side."""
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: `.venv/bin/pip install -e .`")
    questions = {"lost": "ضاعت هويتي", "nonsense": "زززز قققق"}
    env = {**os.environ, **as_agent(MUSAED_CARE_URL="http://127.0.0.1:9")}  # no server: the model here
    procs = {
        k: subprocess.Popen(
            [str(CLI), "ask", q], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        for k, q in questions.items()
    }
    out = {}
    for k, p in procs.items():
        stdout, stderr = p.communicate(timeout=400)
        assert p.returncode == 0, stderr[-3000:]
        out[k] = stdout
    return out


def test_cli_ask_answers_with_the_best_service_and_its_steps(cli_answers):
    text = cli_answers["lost"]
    assert text.splitlines()[0].startswith(CAT.labels["care_best"].split("{")[0] + CAT.services["report_lost_id"].name)
    assert first_step("report_lost_id") in text
    assert CAT.fees("report_lost_id") in text and CAT.delivery("report_lost_id") in text


def test_cli_ask_says_when_nothing_matches_and_lists_the_nearest(cli_answers):
    text = cli_answers["nonsense"]
    assert text.startswith(CAT.labels["care_not_matched"].split("(")[0])
    assert sum(1 for line in text.splitlines() if line.startswith("• ")) == 3
    assert not any(step in text for s in CAT.services.values() for step in s.steps)


def test_cli_request_status_and_json(db, tmp_path):
    number = new_request(db, service="report_lost_id", beneficiary="khalid")
    env = as_agent("huda", MUSAED_DB=str(tmp_path / "musaed.db"), MUSAED_CARE_LOG=str(tmp_path / "cli.log"))
    refused = run_cli("status", number, "rejected", env=env)
    assert refused.returncode == 1 and CAT.labels["care_reason_required"] in refused.stderr
    moved = run_cli("status", number, "approved", env=env)
    assert moved.returncode == 0, moved.stderr
    assert CAT.status_text("approved") in moved.stdout and "agent:huda" in moved.stdout
    shown = run_cli("request", "--national-id", ID["khalid"], "--json", env=env)
    [request] = json.loads(shown.stdout)["requests"]
    assert request["status"] == "approved" and request["history"][-1]["actor"] == "agent:huda"
    assert shown.stderr == ""  # only the answer on the terminal; the log (a file) masks ids
    logged = (tmp_path / "cli.log").read_text(encoding="utf-8")
    assert ID["khalid"] not in logged and "1******014" in logged
    assert run_cli("request", "--tracking-number", "MSD-00000001", env=env).returncode == 1


def test_cli_reads_the_tracker_store(tracker_db, tmp_path):
    env = as_agent(MUSAED_TRACKER_DB=str(tracker_db), MUSAED_DB=str(tmp_path / "musaed.db"))
    assert "ابي اكلم موظف" in run_cli("handovers", env=env).stdout
    fallbacks = json.loads(run_cli("fallbacks", "--json", env=env).stdout)["messages"]
    assert fallbacks[-1]["original_intent"]["name"] == "thank"
    transcript = run_cli("conversation", "alice", env=env).stdout
    assert "report_lost_id 98%" in transcript and CAT.labels["offer"] in transcript
    # Riyadh time, named (the store keeps 09:01 UTC).
    assert "[2026-11-23 12:01 (توقيت الرياض)] 👤 ضاعت هويتي" in transcript


def test_cli_shows_a_tapped_button_as_its_title(tracker_db, tmp_path):
    conn = sqlite3.connect(tracker_db)  # alice taps «لا، شكرًا» (/deny) after the offer, on REST
    data = {
        "event": "user",
        "text": "/deny",
        "timestamp": 1,
        "parse_data": {"intent": {"name": "deny", "confidence": 1}},
    }
    conn.execute(
        "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ["alice", "user", 2e9, "deny", None, json.dumps(data)],
    )
    conn.commit()
    conn.close()
    env = as_agent(MUSAED_TRACKER_DB=str(tracker_db), MUSAED_DB=str(tmp_path / "musaed.db"))
    transcript = run_cli("conversation", "alice", env=env).stdout
    assert f"👤 [{CAT.labels['button_no']}]" in transcript and "/deny" not in transcript


# -- the API in a subprocess against the real servers ----------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def care_api(servers, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("care") / "care.log"
    env = {
        **os.environ,
        "MUSAED_DB": servers.env["MUSAED_DB"],
        "MUSAED_CARE_TOKENS": ",".join(f"{n}:{t}" for n, t in TOKENS.items()),
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "care.server",
            "--port",
            str(port),
            "--model",
            str(MODEL),
            "--tracker-db",
            str(servers.tracker_db),
        ],
        cwd=ROOT,
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            pytest.fail(f"care server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if http.get(f"{url}/care/", timeout=2).status_code == 200:
                break
        except http.ConnectionError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"care server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    api = type("CareAPI", (), {})()
    api.url, api.log, api.proc = url, log, proc
    yield api
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def agent(name="huda"):
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def joined(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def latest_code(servers, national_id: str) -> str:
    db = store.open_db(servers.db_file)
    return list(db.query("SELECT code FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1", [national_id]))[
        0
    ]["code"]


@e2e
def test_every_endpoint_refuses_without_a_valid_token(care_api):
    for method, path in ENDPOINTS:
        for headers in BAD_HEADERS:
            r = http.request(method, care_api.url + path, headers=headers, json={"status": "approved"}, timeout=30)
            assert r.status_code == 401, (path, headers)
            assert r.json() == {"error": "unauthorized"}
    page = http.get(f"{care_api.url}/care/", timeout=30)
    assert page.status_code == 200 and 'dir="rtl"' in page.text and ID["khalid"] not in page.text


@e2e
def test_answer_endpoint_uses_the_trained_model(care_api):
    r = http.get(f"{care_api.url}/care/answer", params={"q": "ضاعت هويتي وش اسوي"}, headers=agent(), timeout=60)
    data = r.json()
    assert r.status_code == 200 and data["matched"] and data["service"] == "report_lost_id"
    assert data["confidence"] > 0.5 and data["answer"]["howto"] == CAT.howto("report_lost_id")
    r = http.get(f"{care_api.url}/care/answer", params={"q": "زززز قققق"}, headers=agent(), timeout=60)
    data = r.json()
    assert not data["matched"] and len(data["nearest"]) == 3 and data["top_intent"]["name"] == "nlu_fallback"


@e2e
def test_cli_ask_uses_the_running_care_server_and_prints_only_the_answer(care_api, tmp_path):
    env = as_agent("omar", MUSAED_CARE_URL=care_api.url, MUSAED_CARE_LOG=str(tmp_path / "cli.log"))
    p = run_cli("ask", "ضاعت هويتي", env=env, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr[-2000:]
    assert p.stdout.startswith(CAT.labels["care_best"].split("{")[0] + CAT.services["report_lost_id"].name)
    # The server answered (its log has the lookup), the CLI never loaded the model.
    assert "agent omar: answer lookup → report_lost_id" in care_api.log.read_text()
    assert "loading the model here" not in (tmp_path / "cli.log").read_text()
    # With no server to ask, it loads the model itself, and still prints only the answer.
    env["MUSAED_CARE_URL"] = "http://127.0.0.1:9"  # nothing listens there
    p = run_cli("ask", "ضاعت هويتي", env=env)
    assert p.returncode == 0 and p.stderr == "" and CAT.services["report_lost_id"].name in p.stdout
    assert "loading the model here" in (tmp_path / "cli.log").read_text()


def test_agent_approves_a_request_and_the_person_sees_it_at_once(chat, servers, care_api):
    # The person asks, verifies with a code and confirms over REST.
    assert chat.say("ضاعت هويتي وش اسوي")[-1]["buttons"][0]["payload"] == "/affirm"
    assert "رقم هويتك" in joined(chat.say("نعم"))
    assert "رمز تحقق" in joined(chat.say(ID["khalid"]))
    assert "ملخص الطلب" in joined(chat.say(latest_code(servers, ID["khalid"])))
    number = TRACKING.search(joined(chat.say("نعم"))).group()

    # The agent finds it by national id, with its history, and approves it.
    found = http.get(
        f"{care_api.url}/care/requests", params={"national_id": ID["khalid"]}, headers=agent(), timeout=30
    ).json()["requests"]
    [mine] = [r for r in found if r["tracking_number"] == number]
    assert mine["status"] == "submitted" and mine["applicant_id"] == ID["khalid"]
    assert mine["conversation_id"] == chat.conversation_id
    refused = http.post(
        f"{care_api.url}/care/requests/{number}/status", json={"status": "rejected"}, headers=agent(), timeout=30
    )
    assert refused.status_code == 400 and refused.json()["message"] == CAT.labels["care_reason_required"]
    r = http.post(
        f"{care_api.url}/care/requests/{number}/status", json={"status": "approved"}, headers=agent(), timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.json()["request"]["status_text"] == CAT.status_text("approved")
    last = store.request_events(store.open_db(servers.db_file), number)[-1]
    assert last["status"] == "approved" and last["actor"] == "agent:huda"

    # The person's tracking shows it at once.
    tracking = joined(chat.say(f"وين وصل طلبي {number}"))
    assert number in tracking and CAT.status_text("approved") in tracking

    # The transcript of that conversation: the person's messages with intents, the bot's replies.
    r = http.get(f"{care_api.url}/care/conversations/{chat.conversation_id}", headers=agent("omar"), timeout=30)
    messages = r.json()["messages"]
    users = [m for m in messages if m["role"] == "user"]
    assert users[0]["text"] == "ضاعت هويتي وش اسوي" and users[0]["intent"] == "report_lost_id"
    assert users[0]["confidence"] > 0.5
    assert users[-1]["text"] == f"وين وصل طلبي {number}" and users[-1]["intent"]
    bots = "\n".join(m["text"] or "" for m in messages if m["role"] == "bot")
    assert first_step("report_lost_id") in bots and CAT.status_text("approved") in bots

    # The log says who did what; national ids appear masked, never in full.
    logged = care_api.log.read_text(encoding="utf-8")
    assert f"agent huda: {number} moved to approved" in logged
    assert "1******014" in logged and ID["khalid"] not in logged
    # Whose conversation was read: the person it verified (the slot is encrypted in the
    # tracker store), in full in the audit, masked in the log.
    row = store.care_audit(store.open_db(servers.db_file), agent="omar", limit=1)[0]
    assert (row["action"], row["national_id"], row["subject"]) == (
        "read_conversation",
        ID["khalid"],
        chat.conversation_id,
    )
    assert re.search(r"agent omar: read conversation rest:\S+ of 1\*{6}014 \(\d+ messages\)", logged), logged[-2000:]


@e2e
def test_a_request_for_a_person_appears_in_handovers(servers, care_api):
    from conftest import Conversation

    person = Conversation(servers.url)
    assert CAT.call_centre["phone"] in joined(person.say("ابي اكلم موظف"))
    found = http.get(f"{care_api.url}/care/handovers", headers=agent(), timeout=30).json()["conversations"]
    assert found[0]["sender_id"] == person.conversation_id and found[0]["text"] == "ابي اكلم موظف"
    assert found[0]["intent"] == "request_human"


@e2e
def test_a_message_the_bot_did_not_understand_appears_in_fallbacks(servers, care_api):
    from conftest import Conversation

    person = Conversation(servers.url)
    person.say("زززز قققق")
    found = http.get(f"{care_api.url}/care/fallbacks", headers=agent(), timeout=30).json()["messages"]
    assert found[0]["sender_id"] == person.conversation_id and found[0]["text"] == "زززز قققق"
    assert found[0]["original_intent"]["name"] not in (None, "nlu_fallback")


# -- the agents' page in headless Chromium -------------------------------------------------------


@e2e
def test_agent_page_asks_looks_up_and_lists(browser, care_api, servers):
    from conftest import Conversation

    Conversation(servers.url).say("ابي اكلم موظف")  # something in the handovers list
    new_request(store.open_db(servers.db_file), service="renew_resident_id", conversation="page-test")
    page = browser.new_page(locale="ar-SA", viewport={"width": 1280, "height": 900})
    page.goto(f"{care_api.url}/care/")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert page.locator("#desk").is_hidden()

    # A wrong token: an error, nothing shown, nothing kept.
    page.fill("#token", "not-a-token")
    page.click("#token-save")
    page.wait_for_selector("#auth-error:not([hidden])")
    assert page.locator("#desk").is_hidden()
    assert page.evaluate("sessionStorage.getItem('musaedCareToken')") is None

    page.fill("#token", TOKENS["huda"])
    page.click("#token-save")
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate("sessionStorage.getItem('musaedCareToken')") == TOKENS["huda"]

    page.fill("#ask-q", "ضاعت هويتي")
    page.click("#ask-form button")
    page.wait_for_selector("#answer-text", timeout=60000)
    assert first_step("report_lost_id") in page.inner_text("#answer-text")
    assert page.locator("#ask-result li.best").get_attribute("data-service") == "report_lost_id"

    # Request lookup by national id, with the status form.
    page.fill("#req-nid", ID["khalid"])
    page.click("#req-form button")
    page.wait_for_selector("#req-result .request")
    assert page.locator("#req-result .request").first.locator("select.status option").count() == len(
        help_desk.AGENT_STATUSES
    )

    page.wait_for_selector("#handovers li[data-sender]")
    page.wait_for_selector("#fallbacks li")
    page.reload()  # the token is kept for the session: no second paste
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#ask-q", "ضاعت هويتي")
    page.click("#ask-form button")
    page.wait_for_selector("#answer-text", timeout=60000)
    page.fill("#req-nid", ID["khalid"])
    page.click("#req-form button")
    page.wait_for_selector("#req-result .request")
    # A handed-over conversation opens as a transcript.
    page.locator("#handovers li[data-sender] button").first.click()
    page.wait_for_selector("#transcript .msg.user")
    assert "ابي اكلم موظف" in page.inner_text("#transcript")
    assert page.locator("#transcript .msg.marker").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "page.png"), full_page=True)
    page.close()


@e2e
def test_agent_page_changes_a_status_and_renders_text_not_html(browser, care_api, servers):
    db = store.open_db(servers.db_file)
    number = new_request(
        db,
        service="renew_resident_id",
        applicant="ahmed",
        beneficiary="layla",
        conversation="<img src=x onerror=alert(1)>",
    )
    page = browser.new_page(locale="ar-SA")
    page.goto(f"{care_api.url}/care/")
    page.evaluate(f"sessionStorage.setItem('musaedCareToken', {json.dumps(TOKENS['omar'])})")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#req-number", number)
    page.click("#req-form button")
    card = page.locator(f".request[data-tracking-number='{number}']")
    card.wait_for()
    assert page.locator("#req-result img").count() == 0  # the odd conversation id stays text
    card.locator("select.status").select_option("rejected")
    card.locator("button[type=submit]").click()
    assert store.get_request(db, number)["status"] == "submitted"  # the reason is required
    card.locator("input.reason").fill("جواز السفر منتهي")
    card.locator("button[type=submit]").click()
    page.wait_for_selector(f".request[data-tracking-number='{number}'] .ok")
    assert CAT.status_text("rejected") in page.inner_text(f".request[data-tracking-number='{number}']")
    last = store.request_events(db, number)[-1]
    assert (last["status"], last["actor"], last["note"]) == ("rejected", "agent:omar", "جواز السفر منتهي")
    page.close()


# -- issue 25, item 5: the care audit, the command line's token, people's text, conflicts -----


def audit_rows(db, **where):
    return store.care_audit(db, **where)


def test_every_read_and_change_writes_one_audit_row_saying_whose_record(db, tracker_db):
    import sqlite3

    from conftest import EVENT_INSERT

    number = new_request(db)  # khalid for his wife amal
    # A conversation that verified khalid (as the tracker store keeps its slot).
    conn = sqlite3.connect(tracker_db)
    slot = {"event": "slot", "name": "verified_id", "value": ID["khalid"], "timestamp": 0}
    conn.execute(EVENT_INSERT.format(m="?"), ["alice", "slot", 0, None, "verified_id", json.dumps(slot)])
    conn.commit()
    conn.close()

    help_desk.lookup_requests(db, "huda", national_id=ID["khalid"])
    help_desk.lookup_requests(db, "omar", tracking_number=number.lower())
    help_desk.change_status(db, number, "approved", "omar")
    with pytest.raises(help_desk.CareError):
        help_desk.change_status(db, number, "rejected", "huda")  # no reason: refused, and audited
    assert help_desk.read_conversation(tracker_db, db, "huda", "alice")
    help_desk.read_conversation(tracker_db, db, "huda", "bob")  # verified no one
    help_desk.list_conversations(tracker_db, db, "omar", "handovers")

    rows = [
        (r["agent"], r["action"], r["national_id"], r["subject"], r["detail"])
        for r in reversed(store.care_audit(db, limit=50))
    ]
    assert rows == [
        ("huda", "read_requests", ID["khalid"], number, "1 found"),
        ("omar", "read_requests", ID["khalid"], number, "1 found"),
        ("omar", "change_status", ID["khalid"], number, "submitted -> approved"),
        ("huda", "change_status_refused", ID["khalid"], number, "rejected: reason_required"),
        ("huda", "read_conversation", ID["khalid"], "alice", "6 messages"),
        ("huda", "read_conversation", None, "bob", "2 messages"),
        ("omar", "list_handovers", None, "dave, alice", "2 listed"),
    ]
    for r in store.care_audit(db, limit=50):
        assert abs(datetime.fromisoformat(r["at"]) - datetime.now(timezone.utc)).total_seconds() < 60
    assert [r["action"] for r in store.care_audit(db, national_id=ID["khalid"], agent="omar")] == [
        "change_status",
        "read_requests",
    ]


def test_the_care_audit_is_append_only_on_both_engines(open_store):
    db = open_store()
    store.add_care_audit(db, agent="huda", action="read_requests", national_id=ID["khalid"], subject="MSD-00000001")
    for statement in (
        "UPDATE care_audit SET agent = 'nobody'",
        "DELETE FROM care_audit",
        "DELETE FROM care_audit WHERE agent = 'huda'",
    ) + (("TRUNCATE care_audit",) if store.dialect(db) == "postgresql" else ()):
        with pytest.raises(Exception, match="append-only"):
            with store.transaction(db):
                db.execute(statement)
    [row] = store.care_audit(db)
    assert (row["agent"], row["national_id"]) == ("huda", ID["khalid"])
    assert "005_care_audit" in store.applied_migrations(db)
    # And the store itself offers no way to change or remove a row.
    source = "".join(p.read_text() for p in Path(store.__file__).parent.glob("*.py"))
    assert not re.search(r"(UPDATE|DELETE FROM|TRUNCATE)\s+care_audit", source)


@e2e
def test_the_clusters_app_role_migrates_the_audit_and_cannot_change_it(pg_server):
    """The cluster's servers connect as a role that is no superuser (scripts/backing.py):
    it creates the audit and its triggers, adds rows, and is refused changing them."""
    import uuid

    from scripts.backing import new_password

    name, password = f"care_{uuid.uuid4().hex[:10]}", new_password()
    pg_server.app_role(name, password, [name])
    db = store.open_db(url=pg_server.url_for(name, password, name))
    assert "005_care_audit" in store.applied_migrations(db)
    store.add_care_audit(db, agent="omar", action="read_conversation", national_id=ID["sara"], subject="web:x")
    for statement in ("UPDATE care_audit SET national_id = NULL", "DELETE FROM care_audit", "TRUNCATE care_audit"):
        with pytest.raises(Exception, match="append-only"):
            with store.transaction(db):
                db.execute(statement)
    assert [r["national_id"] for r in store.care_audit(db)] == [ID["sara"]]


def test_a_conflicting_reopen_is_refused_with_a_reason_and_nothing_written(open_store):
    db = open_store()
    seed.seed(db, today=TODAY)
    old = new_request(db, service="report_lost_id", beneficiary="khalid")
    help_desk.change_status(db, old, "delivered", "huda")  # closed
    new = new_request(db, service="report_lost_id", beneficiary="khalid", conversation="c2")  # open again
    events = len(store.request_events(db, old))
    with pytest.raises(help_desk.CareError) as refused:
        help_desk.change_status(db, old, "approved", "omar")  # reopening would make two open
    assert refused.value.code == "conflict" and new in refused.value.message and old in refused.value.message
    assert store.get_request(db, old)["status"] == "delivered"
    assert len(store.request_events(db, old)) == events
    assert store.care_audit(db, limit=1)[0]["action"] == "change_status_refused"
    assert store.care_audit(db, limit=1)[0]["detail"] == "approved: conflict"
    # Once the other one is closed, the old one may be reopened.
    help_desk.change_status(db, new, "rejected", "omar", reason="مكرر")
    assert help_desk.change_status(db, old, "approved", "omar")["status"] == "approved"


def test_the_cli_needs_an_agent_token_and_takes_the_name_from_it(db, tmp_path):
    number = new_request(db, service="report_lost_id", beneficiary="khalid")
    base = {"MUSAED_DB": str(tmp_path / "musaed.db"), "MUSAED_CARE_LOG": str(tmp_path / "cli.log")}
    for env, args in (
        ({**base, "MUSAED_CARE_TOKEN": ""}, ["--agent", "anyone"]),  # today's way: no token
        ({**base, "MUSAED_CARE_TOKENS": TOKENS_SPEC, "MUSAED_CARE_TOKEN": ""}, []),
        ({**base, "MUSAED_CARE_TOKENS": TOKENS_SPEC, "MUSAED_CARE_TOKEN": "tok-huda-wrong"}, []),
        ({**base, "MUSAED_CARE_TOKENS": "", "MUSAED_CARE_TOKEN": TOKENS["huda"]}, []),
        (as_agent("huda", **base), ["--agent", "omar"]),  # a name is not the CLI's to choose
    ):
        p = run_cli("status", number, "approved", *args, env=env)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert store.get_request(db, number)["status"] == "submitted"
    for command in (["request", "--national-id", ID["khalid"]], ["handovers"], ["conversation", "alice"]):
        p = run_cli(*command, env={**base, "MUSAED_CARE_TOKENS": TOKENS_SPEC, "MUSAED_CARE_TOKEN": ""})
        assert p.returncode == 2 and "MUSAED_CARE_TOKEN" in p.stderr and p.stdout == ""
    moved = run_cli("status", number, "approved", env=as_agent("omar", **base))
    assert moved.returncode == 0, moved.stderr
    assert store.request_events(db, number)[-1]["actor"] == "agent:omar"
    assert store.care_audit(db, limit=1)[0]["agent"] == "omar"
    # The audit, for supervisors only.
    refused = run_cli("audit", env=as_agent("omar", MUSAED_CARE_SUPERVISORS="huda", **base))
    assert refused.returncode == 2 and refused.stdout == ""
    shown = run_cli(
        "audit", "--national-id", ID["khalid"], "--json", env=as_agent("huda", MUSAED_CARE_SUPERVISORS="huda", **base)
    )
    assert shown.returncode == 0, shown.stderr
    [change] = [r for r in json.loads(shown.stdout)["audit"] if r["action"] == "change_status"]
    assert (change["agent"], change["subject"], change["detail"]) == ("omar", number, "submitted -> approved")


def test_the_cli_says_a_conflict_plainly(db, tmp_path):
    old = new_request(db, service="report_lost_id", beneficiary="khalid")
    help_desk.change_status(db, old, "delivered", "huda")
    new = new_request(db, service="report_lost_id", beneficiary="khalid", conversation="c2")
    p = run_cli("status", old, "approved", env=as_agent("huda", MUSAED_DB=str(tmp_path / "musaed.db")))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip() == CAT.labels["care_status_conflict"].format(
        tracking_number=old, status=CAT.status_text("approved"), open=new
    )
    assert store.get_request(db, old)["status"] == "delivered"


HOSTILE = ["clear\x1b[2J\x1b]0;pwned\x07 me", "رقم \u202eexe.gpj\u202c هويتي", "C1 \x9b31m csi"]


@pytest.fixture
def hostile_tracker_db(tmp_path):
    """A tracker store whose person typed terminal escapes and bidi overrides."""
    import sqlite3

    from conftest import EVENT_INSERT, EVENTS_TABLE, _user

    path = tmp_path / "hostile.db"
    conn = sqlite3.connect(path)
    conn.execute(EVENTS_TABLE.format(id="INTEGER PRIMARY KEY"))
    for i, text in enumerate(HOSTILE):
        data = {**_user(text, "nlu_fallback", 0.4), "timestamp": 1_700_000_000 + i}
        conn.execute(
            EVENT_INSERT.format(m="?"),
            ["mallory\x1b[31m", "user", data["timestamp"], "nlu_fallback", None, json.dumps(data)],
        )
    conn.commit()
    conn.close()
    return path


def test_the_cli_prints_peoples_text_without_control_characters(hostile_tracker_db, tmp_path):
    env = as_agent(MUSAED_TRACKER_DB=str(hostile_tracker_db), MUSAED_DB=str(tmp_path / "musaed.db"))
    for args in (["conversation", "mallory\x1b[31m"], ["fallbacks"], ["fallbacks", "--json"]):
        p = subprocess.run([str(CLI), *args], capture_output=True, timeout=120, cwd=ROOT, env={**os.environ, **env})
        assert p.returncode == 0, p.stderr
        out = p.stdout
        assert b"\x1b" not in out and b"\x07" not in out and "\x9b".encode() not in out, out
        assert "\u202e".encode() not in out and "\u202c".encode() not in out, out
        text = out.decode("utf-8")
        if "--json" in args:  # the same data, escaped: a program reading it gets the text back
            assert [m["text"] for m in json.loads(text)["messages"]] == list(reversed(HOSTILE))
        else:
            assert "clear␛[2J␛]0;pwned␇ me" in text and "<U+202E>exe.gpj<U+202C>" in text


@e2e
def test_the_page_shows_peoples_text_in_its_own_isolate_without_bidi_controls(browser, care_api, servers):
    from conftest import Conversation

    person = Conversation(servers.url)
    for text in HOSTILE:
        person.say(text)
    page = browser.new_page(locale="ar-SA")
    page.goto(f"{care_api.url}/care/")
    page.evaluate(f"sessionStorage.setItem('musaedCareToken', {json.dumps(TOKENS['huda'])})")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    # The request desk opens the conversation a request was made in.
    number = new_request(
        store.open_db(servers.db_file), applicant="ahmed", beneficiary="layla", conversation=person.conversation_id
    )
    page.fill("#req-number", number)
    page.click("#req-form button")
    page.locator(f".request[data-tracking-number='{number}'] dd button.link").click()
    page.wait_for_selector("#transcript .msg.user")
    said = page.eval_on_selector_all(
        "#transcript .msg.user > bdi.said", "nodes => nodes.map(n => [n.getAttribute('dir'), n.textContent])"
    )
    assert [t for _, t in said] == ["clear␛[2J␛]0;pwned␇ me", "رقم exe.gpj هويتي", "C1 \ufffd31m csi"]
    assert all(d == "auto" for d, _ in said)
    everything = page.evaluate("document.body.textContent")
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200e\u200f\x1b\x9b]", everything)
    page.close()
