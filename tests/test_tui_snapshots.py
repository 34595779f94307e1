"""SVG snapshots of the console on a seeded session and a frozen clock: the desk at the five
sizes (80x24, 100x30, 120x40, 160x30, 200x60), the P&L view with the session's charts, KILLED,
and each theme at 120x40. Update the baselines with `pytest --snapshot-update`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from test_tui import frozen_console, settle
from textual.pilot import Pilot

from engine.config import Settings, UiSettings
from themes import THEME_NAMES

SnapCompare = Callable[..., bool]


async def _drawn(pilot: Pilot[int]) -> None:
    await settle(pilot.app, pilot)  # type: ignore[arg-type]


async def _killed(pilot: Pilot[int]) -> None:
    await pilot.press("k")
    await settle(pilot.app, pilot)  # type: ignore[arg-type]


async def _pnl_view(pilot: Pilot[int]) -> None:
    await pilot.press("2")
    await settle(pilot.app, pilot)  # type: ignore[arg-type]


SIZES = [(80, 24), (100, 30), (120, 40), (160, 30), (200, 60)]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_console_at_size(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app, _ = frozen_console(warm_s=120, fills=True)
    assert snap_compare(app, terminal_size=size, run_before=_drawn)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_pnl_view_with_the_session_charts(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app, _ = frozen_console(warm_s=120, fills=True)
    assert snap_compare(app, terminal_size=size, run_before=_pnl_view)


def test_console_killed_120x40(snap_compare: SnapCompare) -> None:
    app, _ = frozen_console(warm_s=120, fills=True)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_killed)


@pytest.mark.parametrize("theme", THEME_NAMES)
def test_theme_120x40(snap_compare: SnapCompare, theme: str) -> None:
    app, _ = frozen_console(Settings(ui=UiSettings(theme=theme)), warm_s=120, fills=True)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_drawn)
