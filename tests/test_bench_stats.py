"""Unit tests of the benchmark's arithmetic, report and helpers (no servers)."""

import os

import pytest

from bench import load, report, resources
from bench.stats import aggregate_level, percentile, summarize
from musaed import identity, seed, store


def test_percentile_interpolates_between_closest_ranks():
    xs = [15, 20, 35, 40, 50]
    assert percentile(xs, 0) == 15 and percentile(xs, 100) == 50
    assert percentile(xs, 50) == 35
    assert percentile(xs, 40) == pytest.approx(29.0)  # numpy.percentile(xs, 40) == 29.0
    assert percentile(reversed(xs), 90) == pytest.approx(46.0)
    assert percentile(range(1, 101), 99) == pytest.approx(99.01)


def test_percentile_edges():
    assert percentile([], 50) is None
    assert percentile([7.5], 95) == 7.5
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_summarize_orders_its_percentiles():
    s = summarize([float(x) for x in range(1, 201)])
    assert s["count"] == 200 and s["mean_ms"] == 100.5
    assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"] == 200.0
    assert summarize([])["p50_ms"] is None


def test_aggregate_level_counts_throughput_and_steps():
    samples = [
        {"step": "guidance", "ms": 40.0},
        {"step": "guidance", "ms": 60.0},
        {"step": "otp", "ms": 90.0},
        {"step": "confirm", "ms": 110.0},
    ]
    r = aggregate_level(
        20, samples, elapsed_s=2.0, conversations_done=1, errors=[{"step": "otp", "kind": "timeout", "detail": ""}]
    )
    assert r["messages"] == 4 and r["messages_per_s"] == 2.0
    assert r["errors"] == 1 and r["error_samples"][0]["kind"] == "timeout"
    assert r["by_step_p50_ms"] == {"guidance": 50.0, "otp": 90.0, "confirm": 110.0}
    assert r["latency"]["p50_ms"] == 75.0


def _results(accuracy=0.98, default_accuracy=0.93, p95=50.0, mps=45.0, rss=900.0):
    def lvl(c, p, m):
        return {
            "concurrency": c,
            "messages": 10,
            "messages_per_s": m,
            "errors": 0,
            "latency": {"p50_ms": p / 2, "p95_ms": p, "p99_ms": p * 1.2},
        }

    return {
        "nlu": {
            "ours": {"quality": {"accuracy": accuracy, "macro_f1": 0.97, "examples": 252}},
            "default": {"quality": {"accuracy": default_accuracy, "macro_f1": 0.9}},
        },
        "load": [lvl(1, p95, 20.0), lvl(20, 300.0, mps)],
        "memory": {"rasa": {"peak_rss_mb": rss}, "actions": {"peak_rss_mb": 120.0}},
    }


def test_out_of_domain_verdict_needs_both_shares_within_their_bars():
    def with_ood(routed, confident):
        r = _results()
        r["nlu"]["served"] = {"out_of_domain": {"routed_share": routed, "confident_share": confident}}
        return report.verdicts(r)["out_of_domain"]

    assert with_ood(0.08, 0.02) is True
    assert with_ood(0.12, 0.02) is False
    assert with_ood(0.08, 0.04) is False


def test_verdicts_apply_each_target():
    assert report.verdicts(_results()) == {
        "accuracy": True,
        "one_user_p95": True,
        "throughput_20": True,
        "rasa_rss": True,
        "cluster_20": None,  # not measured in these results
        "out_of_domain": None,
        "long_conversation": None,
        "cluster_long_conversation": None,
    }
    bad = report.verdicts(_results(accuracy=0.95, default_accuracy=0.93, p95=61, mps=39, rss=1100))
    assert bad == {
        "accuracy": False,
        "one_user_p95": False,
        "throughput_20": False,
        "rasa_rss": False,
        "cluster_20": None,
        "out_of_domain": None,
        "long_conversation": None,
        "cluster_long_conversation": None,
    }
    assert report.verdicts(_results(accuracy=0.94, default_accuracy=0.5))["accuracy"] is False
    assert report.verdicts({}) == {
        "accuracy": None,
        "one_user_p95": None,
        "throughput_20": None,
        "rasa_rss": None,
        "cluster_20": None,
        "out_of_domain": None,
        "long_conversation": None,
        "cluster_long_conversation": None,
    }


@pytest.mark.parametrize(
    "mps, p95, errors, verdict",
    [(65.0, 400.0, 0, True), (55.0, 400.0, 0, False), (65.0, 600.0, 0, False), (65.0, 400.0, 1, False)],
)
def test_the_cluster_target_needs_throughput_latency_and_no_errors(mps, p95, errors, verdict):
    level = {
        "concurrency": 20,
        "messages": 10,
        "messages_per_s": mps,
        "errors": errors,
        "latency": {"p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95},
    }
    results = {"cluster": {"load": [level]}}
    assert report.verdicts(results)["cluster_20"] is verdict
    assert "cluster (2 Rasa" in report.markdown(results)


def test_markdown_table_has_a_row_per_measure(tmp_path):
    md = report.markdown(_results())
    assert md.splitlines()[0].startswith("| measure |")
    assert "0.98" in md and "0.93" in md and "✅ pass" in md and "45.0 msg/s" in md
    report.plot(_results(), tmp_path / "latency.png")
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"


def test_people_gives_each_conversation_slot_its_own_valid_identity(tmp_path):
    db_file = tmp_path / "musaed.db"
    seed.seed(store.open_db(db_file))
    persons = load.people(db_file, 7)
    ids = [p.national_id for p in persons]
    assert len(set(ids)) == 7
    assert all(identity.parse_national_id(i).error is None for i in ids)
    db = store.open_db(db_file)
    assert all(store.get_person(db, i)["mobile"] for i in ids)
    assert load.people(db_file, 7) == persons  # idempotent on the same database


def test_load_generator_refuses_non_loopback_urls():
    load.check_loopback("http://127.0.0.1:5005")
    with pytest.raises(ValueError):
        load.check_loopback("http://example.com:5005")


def test_proc_readings_of_this_process():
    mem = resources.memory(os.getpid())
    assert mem["peak_rss_mb"] >= mem["rss_mb"] > 0 and mem["processes"] >= 1
    assert resources.cpu_seconds(os.getpid()) > 0
    assert resources.memory(2**22 + 12345)["peak_rss_mb"] == 0  # a pid that does not exist


def test_split_accuracy_counts_each_split_and_the_examples_not_in_training_data():
    from rasa.shared.nlu.training_data.loading import load_data

    from bench import nlu

    examples = {(m.get("text"), m.get("intent")) for m in load_data(str(nlu.TEST_SPLIT)).intent_examples}
    wrong = set(sorted(examples)[:10])
    got = nlu.split_accuracy(wrong)
    assert set(got["splits"]) == {
        "heldout",
        "unseen",
        "fresh",
        "fourth",
        "english",
        "other_service",
        "privacy",
        "reminders",
    }
    for name, split in got["splits"].items():
        in_file = {
            (m.get("text"), m.get("intent")) for m in load_data(str(nlu.TEST_SPLIT / f"{name}.yml")).intent_examples
        }
        assert split["examples"] == len(in_file)
        assert split["accuracy"] == round(1 - len(in_file & wrong) / len(in_file), 4)
    assert 0 < got["novel"]["examples"] < len(examples)
    assert nlu.split_accuracy(set())["novel"]["accuracy"] == 1.0
    md = report.markdown({"nlu": {"ours": {"quality": {"accuracy": 0.9, "macro_f1": 0.9, **got}}}})
    assert "`tests/nlu/unseen.yml`" in md and "not word for word" in md


def test_seeded_config_sets_diets_seed_and_keeps_the_rest(tmp_path):
    # Rasa's default pipeline has DIET; ours (config.yml) has nothing seeded,
    # so its copy must equal it.
    import yaml

    from bench import nlu

    def without_seeds(config):
        return [{k: v for k, v in c.items() if k != "random_seed"} for c in config["pipeline"]]

    for config in (nlu.ROOT / "config.yml", nlu.DEFAULT_CONFIG):
        original = yaml.safe_load(config.read_text(encoding="utf-8"))
        seeded = yaml.safe_load(nlu.seeded_config(config, 5, tmp_path).read_text(encoding="utf-8"))
        diet = [c for c in seeded["pipeline"] if c["name"] == "DIETClassifier"]
        assert [c["random_seed"] for c in diet] == ([5] if config == nlu.DEFAULT_CONFIG else [])
        assert without_seeds(seeded) == without_seeds(original)
        assert seeded["policies"] == original["policies"]


def test_mean_quality_averages_the_runs():
    from bench import nlu

    def run(acc, heldout, novel):
        return {
            "accuracy": acc,
            "macro_f1": acc - 0.01,
            "weighted_f1": acc,
            "examples": 100,
            "intents": 3,
            "splits": {"heldout": {"examples": 40, "accuracy": heldout}},
            "novel": {"examples": 70, "accuracy": novel},
        }

    got = nlu.mean_quality([run(0.9, 0.95, 0.8), run(0.96, 1.0, 0.9)])
    assert got["accuracy"] == 0.93 and got["macro_f1"] == 0.92 and got["runs"] == [0.9, 0.96]
    assert got["splits"]["heldout"] == {"examples": 40, "accuracy": 0.975}
    assert got["novel"] == {"examples": 70, "accuracy": 0.85}
    assert got["examples"] == 100


def test_long_conversation_growth_is_late_median_over_early():
    from bench import baseline

    times = [10.0] * 50 + [99.0] * 200 + [15.0] * 50
    assert baseline.growth(times) == {"first_50_p50_ms": 10.0, "251_300_p50_ms": 15.0, "ratio": 1.5}
    assert baseline.growth(times[:299]) is None  # fewer than 300 messages: no figure


def test_ratios_are_musaed_over_the_init_bot_at_each_level():
    from bench import baseline

    musaed = _results(p95=50.0, mps=45.0, rss=900.0)
    musaed["long_conversation"] = {"ratio": 3.0}
    init = _results(p95=25.0, mps=90.0, rss=450.0)
    init["long_conversation"] = {"first_50_p50_ms": 10.0, "251_300_p50_ms": 15.0, "ratio": 1.5}
    r = baseline.ratios(musaed, init)
    assert r["p95_at_1"] == 2.0 and r["throughput_at_20"] == 0.5 and r["rasa_rss"] == 2.0
    assert r["long_conversation_growth"] == 2.0
    verdict = report.verdicts({**musaed, "long_conversation": {"ratio": 1.4}})["long_conversation"]
    assert verdict is True and report.verdicts(musaed)["long_conversation"] is False
    table = report.markdown(
        {
            **musaed,
            "baseline": init,
            "ratios": r,
            "long_conversation": {"first_50_p50_ms": 20.0, "251_300_p50_ms": 60.0, "ratio": 3.0},
        }
    )
    assert "`rasa init` bot, this run" in table and "×3.0" in table


def test_rasa_cpu_per_message_is_compared_with_the_init_bot_s():
    from bench import baseline

    musaed, init = _results(), _results()
    for results, cpu in ((musaed, 30.0), (init, 60.0)):
        for level in results["load"]:
            level["cpu_ms_per_message"] = {"rasa": cpu, "actions": 2.0}
    r = baseline.ratios(musaed, init)
    assert r["rasa_cpu_at_1"] == 0.5 and r["rasa_cpu_at_20"] == 0.5
    table = report.markdown({**musaed, "baseline": init, "ratios": r})
    assert (
        "Rasa server CPU per message, 1 conversation | 30.0 ms | 60.0 ms (`rasa init` bot, this run); Musaed ×0.5"
        in table
    )


def test_the_cluster_s_long_conversation_has_the_same_bar():
    results = {
        "cluster": {"load": [], "long_conversation": {"first_50_p50_ms": 40.0, "251_300_p50_ms": 80.0, "ratio": 2.0}}
    }
    assert report.verdicts(results)["cluster_long_conversation"] is False
    results["cluster"]["long_conversation"]["ratio"] = 1.1
    assert report.verdicts(results)["cluster_long_conversation"] is True
    assert "on the cluster (PostgreSQL tracker store" in report.markdown(results)


def test_the_table_has_the_bystander_under_a_flood_with_the_limits_on_and_off():
    def phase(p50, p95):
        return {"bystander": {"p50_ms": p50, "p95_ms": p95}}

    flood = {
        "limits_on": {"quiet": phase(31.5, 63.0), "one_sender": phase(45.6, 129.8), "one_address": phase(34.7, 250.7)},
        "limits_off": {"quiet": phase(75.5, 101.8), "one_sender": phase(63.3, 329.9), "one_address": phase(1362, 2911)},
    }
    table = report.markdown({"flood": flood})
    assert "| … while one address floods, a new sender each message, limits on | 34.7 / 251 ms p50/p95 | " in table
    assert "1362 / 2911 ms p50/p95 limits off" in table
    assert "floods" not in report.markdown({})
