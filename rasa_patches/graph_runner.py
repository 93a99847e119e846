"""Rasa's graph runner, running its nodes in order without dask.

What Rasa does: for every message the Rasa server runs its NLU graph once
and its policy graph once per predicted action (two to four times), through
Rasa 3.6's `DaskGraphRunner.run`: a dask graph built anew and dask's
scheduler with its queue, thread-pool futures and ordering.

What we do instead: each target's needs are run first, each node once, in
the same thread, with the same inputs and outputs as dask gives them; errors
are raised as Rasa raises them.

Why: about 6 % of the server's CPU a message went to dask's machinery rather
than to the nodes (bench/NOTES.md, round 9).

Guarded by: tests/test_graph_runner.py — test_the_rasa_server_runs_graphs_without_dask
(the method is still there and replaced), test_a_served_model_parses_and_predicts_as_with_dask
and test_an_input_named_like_a_node_fails_as_in_rasa.
"""

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

_rasa_run = DaskGraphRunner.run


def run(self: DaskGraphRunner, inputs=None, targets=None):
    run_targets = targets if targets else self._graph_schema.target_names
    schema = self._graph_schema.minimal_graph_schema(run_targets)
    # An input reaches a node as dask passes it: the pair (input name, value).
    done = {}
    for name, value in (inputs or {}).items():
        if isinstance(value, str) and value in schema.nodes:
            raise GraphRunError(
                f"Input value '{value}' clashes with a node name. Make sure that none of the input "
                f"names passed to the `run` method are the same as node names in the graph schema."
            )
        done[name] = (name, value)

    def output(name):
        if name not in done:
            needs = schema.nodes[name].needs.values()
            done[name] = self._instantiated_nodes[name](*(output(need) for need in needs))
        return done[name]

    try:
        return dict(output(target) for target in run_targets)
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e


def apply() -> None:
    """Replace `DaskGraphRunner.run` (once: a second call finds it replaced)."""
    if getattr(DaskGraphRunner.run, "__module__", "") != __name__:
        DaskGraphRunner.run = run
