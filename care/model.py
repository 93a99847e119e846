"""The trained model, loaded once, as an intent ranker for the answer lookup."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


class Ranker:
    """Wraps `rasa.core.agent.Agent`: `await ranker.rank(text)` → intent_ranking."""

    def __init__(self, model_path: os.PathLike) -> None:
        path = Path(model_path)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make train`")
        _quiet_rasa()
        from rasa.core.agent import Agent

        self.model_path = path
        self.agent = Agent.load(str(path))
        self.full_ranking = _rank_every_intent(self.agent)

    async def parse(self, text: str) -> dict:
        return await self.agent.parse_message(text)

    async def rank(self, text: str) -> List[dict]:
        return (await self.parse(text)).get("intent_ranking") or []


def _rank_every_intent(agent) -> bool:
    """Have the intent classifier rank every intent, not only its top 10, so
    that a question matching nothing still has its nearest services.
    Confidences do not change. Reaches into Rasa 3.6's graph runner; if that
    moves, the top 10 remain."""
    from components.intent_classifier import LinearIntentClassifier

    found = False
    nodes = getattr(agent.processor.graph_runner, "_instantiated_nodes", {}) if agent.processor else {}
    for node in nodes.values():
        component = getattr(node, "_component", None)
        if isinstance(component, LinearIntentClassifier):
            component.rank_every_intent()
            found = True
    if not found:
        logging.getLogger("care").warning("intent ranking limited to the classifier's top intents")
    return found


def _quiet_rasa() -> None:
    """Rasa's structured log prints every parse to stdout at debug level: keep
    stdout for our output (the CLI's --json) and Rasa's chatter at warnings."""
    import structlog
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    for name in ("rasa", "tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
