"""Every test runs with its own home and state directory: nothing a test does (a headless
session's journal, a config file) can reach the user's real ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REAL_HOME = Path(os.environ.get("HOME", "~")).expanduser()
_REAL_PLACES = [
    Path(os.environ.get("XDG_STATE_HOME", _REAL_HOME / ".local" / "state")) / "perpdesk",
    Path(os.environ.get("XDG_CONFIG_HOME", _REAL_HOME / ".config")) / "perpdesk",
]


def _footprint() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under the user's real perpdesk state and config."""
    seen: dict[str, tuple[int, int]] = {}
    for place in _REAL_PLACES:
        for path in place.rglob("*") if place.is_dir() else ():
            if path.is_file():
                stat = path.stat()
                seen[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return seen


@pytest.fixture(autouse=True, scope="session")
def _real_home_untouched():
    """The whole run leaves the user's real perpdesk state and config exactly as they were:
    a test that forgot its private home fails the run here."""
    before = _footprint()
    yield
    after = _footprint()
    assert after == before, f"tests wrote under the real home: {sorted(set(after) ^ set(before))}"


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home
