"""The console at the five terminal sizes an operator meets (80x24, 100x30, 120x40, 160x30,
200x60): what each layout shows, that the rest is one key away, and that no pane cuts a number
or a unit at any of them."""

from __future__ import annotations

import re

import pytest
from test_tui import frozen_console, rows_of, settle

from engine.alerts import Severity
from tui.app import PerpdeskApp, layout_for
from tui.widgets import LinePane

SIZES = ((80, 24), (100, 30), (120, 40), (160, 30), (200, 60))
DESK_PANES = ("#status", "#ladder", "#quotes", "#inventory", "#spread", "#keys")

# a number cut short: a digit, sign or $ (then digits, , or .) right before the ellipsis
_CUT_NUMBER = re.compile(r"[0-9+\-$][0-9,.]*…")


def shown(app: PerpdeskApp, selector: str) -> bool:
    widget = app.query_one(selector)
    return bool(widget.display) and widget.size.width > 0 and widget.size.height > 0


def visible_panes(app: PerpdeskApp) -> list[LinePane]:
    return [
        pane
        for pane in app.query(LinePane)
        if pane.id and shown(app, f"#{pane.id}") and pane.region.area > 0
    ]


def test_layout_by_size() -> None:
    assert [layout_for(w, h) for w, h in SIZES] == [
        "compact",
        "compact",
        "wide",
        "short",
        "wide",
    ]


@pytest.mark.parametrize(("width", "height"), SIZES)
async def test_each_size_shows_the_desk_and_cuts_no_number(width: int, height: int) -> None:
    app, _ = frozen_console(warm_s=120, fills=True)
    async with app.run_test(size=(width, height)) as pilot:
        await settle(app, pilot)
        for pane in DESK_PANES:
            assert shown(app, pane), pane
        # the money and the state are in the header at every size
        header = rows_of(app, "#status")[0]
        assert "net " in header and "$" in header
        ladder = rows_of(app, "#ladder")
        assert any("OUR BID" in row for row in ladder) and any("OUR ASK" in row for row in ladder)
        assert any("total" in row for row in rows_of(app, "#spread"))
        layout = layout_for(width, height)
        # P&L and alerts: on the desk when there is room, else the newest alert on its line
        assert shown(app, "#pnl") == (layout != "compact")
        assert (shown(app, "#alerts") or shown(app, "#alerts-side")) == (layout != "compact")
        assert shown(app, "#alert-line") == (layout == "compact")
        keys = rows_of(app, "#keys")[0]
        for word in (" k", " ? ", " q", " v"):
            assert word in keys + " ", (word, keys)
        assert_nothing_cut(app, width, height)
        app.engine.quoter.raise_alert(  # a long message for the narrow alerts panes
            app.engine.snapshot.ts_ns,
            Severity.WARNING,
            "position cap",
            "long $1,998.40 at the cap of $2,000.00: not quoting the bid until it is back under",
        )
        await pilot.press("2")  # the P&L view: its numbers, alerts and charts
        await settle(app, pilot, advance_s=1 / app.settings.ui.fps)
        assert any("position cap" in row for row in rows_of(app, "#alerts-pnl"))
        assert_nothing_cut(app, width, height)


def assert_nothing_cut(app: PerpdeskApp, width: int, height: int) -> None:
    """No visible pane draws a row wider than itself, nor a number cut short."""
    for pane in visible_panes(app):
        inner = pane.content_region.width
        for row in pane.rows_text:
            assert len(row) <= inner, (pane.id, width, height, row)
            assert not _CUT_NUMBER.search(row), (pane.id, width, height, row)


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40)])
async def test_every_view_is_one_key_away(width: int, height: int) -> None:
    app, _ = frozen_console(warm_s=120, fills=True)
    async with app.run_test(size=(width, height)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        assert app.current_view == "pnl"
        assert shown(app, "#pnl-full") and shown(app, "#charts") and shown(app, "#alerts-pnl")
        charts = "\n".join(rows_of(app, "#charts"))
        for title in ("net P&L", "inventory", "spread"):  # all three, at 80x24 too
            assert title in charts, (title, charts)
        assert not shown(app, "#alert-line")
        assert not shown(app, "#ladder")
        assert any("net P&L" in row for row in rows_of(app, "#pnl-full"))
        await pilot.press("3")
        await pilot.pause()
        assert app.current_view == "blotter" and shown(app, "#blotter")
        await pilot.press("4")
        await pilot.pause()
        assert app.current_view == "alerts" and shown(app, "#alerts-log")
        assert not shown(app, "#alert-line")  # the alerts are the view itself
        await pilot.press("v")  # wraps around to the desk
        await settle(app, pilot)
        assert app.current_view == "desk" and shown(app, "#ladder")
        # k kills from any view
        await pilot.press("3", "k")
        await settle(app, pilot)
        assert app.engine.snapshot.state.value == "KILLED"


async def test_at_80x24_a_new_alert_is_on_screen_in_the_next_frame() -> None:
    app, _ = frozen_console(warm_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.engine.quoter.raise_alert(
            app.engine.snapshot.ts_ns,
            Severity.CRITICAL,
            "test",
            "a control fired: 123.45 over 100.00",
        )
        await settle(app, pilot, advance_s=1 / app.settings.ui.fps)  # one frame later
        line = rows_of(app, "#alert-line")[0]
        assert "CRITICAL" in line and "a control fired: 123.45 over 100.00" in line
