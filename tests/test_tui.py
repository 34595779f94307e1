"""The console driven by Textual's Pilot: every key changes the engine as the help promises.

The engine runs for real (its own task, the real embedded exchange) on a frozen clock: sim
time moves only when a test advances it, so every press lands at a known market state.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.pilot import Pilot

from engine.config import Settings, StrategySettings, UiSettings
from engine.events import Side
from engine.live import LiveEngine
from engine.snapshot import EngineState
from themes import THEME_NAMES
from tui.app import KEYS, PerpdeskApp, choose_theme
from tui.screens import ConfirmScreen, HelpScreen
from tui.widgets import LinePane

S = 1_000_000_000
EPOCH_S = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC: a fixed wall clock for the screen


class FrozenClock:
    """Monotonic ns that move only when a test says so."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += round(seconds * S)


def frozen_console(
    settings: Settings | None = None, *, warm_s: int = 30, fills: bool = False
) -> tuple[PerpdeskApp, FrozenClock]:
    """A console over an engine already `warm_s` seconds into a seeded session.

    With `fills`, two large takers sweep the book a minute apart, so the session has fills,
    inventory and a P&L history to draw.
    """
    settings = settings or Settings()
    clock = FrozenClock()
    engine = LiveEngine(settings, clock=clock, epoch_s=EPOCH_S)
    for second in range(warm_s):
        clock.advance(1)
        engine.pump()
        if fills and second in (40, 80):
            side = Side.SELL if second == 40 else Side.BUY
            engine.market.inject_taker(side, 8.0, engine.market.now_ns)
            engine.pump()
    return PerpdeskApp(settings, engine, environ={}), clock


async def settle(app: PerpdeskApp, pilot: Pilot[int], advance_s: float = 0.0) -> None:
    """Move sim time on (optionally), let the engine wake up once, draw the frame."""
    engine = app.engine
    if advance_s:
        clock = engine._clock
        assert isinstance(clock, FrozenClock)
        clock.advance(advance_s)
    before = engine.pumps
    engine.wake()
    for _ in range(400):
        if engine.pumps > before:
            break
        await asyncio.sleep(0.005)
    assert engine.pumps > before, "the engine did not wake up"
    app.draw_frame()
    await pilot.pause()


async def fill_our_bid(app: PerpdeskApp, pilot: Pilot[int]) -> float:
    """A big seller sweeps the bids through our quote: we are long. Returns the position."""
    market = app.engine.market
    market.inject_taker(Side.SELL, 8.0, market.now_ns)
    await settle(app, pilot)
    await settle(app, pilot, advance_s=0.25)  # the book redraws: depth to hedge into
    position = app.engine.snapshot.inventory.position_base
    assert position > 0
    return position


def rows_of(app: PerpdeskApp, selector: str) -> list[str]:
    """The text a pane shows, row by row."""
    return app.query_one(selector, LinePane).rows_text


def banner_shown(app: PerpdeskApp) -> bool:
    banner = app.query_one("#banner")
    return bool(banner.display) and banner.size.height == 3


# ---- keys ---------------------------------------------------------------------------------


async def test_k_kills_at_once_no_orders_rest_and_the_banner_shows() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.engine.resting_at_venue() == 2
        assert not banner_shown(app)

        await pilot.press("k")
        await settle(app, pilot)

        assert app.engine.snapshot.state is EngineState.KILLED
        assert app.engine.resting_at_venue() == 0
        assert banner_shown(app)
        assert any("KILLED" in row for row in rows_of(app, "#banner"))
        quotes = rows_of(app, "#quotes")
        assert "none" in quotes[1] and "none" in quotes[2]


async def test_k_is_a_priority_key_it_kills_even_over_a_confirm_dialog() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        await pilot.press("r")  # paused: r asks to confirm
        assert isinstance(app.screen, ConfirmScreen)

        await pilot.press("k")
        await settle(app, pilot)

        assert app.engine.snapshot.state is EngineState.KILLED
        assert app.engine.resting_at_venue() == 0


async def test_r_resumes_after_a_kill_only_once_confirmed() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("k")
        await settle(app, pilot)

        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(app, pilot)
        assert app.engine.snapshot.state is EngineState.KILLED

        await pilot.press("r", "y")
        await settle(app, pilot, advance_s=0.5)
        assert app.engine.snapshot.state is EngineState.QUOTING
        assert app.engine.resting_at_venue() == 2
        assert not banner_shown(app)


async def test_p_pauses_pulls_the_quotes_and_p_again_quotes_again() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await settle(app, pilot)
        assert app.engine.snapshot.state is EngineState.PAUSED
        assert app.engine.resting_at_venue() == 0
        assert "PAUSED" in rows_of(app, "#status")[0]

        await pilot.press("p")
        await settle(app, pilot, advance_s=0.5)
        assert app.engine.snapshot.state is EngineState.QUOTING
        assert app.engine.resting_at_venue() == 2


async def test_w_adds_one_manual_widen_step_and_n_takes_it_off() -> None:
    app, _ = frozen_console()
    step = app.settings.strategy.manual_widen_step_bps
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        spread = app.engine.snapshot.spread
        assert spread is not None and spread.manual_widen_bps == 0.0

        await pilot.press("w")
        await settle(app, pilot)
        widened = app.engine.snapshot.spread
        assert widened is not None and widened.manual_widen_bps == step
        assert widened.total_bps == pytest.approx(spread.total_bps + step, abs=0.01)
        spread_rows = rows_of(app, "#spread")
        assert any("manual widen" in row and f"{step:.2f}" in row for row in spread_rows)

        await pilot.press("n")
        await settle(app, pilot)
        narrowed = app.engine.snapshot.spread
        assert narrowed is not None and narrowed.manual_widen_bps == 0.0


async def test_h_hedges_half_the_inventory_with_a_taker_order() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        position = await fill_our_bid(app, pilot)
        taker_volume = app.engine.quoter.ledger.taker_volume_usd

        await pilot.press("h")
        await settle(app, pilot)

        assert app.engine.snapshot.inventory.position_base == pytest.approx(position / 2)
        assert app.engine.market.position_base == pytest.approx(position / 2)
        assert app.engine.quoter.ledger.taker_volume_usd > taker_volume


async def test_f_flattens_the_position_once_confirmed() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        position = await fill_our_bid(app, pilot)

        await pilot.press("f")
        assert isinstance(app.screen, ConfirmScreen)
        assert f"{position:+.5f}" in str(app.screen.body_text)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.engine.snapshot.inventory.position_base == position

        await pilot.press("f", "y")
        await settle(app, pilot)
        assert app.engine.snapshot.inventory.position_base == 0
        assert app.engine.market.position_base == 0


async def test_a_toggles_auto_hedge() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.engine.snapshot.inventory.auto_hedge is True
        await pilot.press("a")
        await settle(app, pilot)
        assert app.engine.snapshot.inventory.auto_hedge is False
        rows = rows_of(app, "#inventory")
        assert any("auto-hedge OFF" in row for row in rows)
        await pilot.press("a")
        await settle(app, pilot)
        assert app.engine.snapshot.inventory.auto_hedge is True


async def test_t_cycles_through_the_three_themes() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        seen = [app.theme]
        for _ in THEME_NAMES:
            await pilot.press("t")
            await pilot.pause()
            seen.append(app.theme)
        assert seen == [*THEME_NAMES, THEME_NAMES[0]]
        assert app.palette.bid.color is not None


async def test_question_mark_shows_every_key_and_escape_closes_it() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert [key for key, _, _ in app.screen.entries] == [k.display or k.key for k in KEYS]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize("key", ["q", "ctrl+c"])  # ctrl+c quits like q, not with a toast
async def test_q_cancels_every_order_then_exits(key: str) -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.engine.resting_at_venue() == 2
        await pilot.press(key)
        await pilot.pause()
    assert app.return_code == 0
    assert app.engine.closed
    assert app.engine.resting_at_venue() == 0


async def test_every_binding_has_an_id_and_a_description_and_shows_in_the_key_line() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        keys_row = rows_of(app, "#keys")[0]
        for key in KEYS:
            assert key.id and key.description and key.help
            if key.bar:
                assert f" {key.display or key.key} {key.description} " in keys_row


# ---- the screen ---------------------------------------------------------------------------


async def test_the_screen_redraws_only_when_the_engine_publishes() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        drawn = app.frames_drawn
        await pilot.pause(0.3)  # several frame intervals, clock frozen: nothing new to draw
        assert app.frames_drawn == drawn
        await settle(app, pilot, advance_s=1.0)
        assert app.frames_drawn == drawn + 1


async def test_80x24_is_compact_ladder_quotes_inventory_and_state() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.has_class("-compact")
        for pane in ("#status", "#ladder", "#quotes", "#inventory", "#keys"):
            widget = app.query_one(pane)
            assert widget.display and widget.size.width > 0, pane
        assert not app.query_one("#right").display  # P&L: one key away (2), net in the header
        assert not app.query_one("#alerts").display
        assert app.query_one("#alert-line").display
        ladder = rows_of(app, "#ladder")
        assert any("mid" in row for row in ladder)
        assert any("OUR BID" in row for row in ladder) and any("OUR ASK" in row for row in ladder)
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not app.has_class("-compact")
        assert app.query_one("#right").display and app.query_one("#pnl").display


async def test_all_six_panes_show_numbers_at_120x40() -> None:
    app, _ = frozen_console(warm_s=100, fills=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        text = {pane.id: "\n".join(pane.rows_text) for pane in app.query(LinePane)}
        assert "QUOTING" in text["status"] and "feed" in text["status"]
        assert "API" in text["status"] and "lag p99" in text["status"]
        assert "spread" in text["ladder"]
        assert "BID" in text["quotes"] and "resting" in text["quotes"]
        assert "LONG" in text["inventory"] or "SHORT" in text["inventory"]
        assert "vol premium" in text["spread"] and "total" in text["spread"]
        assert "net P&L" in text["pnl"] and "fills" in text["pnl"]
        assert "severity" in text["alerts"]


def test_theme_comes_from_textual_theme_then_the_setting() -> None:
    known = {"perpdesk-dark", "perpdesk-light", "perpdesk-contrast", "nord"}
    assert choose_theme("perpdesk-light", None, known) == "perpdesk-light"
    assert choose_theme("perpdesk-light", "nope, perpdesk-contrast", known) == "perpdesk-contrast"
    assert choose_theme("unknown", None, known) == "perpdesk-dark"


async def test_ui_theme_setting_picks_the_theme() -> None:
    app, _ = frozen_console(Settings(ui=UiSettings(theme="perpdesk-contrast")))
    async with app.run_test(size=(80, 24)):
        assert app.theme == "perpdesk-contrast"


async def test_auto_hedge_at_the_threshold_shows_in_the_inventory_pane() -> None:
    # A quote size near the hedge threshold: one fill crosses it and the engine hedges half.
    settings = Settings(strategy=StrategySettings(quote_size_usd=900.0))
    app, _ = frozen_console(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        market = app.engine.market
        market.inject_taker(Side.SELL, 8.0, market.now_ns)
        await settle(app, pilot, advance_s=0.5)
        assert 0 < app.engine.snapshot.inventory.inventory_usd < 800
        assert any(a.control == "hedge" or "hedge" in a.message for a in app.engine.quoter.alerts)


async def test_a_reject_streak_shows_not_quoting_in_the_header_badge_with_the_reason() -> None:
    settings = Settings.model_validate({"sim": {"reject_rate": 1.0}})
    app, _ = frozen_console(settings, warm_s=40)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        status = rows_of(app, "#status")[0]
        assert "NOT QUOTING" in status and "QUOTING  quoting" not in status
        assert "▶ QUOTING" not in status
        assert "both sides rejected for" in status and "simulated reject" in status
        quotes = rows_of(app, "#quotes")
        assert any("NOT QUOTING: both sides rejected" in row for row in quotes)


def test_an_error_inside_the_console_is_journaled_as_a_crash_and_exits_non_zero(
    tmp_path, monkeypatch
) -> None:
    import time

    from textual.app import App

    import tui.app as console
    from engine.journal import recover

    mount = console.PerpdeskApp.on_mount

    def on_mount_with_a_bug(self) -> None:
        mount(self)

        def boom() -> None:
            raise RuntimeError("bug in a widget")

        self.set_timer(0.5, boom)

    monkeypatch.setattr(console.PerpdeskApp, "on_mount", on_mount_with_a_bug)
    run_async = App.run_async
    monkeypatch.setattr(
        console.PerpdeskApp, "run_async", lambda self, **kw: run_async(self, headless=True)
    )
    code = console.run_console(Settings(), tmp_path / "state")
    assert code != 0
    rec = recover(tmp_path / "state", time.time_ns())
    assert rec.last_exit == "crash"
    assert rec.open_orders == {}
