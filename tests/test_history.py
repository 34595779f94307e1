"""The session history (bounded by merging, extremes kept exactly) and the charts drawn from it."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from engine.config import Settings
from engine.events import Side
from engine.history import HistoryView, SessionHistory
from engine.live import LiveEngine
from engine.spread import SpreadBreakdown, spread_breakdown
from themes import VARIABLE_DEFAULTS
from tui.widgets import Frame, Palette, PnlPane
from tui.widgets.charts import (
    duration,
    inventory_rows,
    net_pnl_rows,
    session_rows,
    spread_rows,
    time_axis,
)
from tui.widgets.lines import Row

S = 1_000_000_000
SIZES = [(80, 24), (100, 30), (120, 40), (160, 30), (200, 60)]
PALETTE = Palette.from_variables(dict(VARIABLE_DEFAULTS))


def spread(
    base_bps: float = 5.0, inventory_usd: float = 0.0, widen_bps: float = 0.0
) -> SpreadBreakdown:
    return spread_breakdown(
        base_bps=base_bps,
        vol_1h=0.01,  # 100 bps of hourly vol at 0.05: a 5 bps premium
        vol_premium_coeff=0.05,
        inventory_usd=inventory_usd,
        max_inventory_usd=1_000.0,
        inventory_premium_at_max_bps=5.0,
        manual_widen_bps=widen_bps,
        adverse_widen_bps=0.0,
        cap_bps=50.0,
    )


def text(rows: list[Row]) -> list[str]:
    return ["".join(segment.text for segment in row) for row in rows]


def a_day_of_samples(spike_at_s: int | None = None, spike_usd: float = 0.0) -> HistoryView:
    """24 h of one sample a second: P&L a slow walk within ±$50, inventory a sine."""
    history = SessionHistory(0)
    rng = random.Random(7)
    net = 0.0
    for t in range(86_400):
        net = max(-50.0, min(50.0, net + rng.gauss(0, 0.5)))
        inventory = 800.0 if (t // 3_600) % 2 else -600.0
        sample_spread = spread(inventory_usd=inventory) if t % 5 else None
        value = spike_usd if t == spike_at_s else net
        history.record(t * S, value, inventory, sample_spread)
    return history.view()


# ---- the store --------------------------------------------------------------------------------


def test_a_million_samples_stay_within_the_bucket_bound() -> None:
    history = SessionHistory(0, capacity=1_024)
    for t in range(1_000_000):
        history.record(t * S, float(t % 977), 0.0, None)
        assert len(history._buckets) <= 1_024
    view = history.view()
    # 1,000,000 s need buckets of 1,024 s: 977 of them (977 * 1024 >= 1,000,000 > 977 * 512)
    assert view.bucket_s == 1_024.0
    assert len(view.buckets) == 977
    assert view.span_s == 999_999.0
    assert view.version == 1_000_000
    assert sum(b.samples for b in view.buckets) == 1_000_000
    assert [b.start_s for b in view.buckets] == [i * 1_024.0 for i in range(977)]


def test_merging_keeps_the_extremes_and_the_last_values_exactly() -> None:
    rng = random.Random(1)
    history = SessionHistory(0, capacity=16)
    nets = [rng.uniform(-1e4, 1e4) for _ in range(5_000)]
    inventories = [rng.uniform(-2e3, 2e3) for _ in range(5_000)]
    for t, (net, inventory) in enumerate(zip(nets, inventories, strict=True)):
        history.record(t * S, net, inventory, None)
    buckets = history.view().buckets
    assert len(buckets) <= 16
    assert min(b.net_pnl_min_usd for b in buckets) == min(nets)
    assert max(b.net_pnl_max_usd for b in buckets) == max(nets)
    assert min(b.inventory_min_usd for b in buckets) == min(inventories)
    assert max(b.inventory_max_usd for b in buckets) == max(inventories)
    assert buckets[-1].net_pnl_usd == nets[-1]
    assert buckets[-1].inventory_usd == inventories[-1]
    # each bucket's last value is the last sample inside it
    width = int(history.bucket_s)
    for bucket in buckets:
        last_t = min(int(bucket.start_s) + width, len(nets)) - 1
        assert bucket.net_pnl_usd == nets[last_t]
        assert bucket.net_pnl_min_usd == min(nets[int(bucket.start_s) : last_t + 1])


def test_bucket_width_doubles_when_full_and_the_span_is_the_last_sample() -> None:
    history = SessionHistory(1_000 * S, capacity=8)
    for t in range(8):
        history.record((1_000 + t) * S, 1.0, 0.0, None)
    assert history.bucket_s == 1.0 and len(history.buckets) == 8
    history.record(1_008 * S, 2.0, 0.0, None)  # the ninth bucket: halve
    assert history.bucket_s == 2.0
    assert [b.start_s for b in history.buckets] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert [b.samples for b in history.buckets] == [2, 2, 2, 2, 1]
    assert history.span_s == 8.0


@given(
    capacity=st.sampled_from([2, 4, 8, 64]),
    samples=st.lists(
        st.tuples(
            st.integers(1, 50),  # seconds since the previous sample (a stall now and then)
            st.floats(-1e6, 1e6, allow_nan=False),
            st.floats(-1e4, 1e4, allow_nan=False),
        ),
        min_size=1,
        max_size=400,
    ),
)
def test_any_session_keeps_its_bound_extremes_last_values_and_time_order(
    capacity: int, samples: list[tuple[int, float, float]]
) -> None:
    history = SessionHistory(0, capacity=capacity)
    t = 0
    for gap, net, inventory in samples:
        t += gap
        history.record(t * S, net, inventory, None)
    view = history.view()
    nets = [net for _, net, _ in samples]
    inventories = [inventory for _, _, inventory in samples]
    assert len(view.buckets) <= capacity
    assert sum(b.samples for b in view.buckets) == len(samples) == view.version
    assert min(b.net_pnl_min_usd for b in view.buckets) == min(nets)
    assert max(b.net_pnl_max_usd for b in view.buckets) == max(nets)
    assert min(b.inventory_min_usd for b in view.buckets) == min(inventories)
    assert max(b.inventory_max_usd for b in view.buckets) == max(inventories)
    assert (view.buckets[-1].net_pnl_usd, view.buckets[-1].inventory_usd) == samples[-1][1:]
    starts = [b.start_s for b in view.buckets]
    assert starts == sorted(set(starts))
    assert all(start % view.bucket_s == 0 for start in starts)
    assert starts[-1] <= view.span_s == t < starts[-1] + view.bucket_s


def test_a_stall_leaves_a_gap_and_merging_never_joins_across_it() -> None:
    history = SessionHistory(0, capacity=4)
    for t in (0, 1, 2, 10):
        history.record(t * S, float(t), 0.0, None)
    history.record(11 * S, 11.0, 0.0, None)  # five buckets: halve to 2 s
    assert [(b.start_s, b.samples) for b in history.buckets] == [(0.0, 2), (2.0, 1), (10.0, 2)]


def test_samples_without_a_spread_count_for_none_of_the_means() -> None:
    history = SessionHistory(0, capacity=2)
    history.record(0, 0.0, 0.0, spread(base_bps=4.0))
    history.record(1 * S, 0.0, 0.0, None)
    history.record(2 * S, 0.0, 0.0, spread(base_bps=8.0))  # a third bucket: halve
    history.record(4 * S, 0.0, 0.0, None)
    history.record(5 * S, 0.0, 0.0, None)
    first, second = history.buckets
    assert first.spread is not None
    assert first.spread.samples == 2
    assert first.spread.base_bps == pytest.approx(6.0)
    assert first.spread.vol_premium_bps == pytest.approx(5.0)
    assert first.spread.total_bps == pytest.approx(11.0)
    assert second.spread is None


def test_spread_means_of_one_sample_at_a_time_equal_the_merged_means() -> None:
    history = SessionHistory(0, bucket_s=8.0)
    widen = [0.0, 2.0, 2.0, 5.0, 0.0, 1.0]
    for t, w in enumerate(widen):
        history.record(t * S, 0.0, 300.0, spread(inventory_usd=300.0, widen_bps=w))
    means = history.buckets[0].spread
    assert means is not None and means.samples == 6
    assert means.manual_widen_bps == pytest.approx(sum(widen) / 6)
    assert means.inventory_premium_bps == pytest.approx(1.5)  # |300| / 1000 * 5


def test_the_view_is_the_same_object_until_the_next_sample() -> None:
    history = SessionHistory(0)
    history.record(0, 1.0, 0.0, None)
    view = history.view()
    assert history.view() is view
    history.record(1 * S, 2.0, 0.0, None)
    assert history.view() is not view
    assert view.buckets[-1].net_pnl_usd == 1.0  # the old view never changes
    assert history.view().version == 2


# ---- the charts -------------------------------------------------------------------------------


def one_sample() -> HistoryView:
    history = SessionHistory(0)
    history.record(0, -12.5, 250.0, spread())
    return history.view()


HISTORIES = {"empty": None, "one sample": one_sample(), "a day": a_day_of_samples()}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(HISTORIES))
def test_charts_fill_exactly_the_size_asked(size: tuple[int, int], name: str) -> None:
    width, height = size
    history = HISTORIES[name]
    pane_sizes = [size, (width // 2, height // 3), (width - 44, height - 6), (30, 4), (6, 2)]
    for w, h in pane_sizes:
        charts = {
            "net": net_pnl_rows(history, w, h, PALETTE),
            "inventory": inventory_rows(history, w, h, PALETTE, 1_000.0),
            "spread": spread_rows(history, w, h, PALETTE),
            "session": session_rows(history, w, h, PALETTE, 1_000.0),
        }
        for chart, rows in charts.items():
            assert len(rows) == h, (chart, w, h)
            assert [cell_len(line) for line in text(rows)] == [w] * h, (chart, w, h)


def test_the_session_pane_stacks_as_many_charts_as_fit() -> None:
    history = HISTORIES["a day"]

    def titles(height: int) -> list[str]:
        return [line for line in text(session_rows(history, 120, height, PALETTE)) if "──" in line]

    assert len(titles(9)) == 1
    assert len(titles(10)) == 2
    assert len(titles(15)) == 3
    assert len(titles(60)) == 3


def test_the_title_says_the_span_and_what_a_column_covers() -> None:
    rows = text(net_pnl_rows(HISTORIES["a day"], 120, 20, PALETTE))
    # the last sample at 86,399 s, over 120 - 8 columns: 771 s a column at least, so 15 minutes
    assert rows[0].startswith("── net P&L · session 23h59m · 1 col = 15m ──")
    assert text(net_pnl_rows(None, 60, 10, PALETTE))[0].startswith("── net P&L · no samples yet")
    narrow = text(net_pnl_rows(HISTORIES["a day"], 30, 10, PALETTE))[0]
    assert narrow == "── net P&L · 23h59m · 2h/col ─"


def test_a_downsampled_negative_spike_keeps_its_extreme_on_the_scale() -> None:
    history = a_day_of_samples(spike_at_s=40_000, spike_usd=-987.65)
    assert history.bucket_s == 128.0  # the spike shares its bucket with 127 quiet seconds
    rows = text(net_pnl_rows(history, 100, 20, PALETTE))
    assert rows[-1].lstrip().startswith("-$987.65")  # the bottom row's label
    # the whisker reaches the bottom row in one column
    plot = rows[-1][rows[-1].index("$987.65") + 8 :]
    assert plot.count("│") + plot.count("╵") + plot.count("█") == 1


def test_inventory_near_its_max_draws_the_max_lines() -> None:
    rows = text(inventory_rows(HISTORIES["a day"], 100, 20, PALETTE, 1_000.0))
    assert "max ±$1,000" in rows[0]
    assert sum("╌" in line for line in rows) == 2
    far = text(inventory_rows(HISTORIES["a day"], 100, 20, PALETTE, 10_000.0))
    assert not any("╌" in line for line in far)  # the data never came half way: no lines


def test_the_spread_chart_stacks_up_to_the_quoted_total() -> None:
    history = SessionHistory(0)
    for t in range(100):
        history.record(t * S, 0.0, 0.0, spread())  # 5 base + 5 vol = 10 bps
    rows = text(spread_rows(history.view(), 60, 11, PALETTE))
    assert "base" in rows[0] and "widen" in rows[0]
    assert rows[1].lstrip().startswith("10.0 ")
    columns_used = 100 // 2  # 99 s in 60 - 7 columns: 2 s a column
    assert rows[1].count("█") == columns_used  # full to the top row: the total
    assert all(line.count("█") == columns_used for line in rows[1:])


def test_time_axis_puts_each_bucket_in_the_column_it_starts_in() -> None:
    history = SessionHistory(0)
    for t in range(0, 100, 3):
        history.record(t * S, float(t), 0.0, None)
    axis = time_axis(history.view(), 20)
    assert axis.col_s == 5.0  # 99 s / 20 columns: more than 4.95 s, so 5
    assert [[b.start_s for b in g] for g in axis.groups[:3]] == [[0.0, 3.0], [6.0, 9.0], [12.0]]


def test_durations_read_the_way_a_desk_says_them() -> None:
    assert [duration(s) for s in (0, 42, 60, 185, 3_600, 8_040, 86_400, 97_200)] == [
        "0s",
        "42s",
        "1m",
        "3m05s",
        "1h",
        "2h14m",
        "1d",
        "1d03h",
    ]


# ---- on the engine ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


def test_the_engine_samples_the_published_snapshot_once_a_second_of_sim_time() -> None:
    clock = Clock()
    engine = LiveEngine(Settings(), clock=clock, epoch_s=1.75e9)
    for second in range(1, 91):
        clock.now_ns = second * S
        engine.pump()
        if second in (30, 60):  # big takers through our quotes: fills, inventory, P&L
            side = Side.SELL if second == 30 else Side.BUY
            engine.market.inject_taker(side, 8.0, engine.market.now_ns)
            engine.pump()
    view = engine.history.view()
    snap = engine.snapshot
    assert view.version == 90  # each wake-up, once a second from 1 s to 90 s
    assert view.span_s == 90.0
    last = view.buckets[-1]
    assert last.net_pnl_usd == snap.pnl.terms.net_usd
    assert last.inventory_usd == snap.inventory.inventory_usd
    assert snap.spread is not None and last.spread is not None
    assert last.spread.total_bps == snap.spread.total_bps
    assert any(b.inventory_max_usd != 0.0 or b.inventory_min_usd != 0.0 for b in view.buckets)

    # and the P&L pane draws it: the numbers first, the session chart under them
    frame = Frame(
        snapshot=snap,
        venue="sim",
        wall_time_s=engine.wall_time_s(snap.ts_ns),
        epoch_s=engine.epoch_s,
        sim0_ns=engine.sim0_ns,
        speed=engine.speed,
        lag_p99_ms=0.0,
        events_per_s=0.0,
        stale_feed_s=5.0,
        api_warn_pct=80.0,
        price_decimals=1,
        size_decimals=5,
        base_asset="BTC",
        history=view,
    )
    rows = text(PnlPane(PALETTE).build(frame, 44, 24))
    assert rows[0].lstrip().startswith("spread capture")
    assert any(line.startswith("── net P&L · session 1m30s · 1 col = 3s") for line in rows)
    assert len(rows) == 24


async def test_the_engine_loop_samples_once_a_second() -> None:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now_ns += round(max(seconds, 0.001) * S)
        await asyncio.sleep(0)

    engine = LiveEngine(Settings(), clock=clock, sleep=sleep, epoch_s=1.75e9)
    engine.start()
    while clock.now_ns < 10.5 * S:
        await asyncio.sleep(0)
    assert engine.history.version == 11  # 0 s to 10 s
    await engine.stop()
