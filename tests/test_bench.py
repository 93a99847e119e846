"""The benchmark's load generator, on a short run against the session's real servers.

Checks the shape of what it measures, never speed: speed targets live only
in the benchmark's output (`make bench`).
"""

import pytest

from bench import load

pytestmark = pytest.mark.e2e


async def test_two_concurrent_conversations_run_whole_flows(servers):
    persons = load.people(servers.db_file, 4)
    assert len({p.national_id for p in persons}) == 4  # each conversation is its own person
    result = await load.run_level(
        servers.url, servers.db_file, persons, concurrency=2, duration_s=8, max_conversations=4
    )
    assert result["errors"] == 0, result["error_samples"]
    assert result["concurrency"] == 2
    assert result["messages"] > 0 and result["conversations"] > 0
    assert result["messages_per_s"] > 0
    lat = result["latency"]
    assert lat["count"] == result["messages"]
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    # Every step of the flow was reached: identity, confirmation and tracking included.
    assert set(result["by_step_p50_ms"]) == {
        "guidance",
        "followup",
        "affirm",
        "national_id",
        "otp",
        "confirm",
        "tracking",
    }


def test_a_full_run_rewrites_only_the_latest_section_of_the_figures(tmp_path):
    from bench import report

    readme = tmp_path / "README.md"
    before = (
        "# Figures\n\nintro\n\n" + report.README_BEGIN + "\nold table\n" + report.README_END + "\n\n## Older\nkept\n"
    )
    readme.write_text(before, encoding="utf-8")
    results = {
        "machine": {"date": "2026-12-06 02:00", "cpus": 2, "loadavg_before": 0.5, "rasa": "3.6.21", "commit": "abc"}
    }
    report.update_readme(readme, results, "| a | b |\n|---|---|\n")
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and "| a | b |" in text and "**2026-12-06 02:00**" in text and "commit abc" in text
    assert text.startswith("# Figures\n\nintro\n\n") and text.endswith("## Older\nkept\n")
