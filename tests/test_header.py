"""The header tells the truth and stays still: the core says which phase the badge shows, and
the header's fields keep their columns whatever their values, dropping whole fields by rank as
the terminal narrows."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from desk import Desk, S
from test_quoter import ticks_for
from test_tui import EPOCH_S, FrozenClock, frozen_console, rows_of, settle

from engine.config import Settings
from engine.events import Kill, SetPaused, Side, Widen
from engine.live import LiveEngine
from engine.snapshot import EngineSnapshot, EngineState, Phase
from themes import THEMES, VARIABLE_DEFAULTS
from tui.widgets.fmt import fit_words
from tui.widgets.frame import Frame
from tui.widgets.palette import Palette
from tui.widgets.status import (
    BADGE_WIDTH,
    BADGE_WORDS,
    STOPPING_WORDS,
    Placed,
    badge_style,
    header_row,
    layout,
    net_text,
    short_address,
    slots_for,
)

WIDTHS = (80, 100, 120, 160, 200)
ACCOUNT = "0x897e" + "0" * 32 + "db"


def palette_of(theme_index: int = 0) -> Palette:
    theme = THEMES[theme_index]
    return Palette.from_variables(
        {**VARIABLE_DEFAULTS, **theme.to_color_system().generate(), **theme.variables}
    )


@pytest.fixture(scope="module")
def quoting() -> EngineSnapshot:
    """A snapshot of the embedded exchange 30 s into a seeded session: quoting two-sided."""
    clock = FrozenClock()
    engine = LiveEngine(Settings(), clock=clock, epoch_s=EPOCH_S)
    for _ in range(30):
        clock.advance(1)
        engine.pump()
    snapshot = engine.snapshot
    assert snapshot.phase is Phase.QUOTING
    return snapshot


def frame_of(snapshot: EngineSnapshot, **changes: object) -> Frame:
    fields: dict[str, object] = {
        "snapshot": snapshot,
        "venue": "sim",
        "wall_time_s": EPOCH_S,
        "epoch_s": EPOCH_S,
        "sim0_ns": 0,
        "speed": 1.0,
        "lag_p99_ms": 1.2,
        "events_per_s": 345.0,
        "stale_feed_s": 5.0,
        "api_warn_pct": 80.0,
        "price_decimals": 1,
        "size_decimals": 5,
        "base_asset": "BTC",
    }
    fields.update(changes)
    return Frame(**fields)  # type: ignore[arg-type]


def hyperliquid(snapshot: EngineSnapshot, network: str = "local", **changes: object) -> Frame:
    fields: dict[str, object] = {"switch": "armed", **changes}
    return frame_of(
        replace(snapshot, symbol="BTC"),
        venue="hyperliquid",
        network=network,
        account=ACCOUNT,
        **fields,
    )


def text_of(frame: Frame, width: int) -> str:
    return "".join(segment.text for segment in header_row(frame, palette_of(), width))


def with_net(snapshot: EngineSnapshot, net_usd: float) -> EngineSnapshot:
    terms = replace(snapshot.pnl.terms, net_usd=net_usd)
    return replace(snapshot, pnl=replace(snapshot.pnl, terms=terms))


DETAILS = {
    Phase.WAITING: "for a two-sided book",
    Phase.WARMING_UP: "vol samples 3/10",
    Phase.QUOTING: "",
    Phase.ONE_SIDED: "bids rejected for 12 s (post-only would cross); next try in 4 s",
    Phase.NOT_QUOTING: "both sides rejected for 123 s (simulated reject); next try in 30 s",
    Phase.PAUSED: "by operator: quotes pulled",
    Phase.STALE_FEED: "no book update: quotes pulled",
    Phase.BREAKER: "volatility 6.02%/h > 5%/h: quoting stopped",
    Phase.KILLED: "operator kill switch (k)",
}


def variants(base: Frame) -> list[Frame]:
    """The same session with every moving value at its extremes: P&L, feed age, API use,
    loop lag, event rate, clock, every phase, and the console stopping."""
    s = base.snapshot
    frames = [base]
    for net in (0.0, 12.34, -12_345.67, 99_999.99, -123_456.78, 25_000_000.0, -0.001):
        frames.append(replace(base, snapshot=with_net(s, net)))
    for age in (None, 0.04, 4.9, 5.1, 12.3, 99.99, 123.4, 5_000.0, 400_000.0):
        frames.append(replace(base, snapshot=replace(s, feed_age_s=age)))
    for used in (0, 7, 960, 1_199, 1_200, 1_250):
        frames.append(replace(base, snapshot=replace(s, api_calls_used=used)))
    for lag in (0.0, 51.0, 99.99, 1_234.5, 60_000.0):
        frames.append(replace(base, lag_p99_ms=lag))
    for rate in (0.0, 12_345.0, 99_999.0, 250_000.0):
        frames.append(replace(base, events_per_s=rate))
    frames.append(replace(base, wall_time_s=EPOCH_S + 86_399))
    for phase, detail in DETAILS.items():
        frames.append(replace(base, snapshot=replace(s, phase=phase, phase_detail=detail)))
    frames.append(replace(base, stopping=True))
    return frames


FIELD = {
    "badge": "|".join(re.escape(f" {w} ") for w in (*BADGE_WORDS.values(), STOPPING_WORDS)),
    "net": r"net [+-]\$(\d{1,3}(,\d{3})*\.\d\d|\d{1,3}(,\d{3})*\.\d[km])",
    "feed": r"(feed|STALE) (\d+\.\d|\d+)[smh]|feed -",
    "api": r"API (\d+/\d+|\d+%)!?",
    "lag": r"lag p99 (\d+\.\d|\d+)(ms|s)",
    "clock": r"\d\d:\d\d:\d\dZ",
    "events": r"\d{1,3}(,\d{3})*k? ev/s",
    "speed": r"×\d+(\.\d+)?",
    "switch": r"switch (on|OFF|off|…)",
    "brand": "perpdesk",
}


def assert_intact(frame: Frame, text: str, placed: list[Placed]) -> None:
    """Every shown field reads whole in its slot: parsed back, nothing cut."""
    s = frame.snapshot
    exact = {
        "venue": frame.venue,
        "symbol": s.symbol,
        "network": f"{frame.network} · {short_address(frame.account)}",
    }
    for p in placed:
        cell = text[p.column : p.column + p.width]
        assert text[p.column - len(p.separator) : p.column] == p.separator
        name = p.slot.name
        if name == "badge":
            assert re.fullmatch(FIELD["badge"], cell.rstrip() + " "), cell
        elif name == "status":
            shown = cell.rstrip()
            detail = "cancelling all orders before exit" if frame.stopping else s.phase_detail
            if shown.endswith("…"):
                head = shown[:-1]
                assert detail.startswith(head), (shown, detail)
                assert not head or detail[len(head)] in " ;,:", (shown, detail)  # a whole word
                assert not head[-1:].isdigit(), shown  # never a number without its unit
            else:
                assert shown == detail, (shown, detail)
        elif name in exact:
            assert cell.rstrip() == exact[name], (name, cell)
        else:
            assert re.fullmatch(FIELD[name], cell.rstrip()), (name, cell)
    assert len(text) <= max(p.column + p.width for p in placed)


# ---- stays still ------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("venue", ["sim", "hyperliquid-local", "hyperliquid-mainnet"])
def test_every_field_keeps_its_column_whatever_its_value(
    quoting: EngineSnapshot, width: int, venue: str
) -> None:
    if venue == "sim":
        base = frame_of(quoting)
    else:
        base = hyperliquid(quoting, network=venue.split("-")[1])
    expected = layout(slots_for(base), width)
    columns = {p.slot.name: p.column for p in expected}
    for frame in variants(base):
        placed = layout(slots_for(frame), width)
        assert placed == expected
        text = text_of(frame, width)
        assert_intact(frame, text, placed)
        # the rule before each field is drawn where the layout says, in every frame
        for name, column in columns.items():
            if column > 0:
                assert text[column - 1] == " ", (name, text)


def test_the_badge_slot_is_as_wide_as_the_widest_badge(quoting: EngineSnapshot) -> None:
    assert len(" ✕ NOT QUOTING ") == BADGE_WIDTH
    for phase in Phase:
        frame = frame_of(replace(quoting, phase=phase, phase_detail=DETAILS[phase]))
        (badge,) = [p for p in layout(slots_for(frame), 120) if p.slot.name == "badge"]
        row = header_row(frame, palette_of(), 120)
        filled = [seg for seg in row if seg.text.strip() == BADGE_WORDS[phase]]
        assert len(filled) == 1 and len(filled[0].text) == badge.width == BADGE_WIDTH


@pytest.mark.parametrize("width", WIDTHS)
def test_fields_drop_by_rank_as_the_terminal_narrows(quoting: EngineSnapshot, width: int) -> None:
    order = [
        "badge", "net", "feed", "api", "symbol", "venue", "speed", "lag", "clock", "events",
        "brand",
    ]  # fmt: skip
    shown = {p.slot.name for p in layout(slots_for(frame_of(quoting)), width)}
    kept = [name in shown for name in order]
    assert kept == sorted(kept, reverse=True), shown  # never a lower rank kept over a higher
    assert {"badge", "net", "feed", "api"} <= shown
    if width >= 200:
        assert set(order) <= shown


# ---- 80 columns ---------------------------------------------------------------------------


@pytest.mark.parametrize("phase", list(Phase))
def test_at_80_columns_the_badge_and_net_pnl_are_whole(
    quoting: EngineSnapshot, phase: Phase
) -> None:
    snapshot = with_net(replace(quoting, phase=phase, phase_detail=DETAILS[phase]), -12_345.67)
    frame = frame_of(snapshot)
    text = text_of(frame, 80)
    assert len(text) <= 80
    assert f" {BADGE_WORDS[phase]} " in text
    assert "net -$12,345.67" in text
    assert_intact(frame, text, layout(slots_for(frame), 80))


@pytest.mark.parametrize("network", ["mainnet", "testnet", "local"])
def test_at_80_columns_the_network_badge_is_whole(quoting: EngineSnapshot, network: str) -> None:
    frame = hyperliquid(with_net(quoting, 99_999.99), network=network)
    text = text_of(frame, 80)
    assert len(text) <= 80
    assert f"{network} · 0x897e…db" in text
    assert " ▶ QUOTING " in text and "net +$99,999.99" in text
    assert_intact(frame, text, layout(slots_for(frame), 80))


def test_mainnet_is_never_dropped_even_before_net_pnl(quoting: EngineSnapshot) -> None:
    frame = hyperliquid(quoting, network="mainnet")
    text = text_of(frame, 40)
    assert "mainnet · 0x897e…db" in text and "QUOTING" in text
    row = header_row(frame, palette_of(), 40)
    (network,) = [seg for seg in row if seg.text.startswith("mainnet")]
    assert network.style == palette_of().killed_badge


def test_at_160_columns_a_network_venue_reads_venue_network_account_symbol(
    quoting: EngineSnapshot,
) -> None:
    text = text_of(hyperliquid(quoting, switch="refused: volume too low"), 160)
    assert "hyperliquid · local · 0x897e…db · BTC " in text
    assert "switch OFF" in text


def test_the_sim_speed_shows_next_to_the_venue(quoting: EngineSnapshot) -> None:
    assert "sim ×10 · BTC-PERP" in text_of(frame_of(quoting, speed=10.0), 120)
    assert "sim ×1 · BTC-PERP" in text_of(frame_of(quoting), 120)
    assert "×" not in text_of(hyperliquid(quoting), 200)  # a network venue runs at 1x


# ---- values that outgrow their slot -----------------------------------------------------


@pytest.mark.parametrize(
    ("net_usd", "text"),
    [
        (0.0, "net +$0.00"),
        (-0.001, "net +$0.00"),
        (-12_345.67, "net -$12,345.67"),
        (99_999.99, "net +$99,999.99"),
        (-123_456.78, "net -$123.5k"),
        (25_000_000.0, "net +$25,000.0k"),
        (-250_000_000.0, "net -$250.0m"),
    ],
)
def test_net_pnl_is_shortened_to_thousands_never_cut(net_usd: float, text: str) -> None:
    assert net_text(net_usd) == text
    assert len(text) <= len("net -$12,345.67")


def test_a_stale_feed_turns_the_feed_age_into_a_warning(quoting: EngineSnapshot) -> None:
    fresh = text_of(frame_of(replace(quoting, feed_age_s=0.4)), 120)
    stale = text_of(frame_of(replace(quoting, feed_age_s=12.3)), 120)
    assert "feed 0.4s" in fresh and "STALE" not in fresh
    assert "STALE 12.3s" in stale
    assert fresh.index("feed") == stale.index("STALE")


def test_the_status_text_is_cut_at_a_word_never_inside_a_number_or_before_its_unit() -> None:
    text = "bids rejected for 12 s (post-only would cross); next try in 4 s"
    assert fit_words(text, 80) == text
    assert fit_words(text, 20) == "bids rejected for…"  # not "for 12…": 12 s stays whole
    assert fit_words(text, 23) == "bids rejected for 12 s…"
    assert fit_words(text, 48) == "bids rejected for 12 s (post-only would cross)…"
    assert fit_words(text, 1) == ""
    loss = "day P&L -$1,234.56 past the loss limit"
    assert fit_words(loss, 20) == "day P&L…"  # not "-$1,234.56…": it would look cut short
    assert fit_words(loss, 30) == "day P&L -$1,234.56 past the…"


# ---- one badge per phase ----------------------------------------------------------------


@pytest.mark.parametrize("theme_index", range(len(THEMES)))
def test_each_phase_has_its_own_badge_word_glyph_and_colour(
    quoting: EngineSnapshot, theme_index: int
) -> None:
    palette = palette_of(theme_index)
    words, glyphs, colours = set(), set(), set()
    for phase in [*Phase, None]:
        if phase is None:
            frame = frame_of(quoting, stopping=True)
            word = STOPPING_WORDS
        else:
            frame = frame_of(replace(quoting, phase=phase, phase_detail=DETAILS[phase]))
            word = BADGE_WORDS[phase]
            assert word.endswith(phase.value)
        row = header_row(frame, palette, 120)
        (badge,) = [seg for seg in row if seg.text.strip() == word]
        assert badge.style == badge_style(palette, phase)
        assert badge.style is not None and badge.style.bgcolor is not None
        assert badge.style.color != badge.style.bgcolor
        words.add(word.split(" ", 1)[1])
        glyphs.add(word.split(" ", 1)[0])
        colours.add(badge.style.bgcolor.triplet)
    assert len(words) == len(glyphs) == len(colours) == len(Phase) + 1


def test_the_contrast_theme_keeps_its_badges_to_the_xterm_256_colours() -> None:
    cube = {0x00, 0x5F, 0x87, 0xAF, 0xD7, 0xFF}
    greys = {8 + 10 * i for i in range(24)}
    contrast = next(t for t in THEMES if t.name == "perpdesk-contrast")
    for name, value in contrast.variables.items():
        if not name.startswith("state-"):
            continue
        r, g, b = (int(value[i : i + 2], 16) for i in (1, 3, 5))
        assert {r, g, b} <= cube or (r == g == b and r in greys), (name, value)
    assert {n for n in VARIABLE_DEFAULTS if n.startswith("state-")} <= set(contrast.variables)


# ---- the phase comes from the core ------------------------------------------------------


def test_during_the_warm_up_the_phase_is_warming_up_not_quoting() -> None:
    desk = Desk()
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.phase is Phase.WAITING and snap.phase_detail == "for a two-sided book"
    desk.tick()
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.state is EngineState.QUOTING
    assert snap.phase is Phase.WARMING_UP
    assert re.fullmatch(r"vol samples \d+/10", snap.phase_detail)
    assert snap.status.startswith("warming up volatility")
    desk.warm_up()
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.phase is Phase.QUOTING and snap.status == "quoting" and snap.phase_detail == ""
    assert snap.missing_sides == ()


def test_a_stale_feed_gives_stale_feed_and_a_new_book_ends_it() -> None:
    desk = Desk()
    desk.warm_up()
    stale_s = desk.quoter.risk.stale_feed_s
    desk.now_ns += int((stale_s + 1) * S)
    desk.execute(desk.quoter.on_timer(desk.now_ns))
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.phase is Phase.STALE_FEED and snap.state is EngineState.QUOTING
    assert snap.status == "feed stale: quotes pulled"
    assert desk.resting == {}
    desk.tick()
    assert desk.quoter.snapshot(desk.now_ns).phase is Phase.QUOTING


def test_a_one_sided_reject_streak_gives_one_sided_with_the_side() -> None:
    desk = Desk()
    desk.warm_up()
    desk.reject[Side.BUY] = "post-only would cross"
    desk.command(Widen())
    ticks_for(desk, 5.0)
    assert desk.quoter.snapshot(desk.now_ns).phase is Phase.QUOTING  # not a streak yet
    ticks_for(desk, 7.0)
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.phase is Phase.ONE_SIDED and snap.missing_sides == (Side.BUY,)
    assert snap.phase_detail == "bids rejected for 12 s (post-only would cross); next try in 4 s"
    assert snap.status == f"ONE-SIDED: {snap.phase_detail}"  # one source for both


def test_both_sides_rejected_give_not_quoting() -> None:
    desk = Desk(risk={"reject_streak_s": 5.0})
    desk.warm_up()
    desk.reject = {Side.BUY: "simulated reject", Side.SELL: "simulated reject"}
    desk.command(Widen())
    ticks_for(desk, 8.0)
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.phase is Phase.NOT_QUOTING and snap.missing_sides == (Side.BUY, Side.SELL)
    assert snap.status == f"NOT QUOTING: {snap.phase_detail}"


def test_paused_killed_and_the_breaker_have_their_own_phases() -> None:
    desk = Desk()
    desk.warm_up()
    desk.command(SetPaused(True))
    assert desk.quoter.snapshot(desk.now_ns).phase is Phase.PAUSED
    desk.command(Kill("operator kill switch (k)"))
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.phase is Phase.KILLED and snap.phase_detail == "operator kill switch (k)"

    desk = Desk(risk={"vol_breaker_action": "stop"})
    for i in range(20):  # alternating mids: about 6%/h realised volatility
        desk.tick(100_000.0 if i % 2 == 0 else 100_100.0)
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.phase is Phase.BREAKER
    assert snap.phase_detail.endswith("quoting stopped")


# ---- the console ------------------------------------------------------------------------


async def test_at_80x24_the_header_says_warming_up_then_quoting() -> None:
    app, _ = frozen_console(warm_s=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        header = rows_of(app, "#status")[0]
        assert " ◔ WARMING UP " in header and "QUOTING" not in header
        assert re.search(r"net [+-]\$\d+\.\d\d", header)
        column = header.index("net ")
        for _ in range(10):
            await settle(app, pilot, advance_s=1.0)
        header = rows_of(app, "#status")[0]
        assert " ▶ QUOTING " in header and "WARMING" not in header
        assert header.index("net ") == column  # nothing moved when the badge changed
