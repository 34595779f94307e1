"""`perpdesk backtest`: the core against the embedded exchange and a recorded tape."""

import json
from pathlib import Path
from typing import Any

import pytest

from engine.backtest import run_backtest
from engine.config import RiskSettings, Settings, StrategySettings
from engine.events import Action, Fill, Instrument, PlaceQuote, Side
from engine.quoter import Quoter
from engine.replay.binance import TapeError, read_tape
from engine.replay.venue import ReplayVenue
from engine.sim.market import SimMarket
from engine.sim.params import SimParams
from engine.snapshot import EngineState
from engine.venues.recorded import backtest_venue
from tui.cli import main

TAPE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usdm_btcusdt_20240808.gz"
needs_tape = pytest.mark.skipif(not TAPE.exists(), reason=f"shared tape not found at {TAPE}")

REPORT_KEYS = {
    "hours",
    "events",
    "volume_usd",
    "fills",
    "fill_rate",
    "pnl",
    "max_drawdown_usd",
    "max_abs_inventory_usd",
    "avg_spread_bps",
    "markout_bps",
}


class RecordingMarket(SimMarket):
    """The embedded exchange, remembering every action we sent it and when."""

    def __init__(self, params: SimParams) -> None:
        super().__init__(params)
        self.sent: list[tuple[int, Action]] = []

    def submit(self, action: Action, now_ns: int) -> None:
        self.sent.append((now_ns, action))
        super().submit(action, now_ns)


def backtest(
    params: SimParams, hours: float, strategy: dict | None = None, risk: dict | None = None
) -> tuple[dict, Quoter, RecordingMarket]:
    market = RecordingMarket(params)
    quoter = Quoter(
        StrategySettings(**(strategy or {})),
        RiskSettings(**(risk or {})),
        market.instrument,
        seed=params.seed,
    )
    report, _ = run_backtest(market, quoter, hours=hours)
    return report, quoter, market


def test_same_seed_gives_byte_identical_json(capsys):
    assert main(["backtest", "--hours", "0.1", "--seed", "3", "--json"]) == 0
    first = capsys.readouterr().out
    assert main(["backtest", "--hours", "0.1", "--seed", "3", "--json"]) == 0
    assert capsys.readouterr().out == first
    assert main(["backtest", "--hours", "0.1", "--seed", "4", "--json"]) == 0
    assert capsys.readouterr().out != first
    report = json.loads(first)
    assert report.keys() >= REPORT_KEYS
    assert set(report["pnl"]) == {"spread", "rebates", "inventory", "hedge", "funding", "net"}
    assert set(report["markout_bps"]) == {"1s", "5s", "30s"}
    assert report["hours"] == pytest.approx(0.1)


def test_pnl_identity_holds_over_a_whole_run_and_matches_the_venue_account():
    report, quoter, market = backtest(SimParams(seed=11), hours=0.5)
    pnl = report["pnl"]
    assert report["fills"] > 0
    assert report["pnl_identity_error_usd"] == 0.0
    parts = pnl["spread"] + pnl["rebates"] + pnl["inventory"] + pnl["hedge"] + pnl["funding"]
    assert parts == pytest.approx(pnl["net"], abs=1e-9)
    # the venue's own cash and position, marked at the same mid, tell the same story
    assert report["venue_equity_usd"] == pytest.approx(pnl["net"], abs=1e-6)
    assert market.position_base == pytest.approx(quoter.position_base, abs=1e-12)


def test_funding_is_charged_and_still_adds_up():
    params = SimParams(seed=5, funding_enabled=True, funding_rate_per_hour=0.001)
    report, _, _ = backtest(params, hours=2.0, strategy={"auto_hedge": False})
    assert report["pnl"]["funding"] != 0.0
    assert report["venue_equity_usd"] == pytest.approx(report["pnl"]["net"], abs=1e-6)


def test_no_informed_flow_and_no_volatility_earn_spread_plus_rebates():
    """Nobody knows where the price goes and it goes nowhere: what we earn is the spread and
    the rebates. A fill is marked against the book the taker's walk left (the venue's mid
    when it filled us), and that impact reverts once the book refills: the part of the spread
    the walk took from the mid comes back through the inventory term, never against us."""
    params = SimParams(seed=2, regime_override="flat", informed_share=0.0)
    report, _, _ = backtest(params, hours=1.0)
    pnl = report["pnl"]
    assert report["fills"] > 0
    earned = pnl["spread"] + pnl["rebates"]
    assert earned > 0 and pnl["inventory"] >= 0
    assert all(v > 0 for v in report["markout_vs_mid_bps"].values())  # it reverted our way
    assert pnl["net"] == pytest.approx(earned + pnl["inventory"], rel=1e-9)


def test_more_informed_takers_mean_worse_markouts_and_less_net():
    seeds = (1, 2, 3, 4)
    calm_net = sharp_net = 0.0
    for seed in seeds:
        calm, _, _ = backtest(SimParams(seed=seed, informed_share=0.0), hours=1.0)
        sharp, _, _ = backtest(SimParams(seed=seed, informed_share=0.8), hours=1.0)
        # the same price path on each seed: only who takes our quotes differs
        assert sharp["markout_bps"]["5s"] < calm["markout_bps"]["5s"], f"seed {seed}"
        calm_net += calm["pnl"]["net"]
        sharp_net += sharp["pnl"]["net"]
    assert sharp_net < calm_net


def test_a_crash_trips_the_breaker_then_the_kill_switch_and_no_quote_follows():
    params = SimParams(seed=7, regime_override="crash")
    report, quoter, market = backtest(params, hours=1.5)  # the guide's settings
    first = quoter.first_alert_ns
    assert "vol breaker" in first
    assert quoter.state is EngineState.KILLED
    assert "daily loss" in (report["kill_reason"] or "")
    assert first["vol breaker"] < first["kill switch"]
    kill_ns = first["kill switch"]
    assert not [a for ts, a in market.sent if ts > kill_ns and isinstance(a, PlaceQuote)]
    assert market.resting_orders() == []


@needs_tape
def test_replay_of_the_shared_tape_fills_reports_and_keeps_the_identity():
    instrument = Instrument("BTCUSDT", tick_size=0.1, lot_size=0.00001)
    venue = ReplayVenue(read_tape(TAPE), instrument, maker_fee_pct=-0.025, taker_fee_pct=0.025)
    quoter = Quoter(StrategySettings(), RiskSettings(), instrument)
    report, _ = run_backtest(venue, quoter)
    assert report["hours"] == pytest.approx(344.8 / 3600, rel=0.01)
    assert report["fills"] > 10
    assert report.keys() >= REPORT_KEYS
    assert report["pnl_identity_error_usd"] == 0.0
    assert report["venue_equity_usd"] == pytest.approx(report["pnl"]["net"], abs=1e-6)


@needs_tape
def test_replay_cli_prints_a_report(capsys):
    assert main(["backtest", "--replay", str(TAPE)]) == 0
    out = capsys.readouterr().out
    assert "replay of usdm_btcusdt_20240808.gz" in out
    assert "net" in out and "the guide" in out


def test_a_tape_that_is_not_a_binance_stream_is_refused_with_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b'123 {"lastUpdateId":1,"bids":[],"asks":[]}\n456 {"stream":"btcusdt@trade"\n')
    with pytest.raises(TapeError, match=r"bad\.txt:2"):
        list(read_tape(bad))
    assert main(["backtest", "--replay", str(bad)]) == 2
    assert "bad.txt:2" in capsys.readouterr().err


@needs_tape
def test_the_shared_tape_with_latency_fills_like_a_queue_simulator_not_like_a_wish():
    """10 ms each way, the risk-averse queue, Binance's contract and fees: tens of fills, not
    hundreds; dollars, not tens of dollars; no burst of maker fills on one side within a
    millisecond (each would be a new quote filled by the same sweep) unless partial."""
    settings = Settings(strategy=StrategySettings(quote_size_usd=200.0))
    recorded = backtest_venue(settings, replay=TAPE)
    venue = recorded.venue
    quoter = Quoter(settings.strategy, settings.risk, venue.instrument)
    fills: list[Fill] = []
    step = venue.step

    def recording_step() -> list[Any]:
        batch = step()
        fills.extend(e for e in batch if isinstance(e, Fill) and e.is_maker)
        return batch

    venue.step = recording_step  # type: ignore[method-assign]
    report, _ = run_backtest(venue, quoter)
    assert recorded.fees == "binance-usdm-base"
    assert 5 <= report["fills"] <= 60
    assert abs(report["pnl"]["net"]) < 10.0
    assert report["pnl_identity_error_usd"] == 0.0
    per_ms: dict[tuple[int, Side], list[Fill]] = {}
    for fill in fills:
        per_ms.setdefault((fill.ts_ns // 1_000_000, fill.side), []).append(fill)
    # two fills of one side in one millisecond: only the pieces of one order filling partly
    assert all(len({f.order_id for f in group}) == 1 for group in per_ms.values())


def test_markouts_against_the_mid_at_the_fill_leave_the_spread_out():
    """A bid filled 10 bps under a 100.0 mid, the market then falls to 99.8: against the fill
    price that is -10 bps (the spread earned hides part of the move); against the mid at the
    fill it is -20 bps, the whole move against us."""
    from engine.adverse import Markouts

    markouts = Markouts((1,))
    markouts.on_fill(0, Side.BUY, 99.9, mid=100.0)
    markouts.on_mid(99.8, 1_000_000_000)
    assert markouts.mean_bps()["1s"] == pytest.approx((99.8 - 99.9) / 99.9 * 1e4)
    assert markouts.mean_vs_mid_bps()["1s"] == pytest.approx(-20.0)


@needs_tape
def test_the_replay_model_comes_from_replay_settings_and_the_flags_override_it(capsys, monkeypatch):
    monkeypatch.setenv("PERPDESK_REPLAY__QUEUE", "power")
    monkeypatch.setenv("PERPDESK_REPLAY__ENTRY_LATENCY_MS", "25")
    assert main(["backtest", "--replay", str(TAPE), "--json"]) == 0
    replay = json.loads(capsys.readouterr().out)["replay"]
    assert (replay["queue"], replay["entry_latency_ms"], replay["response_latency_ms"]) == (
        "power",
        25.0,
        10.0,
    )
    argv = ["backtest", "--replay", str(TAPE), "--latency-ms", "0", "--queue", "risk-averse"]
    assert main([*argv, "--fill-through", "traded", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fees"] == "binance-usdm-base"
    assert report["replay"]["quotes_skipped_min_notional"] > 0  # $100 quotes are 0.001 BTC
    assert (report["replay"]["entry_latency_ms"], report["replay"]["queue"]) == (0.0, "risk-averse")
    assert report["replay"]["fill_through"] == "traded"
    assert main(["backtest", "--replay", str(TAPE), "--latency-ms", "-1"]) == 2


def test_replay_flags_without_a_replay_are_refused_in_one_line(capsys):
    assert main(["backtest", "--hours", "0.01", "--latency-ms", "50", "--queue", "power"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("perpdesk: --latency-ms, --queue apply to a replay only")
    assert err.count("\n") == 1
