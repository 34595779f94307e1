"""Our two quotes: price, size, distance from mid, age and state, and the width we quote."""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment
from rich.style import Style

from engine.events import Side
from engine.snapshot import Phase, QuoteView
from tui.widgets import fmt
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row

# (name, width, drop order: higher goes first when the pane is narrow; 0 never goes)
_COLUMNS: tuple[tuple[str, int, int], ...] = (
    ("side", 4, 0),
    ("price", 10, 0),
    ("size", 8, 2),
    ("dist bps", 9, 0),
    ("age", 6, 3),
    ("state", 9, 1),
)


def _columns_for(width: int) -> list[tuple[str, int]]:
    columns = list(_COLUMNS)
    while sum(w for _, w, _ in columns) + 1 > width:
        droppable = [c for c in columns if c[2] > 0]
        if not droppable:
            break
        columns.remove(max(droppable, key=lambda c: c[2]))
    return [(name, w) for name, w, _ in columns]


class QuotesPane(LinePane):
    """One row per side; 'none' with the reason when a side is not quoted."""

    def key(self, frame: Frame) -> Hashable:
        s = frame.snapshot
        return (s.bid_quote, s.ask_quote, s.status, s.state, s.phase, s.mid)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        s = frame.snapshot
        columns = _columns_for(width)
        header = " " + "".join(
            name.ljust(w) if name == "side" else name.rjust(w - 1) + " " for name, w in columns
        )
        rows: list[Row] = [[Segment(header, p.muted)]]
        for side, quote in ((Side.SELL, s.ask_quote), (Side.BUY, s.bid_quote)):
            rows.append(self._quote_row(frame, columns, side, quote))
        if s.bid_quote is not None and s.ask_quote is not None and s.mid:
            width_bps = (s.ask_quote.price - s.bid_quote.price) / s.mid * 1e4
            mid = fmt.price(s.mid, 2)
            # the longest wording that fits: never a number cut short
            for summary in (
                f" quoted {width_bps:.2f} bps wide around mid {mid}",
                f" quoted {width_bps:.2f} bps wide · mid {mid}",
                f" {width_bps:.2f} bps wide · mid {mid}",
                f" {width_bps:.2f} bps wide",
            ):
                if len(summary) <= width:
                    break
            rows.append([Segment(fmt.fit(summary, width), p.muted)])
        elif s.phase in (Phase.ONE_SIDED, Phase.NOT_QUOTING):
            text = f" {s.phase.value}: {s.phase_detail}"
            rows.append([Segment(fmt.fit_words(text, width), p.warning)])
        elif s.phase is Phase.QUOTING:  # a side waits for its cancel's answer before replacing
            rows.append([Segment(fmt.fit(" replacing: waiting for the cancel", width), p.muted)])
        else:
            rows.append([Segment(fmt.fit_words(f" not quoting: {s.status}", width), p.warning)])
        return rows

    def _quote_row(
        self, frame: Frame, columns: list[tuple[str, int]], side: Side, quote: QuoteView | None
    ) -> Row:
        p = self.palette
        is_bid = side is Side.BUY
        side_style: Style = p.bid_strong if is_bid else p.ask_strong
        label = "BID" if is_bid else "ASK"
        row: Row = [Segment(" ")]
        for name, w in columns:
            if name == "side":
                row.append(Segment(label.ljust(w), side_style))
                continue
            if quote is None:
                text = "none" if name == "state" else "-"
                row.append(Segment(text.rjust(w - 1) + " ", p.muted))
                continue
            style = p.text
            if name == "price":
                text = fmt.price(quote.price, frame.price_decimals)
                style = side_style
            elif name == "size":
                text = fmt.size(quote.leaves_base, frame.size_decimals)
            elif name == "dist bps":
                text = fmt.bps(quote.distance_bps)
            elif name == "age":
                text = fmt.age(quote.age_s)
            else:
                text = quote.state
                style = p.text if quote.state == "resting" else p.warning
            row.append(Segment(text.rjust(w - 1) + " ", style))
        return row
