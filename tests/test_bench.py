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
