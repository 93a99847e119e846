"""A new service is its catalogue entry, its NLU examples and `make rules`: shown end to end.

In a copy of the project, a throwaway service is added the way the README says
(an entry in musaed/catalogue.yml, examples in data/nlu/<service>.yml, then
`python -m scripts.rasa_files`), a model is trained from the copy, and the
copy's servers are walked over REST: the new service's guide, and, in the
middle of another service's request, the offer to switch to it. Nothing else
of the copy is touched, so a list of services kept by hand anywhere would
show here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from musaed import catalogue

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "craftsman_register"
ENTRY = {
    "name": {"ar": "سجل الحرفيين", "en": "Craftsman Register"},
    "summary": {"ar": "تسجيل الحرفي في سجل الحرفيين عبر أبشر.", "en": "Registering a craftsman in the register."},
    "audience": "citizen",
    "requestable": False,
    "path": [{"ar": "أبشر أفراد", "en": "Absher Individuals"}, {"ar": "سجل الحرفيين", "en": "Craftsman Register"}],
    "steps": [
        {"ar": "سجّل الدخول إلى أبشر.", "en": "Log in to Absher."},
        {"ar": "اختر «سجل الحرفيين» واتبع التعليمات.", "en": "Choose “Craftsman Register” and follow the steps."},
    ],
    "requirements": [],
    "fees": [],
    "delivery": [],
    "notes": [],
}
EXAMPLES = [
    "ابي اسجل في سجل الحرفيين",
    "كيف اسجل نفسي حرفي",
    "سجل الحرفيين وش خطواته",
    "انا نجار وابي اسجل في سجل الحرفيين",
    "طريقة التسجيل كحرفي",
    "ابغى اطلع سجل حرفي",
    "وين القى سجل الحرفيين في ابشر",
    "تسجيل الحرفيين",
    "انا حداد ابي سجل حرفي",
    "ودي اسجل بسجل الحرفيين",
    "كيف اصير مسجل في سجل الحرفيين",
    "سجل حرفي جديد",
    "how do I join the craftsman register",
    "craftsman register",
    "register as a craftsman",
    "i am a carpenter and want to register as craftsman",
    "sijil al harafiyeen",
    "abi asajel fi sijil el 7arafiyeen",
]
COPIED = ["actions", "channels", "components", "data", "musaed", "rasa_patches", "scripts", "stores", "web"]
COPIED_FILES = ["config.yml", "domain.yml", "endpoints.yml", "credentials.yml"]


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """The project with the throwaway service added, and a model trained from it."""
    where = tmp_path_factory.mktemp("project")
    skip = shutil.ignore_patterns("__pycache__", "node_modules", "*.db*")
    for name in COPIED:
        shutil.copytree(ROOT / name, where / name, ignore=skip)
    for name in COPIED_FILES:
        shutil.copy2(ROOT / name, where / name)
    path = where / "musaed" / "catalogue.yml"
    # Appended under `services:` (the catalogue's last section), as a person would add it.
    entry = yaml.safe_dump({SERVICE: ENTRY}, allow_unicode=True, sort_keys=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + "".join(f"  {line}\n" for line in entry.splitlines()))
    nlu = {"version": "3.1", "nlu": [{"intent": SERVICE, "examples": "".join(f"- {e}\n" for e in EXAMPLES)}]}
    (where / "data" / "nlu" / f"{SERVICE}.yml").write_text(yaml.safe_dump(nlu, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(where), "RASA_TELEMETRY_ENABLED": "false"}
    run = dict(cwd=where, env=env, check=True, capture_output=True, text=True)
    subprocess.run([sys.executable, "-m", "scripts.rasa_files"], **run)
    subprocess.run([sys.executable, "-m", "scripts.rasa_files", "--check"], **run)
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "rasa"), "train", "--fixed-model-name", "musaed", "--out", "models"], timeout=1200, **run
    )
    return where, env


@pytest.fixture(scope="module")
def copied_bot(copy):
    """The copy's own servers (its catalogue, its actions), on free ports."""
    where, env = copy
    start = (
        "import json, sys, time\n"
        "from scripts.servers import Servers, free_port\n"
        "s = Servers(rasa_port=free_port(), action_port=free_port(), env={'MUSAED_DB': sys.argv[1]}).start()\n"
        "print(json.dumps({'url': s.url}), flush=True)\n"
        "sys.stdin.read()\n"
        "s.stop()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", start, str(where / "musaed.db")],
        cwd=where,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = json.loads(proc.stdout.readline())["url"]
        yield url
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def say(url: str, sender: str, text: str) -> str:
    r = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
    r.raise_for_status()
    return "\n".join(m.get("text") or "" for m in r.json())


def test_the_new_service_is_explained(copied_bot):
    cat = catalogue.load()
    said = say(copied_bot, uuid.uuid4().hex, "كيف اسجل في سجل الحرفيين؟")
    assert ENTRY["name"]["ar"] in said and ENTRY["steps"][1]["ar"] in said and cat.labels["steps"] in said


def test_named_in_the_middle_of_a_request_it_gets_the_offer_to_switch(copied_bot):
    cat = catalogue.load()
    sender = uuid.uuid4().hex
    say(copied_bot, sender, "ابي اجدد هويتي")
    assert "رقم هويتك" in say(copied_bot, sender, "نعم")  # the request form asks for the id
    offer = say(copied_bot, sender, "ابي اسجل في سجل الحرفيين")
    expected = cat.labels["switch_offer"].format(current=cat.services["renew_national_id"].name, other="X")
    assert expected.split("X")[0] in offer and ENTRY["name"]["ar"] in offer, offer
    assert ENTRY["steps"][1]["ar"] in say(copied_bot, sender, f"/{SERVICE}")  # the offer's button switches
