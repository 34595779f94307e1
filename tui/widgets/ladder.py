"""The order book ladder: best levels a side with size and cumulative size, our quotes marked
on their levels, mid and spread in bps between the two sides."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from rich.segment import Segment

from engine.events import Level
from engine.snapshot import QuoteView
from tui.widgets import fmt
from tui.widgets.bars import hbar
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row

_PRICE_W = 10
_SIZE_W = 8
_FIXED_W = 1 + _PRICE_W + 1 + _SIZE_W + 1 + _SIZE_W + 1


@dataclass(frozen=True, slots=True)
class _Entry:
    price: float
    size_base: float | None
    cum_base: float | None
    ours: QuoteView | None
    beyond: bool = False
    """Our quote sits further out than the levels shown: drawn on the outermost row."""


def _side_entries(levels: tuple[Level, ...], quote: QuoteView | None, n: int, is_bid: bool
                  ) -> list[_Entry]:  # fmt: skip
    """The `n` rows of one side, best first, with our quote placed where it sits."""
    entries: list[_Entry] = []
    cum = 0.0
    for price, size_base in levels[:n]:
        cum += size_base
        ours = quote if quote is not None and price == quote.price else None
        entries.append(_Entry(price, size_base, cum, ours))
    if quote is None or n <= 0 or any(e.ours is not None for e in entries):
        return entries

    # Our quote is not on a shown level: between two levels (the book has not caught up
    # yet) or further out than the ladder reaches.
    def better(a: float, b: float) -> bool:
        return a > b if is_bid else a < b

    for i, entry in enumerate(entries):
        if better(quote.price, entry.price):
            entries.insert(i, _Entry(quote.price, None, None, quote))
            return entries[:n]
    # further out than every level the snapshot carries
    outermost = _Entry(quote.price, None, None, quote, beyond=True)
    if len(entries) >= n:
        entries[-1] = outermost
    else:
        entries.append(outermost)
    return entries


class Ladder(LinePane):
    """Asks above (best nearest the middle), the mid line, bids below."""

    def key(self, frame: Frame) -> Hashable:
        s = frame.snapshot
        bq, aq = s.bid_quote, s.ask_quote
        return (
            s.bids,
            s.asks,
            s.mid,
            None if bq is None else (bq.price, bq.leaves_base),
            None if aq is None else (aq.price, aq.leaves_base),
        )

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        s = frame.snapshot
        pd, sd = frame.price_decimals, frame.size_decimals
        per_side = max(0, (height - 2) // 2)
        asks = _side_entries(s.asks, s.ask_quote, per_side, is_bid=False)
        bids = _side_entries(s.bids, s.bid_quote, per_side, is_bid=True)
        biggest = max((e.size_base or 0.0 for e in asks + bids), default=0.0)
        bar_w = max(0, width - _FIXED_W)

        header = f" {'price':>{_PRICE_W}} {'size':>{_SIZE_W}} {'cum':>{_SIZE_W}} "
        rows: list[Row] = [[Segment(fmt.fit(header + "depth", width), p.muted)]]

        def level_row(entry: _Entry, is_bid: bool) -> Row:
            side_style = p.bid if is_bid else p.ask
            if entry.ours is not None and (entry.beyond or entry.size_base is None):
                # not on a shown level: further out than the ladder, or not in the book yet
                where = "⋮" if entry.beyond else "·"
                tag = f" ◀ OUR {'BID' if is_bid else 'ASK'} "
                distance = f"{fmt.bps(entry.ours.distance_bps, 1)} bps"
                return [
                    Segment(f" {fmt.price(entry.price, pd):>{_PRICE_W}}", p.ours),
                    Segment(f" {where}", p.muted),
                    Segment(tag, p.ours),
                    Segment(f" {distance} out", p.muted),
                ]
            assert entry.size_base is not None and entry.cum_base is not None
            row: Row = [
                Segment(
                    f" {fmt.price(entry.price, pd):>{_PRICE_W}}",
                    p.ours if entry.ours is not None else side_style,
                ),
                Segment(
                    f" {fmt.size(entry.size_base, sd):>{_SIZE_W}} "
                    f"{fmt.size(entry.cum_base, sd):>{_SIZE_W}} ",
                    p.text,
                ),
            ]
            if entry.ours is not None:
                tag = f"◀ OUR {'BID' if is_bid else 'ASK'} {fmt.size(entry.ours.leaves_base, sd)}"
                if len(tag) > bar_w:
                    tag = "◀ OURS"
                row.append(Segment(fmt.fit(tag, bar_w), p.ours))
            elif bar_w:
                fraction = entry.size_base / biggest if biggest else 0.0
                row.append(Segment(hbar(fraction, bar_w), p.bid_bar if is_bid else p.ask_bar))
            return row

        blank: Row = []
        ask_rows = [level_row(e, False) for e in reversed(asks)]
        rows += [blank] * (per_side - len(ask_rows)) + ask_rows
        if s.mid is None:
            mid_text = " no two-sided book yet "
        else:
            spread = fmt.bps(s.market_spread_bps, 2)
            mid_text = f" mid {fmt.price(s.mid, pd + 1)} · spread {spread} bps "
        edge = "▲ asks " if width >= len(mid_text) + 18 else ""
        tail = " bids ▼" if edge else ""
        fill = max(0, width - len(edge) - len(mid_text) - len(tail))
        left = fill // 2
        rows.append(
            [
                Segment(edge, p.muted),
                Segment("─" * left, p.rule),
                Segment(mid_text, p.heading),
                Segment("─" * (fill - left), p.rule),
                Segment(tail, p.muted),
            ]
        )
        rows += [level_row(e, True) for e in bids]
        return rows
