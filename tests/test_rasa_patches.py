"""Rasa's patches are installed once, and only on the Rasa they were written for (rasa_patches/__init__.py)."""

import pytest
import rasa
from rasa.core.actions.action import RemoteAction
from rasa.core.processor import MessageProcessor
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import Event

import components  # noqa: F401  (what the Rasa server imports with the model: it installs the patches)
import rasa_patches
from rasa_patches import action_payload, action_replies, circuit_breaker, event_types, graph_runner

# Each patched method: where it is, and what install() puts there.
PATCHED = [
    (RemoteAction, "_action_call_format", action_payload._action_call_format),
    (RemoteAction, "_validate_action_result", action_replies._validate_action_result),
    (Event, "resolve_by_type", event_types.resolve_by_type),
    (DaskGraphRunner, "run", graph_runner.run),
    (MessageProcessor, "is_action_limit_reached", circuit_breaker.is_action_limit_reached),
]


def installed() -> list:
    return [getattr(cls, name) for cls, name, _ in PATCHED]


def test_every_patch_is_installed_and_listed():
    assert installed() == [patch for _, _, patch in PATCHED]
    assert sorted(rasa_patches.PATCHES) == sorted(patch.__module__.rsplit(".", 1)[1] for _, _, patch in PATCHED)


def test_the_rasa_it_was_written_for_is_the_one_installed():
    assert rasa_patches.release_line(rasa.__version__) == rasa_patches.WRITTEN_FOR == (3, 6)


@pytest.mark.parametrize("version", ["3.7.0", "3.5.15", "4.0.0", "3.60.1", "nightly"])
def test_another_rasa_is_refused_and_nothing_is_patched(monkeypatch, version):
    # As on a fresh process: nothing installed yet, Rasa's own methods in place.
    monkeypatch.setattr(rasa_patches, "_installed", False)
    for cls, name, _ in PATCHED:
        monkeypatch.setattr(cls, name, f"Rasa's {name}")
    monkeypatch.setattr(rasa, "__version__", version)
    with pytest.raises(rasa_patches.UnsupportedRasaVersion, match=rf"written for Rasa 3\.6\.x, but Rasa {version}"):
        rasa_patches.install()
    assert installed() == [f"Rasa's {name}" for _, name, _ in PATCHED]


@pytest.mark.parametrize("version", ["3.6.0", "3.6.21", "3.6.22", "3.6.0rc1"])
def test_any_release_of_the_line_is_accepted_and_gets_every_patch(monkeypatch, version):
    monkeypatch.setattr(rasa_patches, "_installed", False)
    for cls, name, _ in PATCHED:
        monkeypatch.setattr(cls, name, f"Rasa's {name}")
    monkeypatch.setattr(rasa, "__version__", version)
    rasa_patches.install()
    assert installed() == [patch for _, _, patch in PATCHED]


def test_a_second_install_changes_nothing():
    before = installed()
    rasa_patches.install()
    rasa_patches.install()
    for module in (action_payload, action_replies, circuit_breaker, event_types, graph_runner):
        module.apply()  # even past install()'s own flag: each patch finds itself in place
    assert installed() == before
    # Rasa's own methods, which the patches call, are still Rasa's: never a patch wrapping itself.
    assert action_payload._rasa_call_format.__module__ == "rasa.core.actions.action"
    assert action_replies._rasa_validate.__module__ == "rasa.core.actions.action"
    assert event_types._rasa_resolve_by_type.__module__ == "rasa.shared.core.events"
    assert graph_runner._rasa_run.__module__ == "rasa.engine.runner.dask"


def test_a_version_refused_after_install_still_raises(monkeypatch):
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    with pytest.raises(rasa_patches.UnsupportedRasaVersion):
        rasa_patches.install()
