"""The console's blotter and alerts log: the whole day from the journal, earlier sessions too,
scrollable and filtered by side and kind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from rich.text import Text
from test_session import run  # moves the clocks' elapsed_ns, pumps the engine

from engine.config import Settings
from engine.journal.export import read_blotter
from engine.session import open_engine
from tui.app import PerpdeskApp
from tui.widgets import AlertsLog, BlotterView
from tui.widgets.blotter import day_start_ns

S = 1_000_000_000


class Clocks:
    """The engine's monotonic clock and the journal's wall clock, moved by the test; the
    wall starts a minute ago (a minute into the day at the earliest): within the day and the
    hour the blotter shows."""

    def __init__(self) -> None:
        now = time.time_ns()
        self.wall0 = max(day_start_ns(now) + 60 * S, now - 60 * S)
        self.elapsed_ns = 0

    def monotonic(self) -> int:
        return self.elapsed_ns

    def wall(self) -> int:
        return self.wall0 + self.elapsed_ns


SETTINGS = Settings.model_validate(
    {"sim": {"regime": "volatile", "informed_share": 0.5}, "strategy": {"quote_size_usd": 600.0}}
)


@pytest.fixture
def earlier_session(tmp_path: Path) -> tuple[Path, Clocks]:
    """A finished session with fills in `tmp_path`."""
    clocks = Clocks()
    engine = open_engine(SETTINGS, tmp_path, wall_ns=clocks.wall, clock=clocks.monotonic)
    run(engine, clocks, 90.0)
    engine.finish("clean")
    assert read_blotter(tmp_path).fills, "the earlier session made no fill"
    return tmp_path, clocks


def cells(table_row: list[object]) -> list[str]:
    return [c.plain if isinstance(c, Text) else str(c) for c in table_row]


async def wait_read(view: BlotterView | AlertsLog, reads: int = 1) -> None:
    for _ in range(400):
        if view.reads >= reads:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the view never read the journal")


async def test_the_blotter_shows_the_earlier_sessions_fills_after_a_restart(
    earlier_session: tuple[Path, Clocks],
) -> None:
    state_dir, clocks = earlier_session
    journaled = read_blotter(state_dir).fills
    engine = open_engine(SETTINGS, state_dir, wall_ns=clocks.wall, clock=clocks.monotonic)
    app = PerpdeskApp(SETTINGS, engine, environ={}, state_dir=state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        blotter = app.query_one(BlotterView)
        await wait_read(blotter)
        await pilot.pause()
        table = blotter.table
        assert table.row_count == len(journaled)
        rows = [cells(table.get_row_at(i)) for i in range(table.row_count)]
        # newest first, each row the journal's fill: time, side, price, size, fee, kind, id
        for row, fill in zip(rows, reversed(journaled), strict=True):
            assert row[1] == fill.side.upper()
            assert row[2].replace(",", "") == f"{fill.price:.1f}"
            assert float(row[3]) == pytest.approx(fill.size_base)
            assert row[5] == fill.kind
            assert row[8] == fill.order_id
        assert any(f.session == 1 for f in journaled) and engine.journal.session == 2

        await pilot.press("s")  # buys only
        await pilot.pause()
        buys = [f for f in journaled if f.side == "buy"]
        assert table.row_count == len(buys)
        assert all(cells(table.get_row_at(i))[1] == "BUY" for i in range(table.row_count))
        await pilot.press("m")  # makers only
        await pilot.pause()
        assert table.row_count == sum(f.is_maker for f in buys)

        await pilot.press("o")  # the orders of the last hour
        await wait_read(blotter, 2)
        await pilot.pause()
        assert blotter.show_orders and table.row_count > 0
        events = {cells(table.get_row_at(i))[5].split()[0] for i in range(table.row_count)}
        assert "sent" in events
        await pilot.press("s")  # side: buy, then sell (an order's answers carry no side)
        await pilot.pause()
        assert blotter.side == "sell"
        sell_rows = [cells(table.get_row_at(i)) for i in range(table.row_count)]
        assert sell_rows and all(row[1] == "SELL" for row in sell_rows)
        assert {row[5].split()[0] for row in sell_rows} > {"sent"}  # answers kept with them

        await pilot.press("4")  # the day's alerts, this session's restart alert included
        log = app.query_one(AlertsLog)
        await wait_read(log)
        await pilot.pause()
        controls = {cells(log.table.get_row_at(i))[2] for i in range(log.table.row_count)}
        assert log.table.row_count == len(read_blotter(state_dir).alerts)
        assert "restart" in controls
        await pilot.press("q")
    engine.finish("clean")


async def test_a_console_without_a_journal_says_so_in_the_blotter() -> None:
    from test_tui import frozen_console

    app, _ = frozen_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        blotter = app.query_one(BlotterView)
        assert blotter.table.row_count == 0
        assert "no journal" in str(blotter.query_one(".journal-filter").render())
