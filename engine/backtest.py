"""The backtest shell: the quoter core against a simulated or recorded venue on a simulated clock.

Nothing here waits: time is the venue's next event time, the core's timer runs on that clock,
and the loop goes as fast as the CPU allows. The report is a plain dict so that `--json` is
byte-identical for the same inputs (no wall-clock figure goes in it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.events import Action, Instrument, VenueEvent
from engine.quoter import Quoter

_NS_PER_S = 1_000_000_000
_NS_PER_HOUR = 3600 * _NS_PER_S
# A run shorter than this is not annualized: scaled to 365 days of 8 hours, six minutes of tape
# are multiplied by 29,200, and what that gives (thousands of percent) is noise, not a return.
MIN_HOURS_TO_ANNUALIZE = 1.0

# The guide's hypothetical day: $10,000 capital, 5 bps, 8 active hours.
GUIDE_DAY: dict[str, float] = {
    "hours": 8.0,
    "volume_usd": 50_000.0,
    "spread_usd": 25.0,
    "rebates_usd": 12.5,
    "inventory_usd": -10.0,
    "net_usd": 27.5,
}


class BacktestVenue(Protocol):
    """What the backtest needs from a venue: events on its own clock, and our orders."""

    instrument: Instrument

    @property
    def position_base(self) -> float: ...

    @property
    def cash_usd(self) -> float: ...

    @property
    def next_ts_ns(self) -> int | None: ...

    def step(self) -> list[VenueEvent]: ...

    def submit(self, action: Action, now_ns: int) -> None: ...


@dataclass(slots=True)
class Timing:
    """Where the wall time went (only filled when profiling: two clock reads per call)."""

    wall_s: float = 0.0
    venue_s: float = 0.0
    core_s: float = 0.0


@dataclass(slots=True)
class _Tracker:
    """Path statistics sampled once a simulated second."""

    peak_net_usd: float = 0.0
    max_drawdown_usd: float = 0.0
    max_abs_inventory_usd: float = 0.0
    spread_sum_bps: float = 0.0
    spread_samples: int = 0

    def sample(self, quoter: Quoter) -> None:
        mid = quoter.book.mid
        if mid is None:
            return
        net = quoter.ledger.net_usd_at(mid)
        self.peak_net_usd = max(self.peak_net_usd, net)
        self.max_drawdown_usd = max(self.max_drawdown_usd, self.peak_net_usd - net)
        self.max_abs_inventory_usd = max(
            self.max_abs_inventory_usd, abs(quoter.ledger.position_base * mid)
        )
        quoted = quoter.quoted_prices()
        if quoted is not None:
            bid, ask = quoted
            self.spread_sum_bps += (ask - bid) / mid * 1e4
            self.spread_samples += 1


def run_backtest(
    venue: BacktestVenue,
    quoter: Quoter,
    *,
    hours: float | None = None,
    timer_s: float = 0.25,
    progress: Callable[[float], None] | None = None,
    profile: bool = False,
) -> tuple[dict[str, Any], Timing]:
    """Run until `hours` of venue time have passed (or the venue runs out); return the report."""
    timing = Timing()
    clock = time.perf_counter_ns
    started = clock()
    start_ns = venue.next_ts_ns
    if start_ns is None:
        raise ValueError("the venue has no events to replay")
    end_ns = None if hours is None else start_ns + int(hours * _NS_PER_HOUR)
    timer_ns = int(timer_s * _NS_PER_S)
    next_timer = start_ns
    next_sample = start_ns
    next_progress = start_ns
    progress_step = _NS_PER_HOUR // 20
    tracker = _Tracker()
    events = 0
    on_event, on_timer, submit, step = quoter.on_event, quoter.on_timer, venue.submit, venue.step
    last_ts = start_ns
    venue_ns = core_ns = 0
    while True:
        ts = venue.next_ts_ns
        if ts is None or (end_ns is not None and ts > end_ns):
            break
        while next_timer <= ts:
            for action in on_timer(next_timer):
                submit(action, next_timer)
            if next_timer >= next_sample:
                tracker.sample(quoter)
                next_sample += _NS_PER_S
            next_timer += timer_ns
        if profile:
            t0 = clock()
            batch = step()
            t1 = clock()
            venue_ns += t1 - t0
            for event in batch:
                event_ts = event.ts_ns
                t2 = clock()
                actions = on_event(event, event_ts)
                core_ns += clock() - t2
                for action in actions:
                    submit(action, event_ts)
        else:
            batch = step()
            for event in batch:
                event_ts = event.ts_ns
                for action in on_event(event, event_ts):
                    submit(action, event_ts)
        events += len(batch)
        last_ts = ts
        if progress is not None and ts >= next_progress:
            total = end_ns - start_ns if end_ns is not None else None
            progress((ts - start_ns) / total if total else 0.0)
            next_progress = ts + progress_step
    final_ts = last_ts if end_ns is None else max(last_ts, min(end_ns, next_timer))
    tracker.sample(quoter)
    timing.wall_s = (clock() - started) / 1e9
    timing.venue_s = venue_ns / 1e9
    timing.core_s = core_ns / 1e9
    hours_run = (final_ts - start_ns) / _NS_PER_HOUR
    return build_report(quoter, venue, tracker, hours_run, events), timing


def build_report(
    quoter: Quoter, venue: BacktestVenue, tracker: _Tracker, hours: float, events: int
) -> dict[str, Any]:
    ledger = quoter.ledger
    mid = quoter.book.mid
    if mid is not None:
        ledger.mark(mid)
    terms = ledger.terms()
    # The identity, checked two ways: the exact ledger against its own equity, and the
    # venue's account (its own cash and position) against the ledger.
    identity_error = 0.0 if mid is None else float(abs(ledger.equity(mid) - ledger.net))
    venue_equity = venue.cash_usd + venue.position_base * (mid or 0.0)
    scale = GUIDE_DAY["hours"] / hours if hours > 0 else 0.0
    day_net = terms.net_usd * scale
    capital = quoter.strategy.capital_usd
    kills = [a.message for a in quoter.alerts if a.control == "kill switch"]
    report: dict[str, Any] = {
        "hours": round(hours, 6),
        "events": events,
        "volume_usd": ledger.volume_usd,
        "maker_volume_usd": ledger.maker_volume_usd,
        "hedge_volume_usd": ledger.taker_volume_usd,
        "fills": ledger.fills,
        "quotes": quoter.fill_rate.total_quotes,
        "fill_rate": quoter.fill_rate.lifetime_fill_rate,
        "pnl": {
            "spread": terms.spread_usd,
            "rebates": terms.rebates_usd,
            "inventory": terms.inventory_usd,
            "hedge": terms.hedge_usd,
            "funding": terms.funding_usd,
            "net": terms.net_usd,
        },
        "fees_paid_usd": ledger.fees_paid_usd,
        "pnl_identity_error_usd": identity_error,
        "venue_equity_usd": venue_equity,
        "max_drawdown_usd": tracker.max_drawdown_usd,
        "max_abs_inventory_usd": tracker.max_abs_inventory_usd,
        "final_position_base": ledger.position_base,
        "avg_spread_bps": (
            tracker.spread_sum_bps / tracker.spread_samples if tracker.spread_samples else None
        ),
        "markout_bps": quoter.markouts.mean_bps(),
        "markout_vs_mid_bps": quoter.markouts.mean_vs_mid_bps(),
        "state": quoter.state.value,
        "kill_reason": kills[-1] if kills else None,
        "alerts": dict(sorted(quoter.alert_counts.items())),
        "day_net_usd": day_net,
        "annualized_return_pct_illustrative": (
            day_net * 365 / capital * 100 if hours >= MIN_HOURS_TO_ANNUALIZE else None
        ),
        "guide_day": dict(GUIDE_DAY),
    }
    report["why_different"] = why_different(report, scale)
    return report


def why_different(report: dict[str, Any], scale: float) -> str:
    """One sentence on why this run's day differs from the guide's hypothetical one."""
    pnl = report["pnl"]
    volume_day = report["volume_usd"] * scale
    spread_bps = (
        pnl["spread"] / report["maker_volume_usd"] * 1e4 if report["maker_volume_usd"] else 0
    )
    loss_day = (pnl["inventory"] + pnl["hedge"]) * scale
    return (
        f"The guide books the full 5 bps spread on every dollar traded (0.05% of $50K = $25), but "
        f"a fill earns only its distance from mid ({spread_bps:.2f} bps here), the volume "
        f"is ${volume_day:,.0f} a day instead of $50K, and inventory and hedging cost "
        f"${-loss_day:,.2f} a day against the guide's $10."
    )


def format_report(report: dict[str, Any], timing: Timing | None = None) -> str:
    """The report as the operator reads it."""
    pnl = report["pnl"]
    guide = report["guide_day"]
    markouts = report["markout_bps"]
    vs_mid = report["markout_vs_mid_bps"]

    def bps(value: float | None) -> str:
        return "   n/a" if value is None else f"{value:+6.2f}"

    lines = [
        f"simulated hours      {report['hours']:.2f}",
        f"events processed     {report['events']:,}",
    ]
    if timing is not None and timing.wall_s > 0:
        lines.append(
            f"wall time            {timing.wall_s:.2f} s "
            f"({report['events'] / timing.wall_s:,.0f} events/s, "
            f"{report['hours'] * 3600 / timing.wall_s:,.0f}x real time)"
        )
    fill_rate = report["fill_rate"]
    lines += [
        f"volume               ${report['volume_usd']:,.2f} "
        f"(maker ${report['maker_volume_usd']:,.2f}, hedges ${report['hedge_volume_usd']:,.2f})",
        f"fills                {report['fills']:,} of {report['quotes']:,} quotes; fill rate "
        + ("n/a" if fill_rate is None else f"{fill_rate * 100:.1f}%"),
        "P&L                  (signed: + made, - lost)",
        f"  spread capture     {pnl['spread']:+12.2f}",
        f"  rebates            {pnl['rebates']:+12.2f}",
        f"  inventory          {pnl['inventory']:+12.2f}",
        f"  hedge costs        {pnl['hedge']:+12.2f}",
        f"  funding            {pnl['funding']:+12.2f}",
        f"  net                {pnl['net']:+12.2f}",
        f"identity error       ${report['pnl_identity_error_usd']:.3g} "
        f"(venue equity ${report['venue_equity_usd']:+,.2f})",
        f"max drawdown         ${report['max_drawdown_usd']:,.2f}",
        f"max |inventory|      ${report['max_abs_inventory_usd']:,.2f}",
        "avg quoted spread    "
        + ("n/a" if report["avg_spread_bps"] is None else f"{report['avg_spread_bps']:.2f} bps"),
        f"markouts (bps)       1s {bps(markouts['1s'])}   5s {bps(markouts['5s'])}   "
        f"30s {bps(markouts['30s'])}   of the fill price",
        f"  vs mid at the fill 1s {bps(vs_mid['1s'])}   5s {bps(vs_mid['5s'])}   "
        f"30s {bps(vs_mid['30s'])}   (negative: the market moved against us)",
        f"final state          {report['state']}"
        + (f" ({report['kill_reason']})" if report["kill_reason"] else ""),
        "",
        "per 8-hour day        this run      the guide",
        f"  volume          {report['volume_usd'] * _day(report):>13,.0f} "
        f"{guide['volume_usd']:>14,.0f}",
        f"  spread          {pnl['spread'] * _day(report):>+13.2f} {guide['spread_usd']:>+14.2f}",
        f"  rebates         {pnl['rebates'] * _day(report):>+13.2f} {guide['rebates_usd']:>+14.2f}",
        f"  inventory+hedge {(pnl['inventory'] + pnl['hedge']) * _day(report):>+13.2f} "
        f"{guide['inventory_usd']:>+14.2f}",
        f"  net             {report['day_net_usd']:>+13.2f} {guide['net_usd']:>+14.2f}",
        _annualized_line(report["annualized_return_pct_illustrative"]),
        report["why_different"],
    ]
    return "\n".join(lines)


def _annualized_line(pct: float | None) -> str:
    if pct is None:
        return (
            f"annualized return    n/a (a run shorter than {MIN_HOURS_TO_ANNUALIZE:g} hour "
            "is not annualized)"
        )
    return f"annualized return    {pct:+.1f}% (illustrative only: one run scaled to 365 days)"


def _day(report: dict[str, Any]) -> float:
    return GUIDE_DAY["hours"] / report["hours"] if report["hours"] > 0 else 0.0
