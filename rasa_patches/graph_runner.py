"""Rasa's graph runner, running its nodes in order without dask.

For every message the Rasa server runs its NLU graph once and its policy
graph once per predicted action (two to four times), through
`DaskGraphRunner.run`: a dask graph built anew and dask's scheduler with its
queue, thread-pool futures and ordering. About 6 % of the server's CPU a
message went to that machinery rather than to the nodes (bench/NOTES.md,
round 9). Here each target's needs are run first, each node once, in the
same thread, with the same inputs and outputs as dask gives them; errors
are raised as Rasa raises them.

Imported for its effect by components/__init__.py. Rasa is pinned
(requirements.txt); tests/test_graph_runner.py checks the method is still
there, still used, and that a served model parses and predicts exactly as
with dask.
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


if getattr(DaskGraphRunner.run, "__module__", "") != __name__:
    DaskGraphRunner.run = run
