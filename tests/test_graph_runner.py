"""The model's graphs run node by node, exactly as with dask (rasa_patches/graph_runner.py)."""

import pytest
from rasa.core.agent import Agent
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import UserUttered

import components  # noqa: F401  (what the Rasa server imports with the model)
from rasa_patches import graph_runner
from scripts.servers import MODEL

TEXTS = ["ضاعت هويتي وش اسوي", "كم الرسوم؟", "نعم", "1012345678", "how do I renew my iqama?", "🙂", "ابي بيتزا"]


@pytest.fixture(scope="module")
def agent():
    return Agent.load(str(MODEL))


def test_the_rasa_server_runs_graphs_without_dask():
    assert DaskGraphRunner.run is graph_runner.run


async def next_action(agent, sender, parsed):
    """The policies' prediction (scores, policy, action) after one person's message."""
    tracker = await agent.processor.fetch_tracker_and_update_session(sender)
    tracker.update(UserUttered(parsed["text"], parsed["intent"], parsed["entities"], parse_data=parsed))
    prediction = agent.processor.predict_next_with_tracker(tracker)
    return {k: v for k, v in prediction.items() if k != "tracker"}  # the tracker holds its own sender


async def test_a_served_model_parses_and_predicts_as_with_dask(agent, monkeypatch):
    ours = [await agent.parse_message(t) for t in TEXTS]
    predicted = [await next_action(agent, f"ours-{i}", parsed) for i, parsed in enumerate(ours)]
    best = {max(p["scores"], key=lambda s: s["score"])["action"] for p in predicted}
    assert len(best) > 2  # different messages, different next actions

    monkeypatch.setattr(DaskGraphRunner, "run", graph_runner._rasa_run)
    assert [await agent.parse_message(t) for t in TEXTS] == ours
    assert [await next_action(agent, f"dask-{i}", parsed) for i, parsed in enumerate(ours)] == predicted


def test_an_input_named_like_a_node_fails_as_in_rasa(agent):
    runner = agent.processor.graph_runner
    node = next(iter(runner._graph_schema.nodes))
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner.run(inputs={"__message__": node}, targets=[node])
