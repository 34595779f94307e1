"""A trivial two-sided quoter driving a SimMarket: for the benchmark, calibration and tests.

It is not the strategy (that is the quoter core); it is the yardstick the calibration is stated
in: cancel everything and repost a bid and an ask at the book mid -+ `half_spread_bps`,
`quote_usd` a side, every `refresh_s`, and nothing else (no lean, no hedge, no limits).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from engine.events import BookUpdate, CancelAll, Fill, PlaceQuote, Side, VenueEvent
from engine.sim.market import SimMarket

_NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class DrillReport:
    """What the trivial quoter saw: counts by event type, our fills, and book seconds by regime."""

    events: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    fills: list[Fill] = field(default_factory=list)
    fills_by_regime: Counter[str] = field(default_factory=Counter)
    books_by_regime: Counter[str] = field(default_factory=Counter)
    fair_by_book_ns: dict[int, float] = field(default_factory=dict)
    """The latent fair price at every book update (for markouts), when asked to record it."""

    @property
    def volume_usd(self) -> float:
        return sum(f.size_base * f.price for f in self.fills)

    def fill_count(self, side: Side) -> int:
        return sum(1 for f in self.fills if f.side is side)


def run_trivial_quoter(
    market: SimMarket,
    end_ns: int,
    half_spread_bps: float,
    quote_usd: float = 100.0,
    refresh_s: float = 3.0,
    record_fair: bool = False,
    keep_events: list[VenueEvent] | None = None,
) -> DrillReport:
    """Step `market` until `end_ns` under the trivial quoter; quotes stop at `end_ns`."""
    report = DrillReport()
    tick = market.instrument.tick_size
    lot = market.instrument.lot_size
    refresh_ns = round(refresh_s * _NS_PER_S)
    next_quote_ns = market.now_ns
    mid = market.fair_mid
    order_no = 0
    start_ns = market.params.start_ns
    interval_ns = max(1, round(market.params.book_interval_s * 1_000_000_000))
    while market.next_ts_ns < end_ns:
        events = market.step()
        now = market.now_ns
        report.events += len(events)
        if keep_events is not None:
            keep_events += events
        for event in events:
            kind = type(event)
            if kind is BookUpdate and (now - start_ns) % interval_ns:
                report.by_kind["BookUpdate (walked)"] += 1  # the book a walk through us left
                continue
            report.by_kind[kind.__name__] += 1
            if kind is BookUpdate:
                assert isinstance(event, BookUpdate)
                if event.bids and event.asks:
                    mid = (event.bids[0][0] + event.asks[0][0]) / 2
                report.books_by_regime[market.regime] += 1
                if record_fair:
                    report.fair_by_book_ns[now] = market.fair_mid
            elif kind is Fill:
                assert isinstance(event, Fill)
                report.fills.append(event)
                report.fills_by_regime[market.regime] += 1
        if now >= next_quote_ns:
            next_quote_ns = now + refresh_ns
            market.submit(CancelAll("refresh"), now)
            size_base = round(math.floor(quote_usd / mid / lot) * lot, 10)
            bid_ticks = math.floor(mid * (1 - half_spread_bps / 1e4) / tick)
            ask_ticks = math.ceil(mid * (1 + half_spread_bps / 1e4) / tick)
            for side, ticks in ((Side.BUY, bid_ticks), (Side.SELL, ask_ticks)):
                order_no += 1
                price = round(ticks * tick, 10)
                market.submit(PlaceQuote(f"drill-{order_no}", side, price, size_base), now)
    return report
