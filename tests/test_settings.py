"""musaed/settings.py: every environment variable read in one place, read when asked, secrets never shown."""

import json
import re
from pathlib import Path

import pytest

from care import cli
from musaed import settings

ROOT = Path(__file__).resolve().parent.parent
# Where the project's own Python lives (not the virtualenv, node_modules, models or results).
CODE_DIRS = (
    "actions",
    "bench",
    "care",
    "channels",
    "components",
    "musaed",
    "rasa_patches",
    "scripts",
    "stores",
    "tests",
    "web",
)
# What `make cluster` writes to <dir>/env for whoever uses the cluster: no process reads them from its environment.
CLUSTER_OUTPUTS = {
    "MUSAED_FRONT_URL",
    "MUSAED_REDIS_URL",
    "MUSAED_RASA_URLS",
    "MUSAED_ACTION_URLS",
    "MUSAED_ACTIONS_FRONT_URL",
    "MUSAED_LOGS",
}
ENVIRONMENT_READ = re.compile(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[[^\]]+\](?!\s*=)")
# components/sentence_encoder.py sets OMP_NUM_THREADS around a library's start and puts back what was there.
MAY_READ = {Path("components/sentence_encoder.py"), Path("musaed/settings.py")}


def python_files():
    for top in CODE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "node_modules" not in path.parts:
                yield path


def test_the_readme_table_is_made_from_the_settings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.BEGIN in readme and settings.END in readme, "README.md has no settings block"
    assert settings.with_table(readme) == readme, "README.md's settings table is out of date: run `make settings`"


def test_no_module_but_settings_reads_the_environment():
    readers = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in python_files()
        if path.relative_to(ROOT) not in MAY_READ
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if ENVIRONMENT_READ.search(line)
    ]
    assert readers == []


def test_every_variable_named_in_the_code_is_declared_once():
    declared = settings.by_name()
    assert len(declared) == len(settings.ALL)
    named = set()
    for path in python_files():
        named |= set(
            re.findall(r"[\"']((?:MUSAED|TELEGRAM|WHATSAPP)_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8"))
        )
    assert named - CLUSTER_OUTPUTS - set(declared) == set()
    for s in settings.ALL:
        assert s.description.strip() and s.type.strip(), s.name
        assert not (s.secret and s.default), f"{s.name}: a secret has no default value"


def test_a_setting_is_read_when_asked_and_empty_counts_as_unset(monkeypatch):
    monkeypatch.delenv("MUSAED_SENDER_RATE", raising=False)
    assert settings.SENDER_RATE.get() == "20/10s,60/60s" and settings.SENDER_RATE.given() is None
    monkeypatch.setenv("MUSAED_SENDER_RATE", "5/1s")
    assert settings.SENDER_RATE.get() == "5/1s" == settings.SENDER_RATE.given()
    monkeypatch.setenv("MUSAED_SENDER_RATE", "")
    assert settings.SENDER_RATE.get() == "20/10s,60/60s" and settings.SENDER_RATE.given() is None
    # A mapping of one's own is read instead of the environment.
    assert settings.MAX_MESSAGE_BYTES.integer({"MUSAED_MAX_MESSAGE_BYTES": "100"}) == 100
    assert settings.MAX_MESSAGE_BYTES.integer({}) == 4096


@pytest.mark.parametrize("as_json", [False, True])
def test_musaed_care_settings_prints_each_one_and_hides_secrets(monkeypatch, capsys, as_json):
    for s in settings.ALL:
        monkeypatch.delenv(s.name, raising=False)
    monkeypatch.setenv("MUSAED_REST_TOKEN", "do-not-print-me")
    monkeypatch.setenv("MUSAED_PUBLIC_URL", "https://bot.example.sa")
    assert cli.main(["settings", "--json"] if as_json else ["settings"]) == 0
    out = capsys.readouterr().out
    assert "do-not-print-me" not in out
    if as_json:
        rows = {row["name"]: row for row in json.loads(out)}
        assert set(rows) == set(settings.by_name())
        assert rows["MUSAED_REST_TOKEN"]["value"] == "set" and rows["MUSAED_SESSION_SECRET"]["value"] == "unset"
        assert (
            rows["MUSAED_PUBLIC_URL"]["value"] == "https://bot.example.sa" and not rows["MUSAED_PUBLIC_URL"]["default"]
        )
        assert rows["MUSAED_DB"] == {**rows["MUSAED_DB"], "value": "var/musaed.db", "default": True}
    else:
        lines = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()}
        assert set(lines) == set(settings.by_name())
        assert lines["MUSAED_REST_TOKEN"] == "set (secret)" and lines["MUSAED_CARE_TOKENS"] == "unset (secret)"
        assert lines["MUSAED_PUBLIC_URL"] == "https://bot.example.sa"
        assert lines["MUSAED_RETENTION"] == f"{settings.RETENTION.default} (default)"


def test_the_readme_table_never_shows_a_secrets_default():
    table = settings.table()
    for s in settings.ALL:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{s.name}` |"))
        if s.secret:
            assert row.split(" | ")[1] == "secret"
