"""Backtest figures an operator bets on: the loss limit holds in a crash, a short run is not
annualized."""

import json

import pytest

from engine.backtest import format_report, run_backtest
from engine.config import RiskSettings, StrategySettings
from engine.quoter import Quoter
from engine.sim.market import SimMarket
from engine.sim.params import SimParams
from tui.cli import main


@pytest.mark.parametrize("seed", range(1, 8))
def test_a_two_hour_crash_ends_within_a_quarter_past_the_daily_loss_limit(seed, capsys):
    """The loss kill flattens the position: the day no longer runs on to twice the limit."""
    argv = ["backtest", "--regime", "crash", "--hours", "2", "--seed", str(seed), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    limit = RiskSettings().daily_loss_limit_pct / 100 * StrategySettings().capital_usd
    assert "daily loss limit" in report["kill_reason"]
    assert report["final_position_base"] == 0.0
    assert -1.25 * limit <= report["pnl"]["net"] <= -0.9 * limit  # flat at about the limit


def short_run(hours: float) -> dict:
    market = SimMarket(SimParams(seed=2))
    quoter = Quoter(StrategySettings(), RiskSettings(), market.instrument, seed=2)
    report, _ = run_backtest(market, quoter, hours=hours)
    return report


def test_a_run_shorter_than_an_hour_is_not_annualized():
    report = short_run(0.25)
    assert report["annualized_return_pct_illustrative"] is None
    assert "annualized return    n/a (a run shorter than 1 hour" in format_report(report)
    hour = short_run(1.0)
    assert isinstance(hour["annualized_return_pct_illustrative"], float)
    assert "% (illustrative only" in format_report(hour)
