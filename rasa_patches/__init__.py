"""Musaed's changes to Rasa's internals, all in this package, applied by `install()`.

Each module replaces one method of Rasa and says, in its docstring, what Rasa
does, what we do instead, why, and which test guards it:

- action_payload.py   `RemoteAction._action_call_format`: the action server gets the latest turns only
- action_replies.py   `RemoteAction._validate_action_result`: replies checked by a validator built once
- event_types.py      `Event.resolve_by_type`: each event name's class looked up once
- graph_runner.py     `DaskGraphRunner.run`: the model's graphs run node by node, without dask
- circuit_breaker.py  `MessageProcessor.is_action_limit_reached`: a tripped breaker ends its turn only

They were written for one release line of Rasa (`WRITTEN_FOR`), and `install()`
refuses any other: a private method may change in a minor release without
notice, and a patch would then break Rasa quietly or not apply at all. Two
subclasses also override Rasa's private members and rely on the same check
(the processes that load them install these patches): components/fallback.py
(`FallbackClassifier._should_fallback`) and stores/tracker_store.py
(`SQLTrackerStore._retrieve`, `_additional_events`, `_event_query`).

Upgrading Rasa: run each patch's test on the new version, adapt or drop the
patch, then move `WRITTEN_FOR`.

Who installs them: components/__init__.py (the Rasa server and customer care
import it when they load the model) and stores/__init__.py (the Rasa server
loads the stores from endpoints.yml before the model). The action server runs
rasa-sdk, not Rasa, and needs none of them.
"""

from __future__ import annotations

import importlib
from typing import Tuple

import rasa

# The Rasa release line the patches were written for and tested on (requirements.txt pins 3.6.21).
# Major and minor, not the patch number: Rasa's patch releases fix bugs without
# touching these methods' signatures, and each patch's test would say if one did;
# a minor release may reshape any private method.
WRITTEN_FOR: Tuple[int, int] = (3, 6)
PATCHES = ("action_payload", "action_replies", "event_types", "graph_runner", "circuit_breaker")

_installed = False


class UnsupportedRasaVersion(RuntimeError):
    """The Rasa installed is not the release line the patches were written for."""


def release_line(version: str) -> Tuple[int, int]:
    """(major, minor) of a version string such as "3.6.21" or "3.6.0rc1"."""
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (-1, -1)


def check_version(version: str) -> None:
    """Raise UnsupportedRasaVersion unless `version` is of the release line `WRITTEN_FOR`."""
    if release_line(version) != WRITTEN_FOR:
        expected = ".".join(map(str, WRITTEN_FOR))
        raise UnsupportedRasaVersion(
            f"Musaed's patches on Rasa's internals (rasa_patches/) were written for Rasa {expected}.x, "
            f"but Rasa {version} is installed. Install the version requirements.txt pins, or review each "
            f"patch against Rasa {version} (its docstring names the test that guards it) and then update "
            f"WRITTEN_FOR in rasa_patches/__init__.py."
        )


def install() -> None:
    """Check the Rasa version (every call), then apply every patch (the first call only)."""
    global _installed
    check_version(rasa.__version__)
    if _installed:
        return
    for name in PATCHES:
        importlib.import_module(f"{__name__}.{name}").apply()
    _installed = True
