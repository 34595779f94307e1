"""The signed inventory gauge: short to long around zero, with the hedge threshold, max
inventory and position cap marked, and the inventory in USD and base units."""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment
from rich.style import Style

from tui.widgets import fmt
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row


class InventoryGauge(LinePane):
    """The gauge, the position in words and units, auto-hedge, the legend of the marks."""

    def key(self, frame: Frame) -> Hashable:
        return frame.snapshot.inventory

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        inv = frame.snapshot.inventory
        value = inv.inventory_usd
        span = max(inv.max_inventory_usd, inv.position_cap_usd, abs(value))
        span_text = fmt.usd(span, 0)
        label_w = len(span_text) + 1
        # "-$2,000 " + track + " +$2,000": an odd track, so the centre cell is zero
        half = max(2, (width - 2 * (label_w + 1) - 1) // 2)
        track_w = 2 * half + 1

        def cell_of(usd: float) -> int:
            return half + round(usd / span * half) if span else half

        # the marks: hedge threshold H, max inventory M, position cap C (both sides)
        marks: dict[int, str] = {}
        for usd_level, char in (
            (inv.position_cap_usd, "C"),
            (inv.max_inventory_usd, "M"),
            (inv.hedge_threshold_usd, "H"),
        ):
            for sign in (-1, 1):
                marks[min(track_w - 1, max(0, cell_of(sign * usd_level)))] = char
        position_cell = cell_of(value)
        lo, hi = sorted((half, position_cell))
        fill_style = p.gauge_long if value >= 0 else p.gauge_short
        cells: list[tuple[str, Style]] = []
        for i in range(track_w):
            filled = value != 0 and lo <= i <= hi and i != half
            if i == half:
                cells.append(("┼", p.text))
            elif i in marks:
                mark_style = Style(bgcolor=fill_style.color, bold=True) if filled else p.gauge_mark
                cells.append((marks[i], mark_style))
            elif filled:
                cells.append(("█", fill_style))
            else:
                cells.append(("─", p.gauge_track))
        gauge: Row = [Segment(f"-{span_text} ".rjust(label_w + 1), p.muted)]
        gauge += [Segment(char, style) for char, style in cells]
        gauge.append(Segment(f" +{span_text}", p.muted))

        if value > 0:
            word, word_style = "▲ LONG ", p.bid_strong
        elif value < 0:
            word, word_style = "▼ SHORT", p.ask_strong
        else:
            word, word_style = "● FLAT ", p.heading
        share = abs(value) / inv.max_inventory_usd * 100 if inv.max_inventory_usd else 0.0
        amounts = (
            f"{fmt.signed_usd(value)}  "
            f"{fmt.signed_size(inv.position_base, frame.size_decimals)} {frame.base_asset}"
        )
        share_text = f"  {share:.0f}% of max"
        if len(word) + 2 + len(amounts) + len(share_text) > width:
            share_text = f"  {share:.0f}%"
        position: Row = [Segment(f" {word} ", word_style), Segment(amounts + share_text, p.text)]
        hedge: Row = [
            Segment(" auto-hedge ", p.text),
            Segment("ON" if inv.auto_hedge else "OFF", p.heading if inv.auto_hedge else p.warning),
            Segment(f" at ±{fmt.usd(inv.hedge_threshold_usd, 0)}", p.text),
        ]
        if inv.hedge_in_flight:
            hedge.append(Segment(" · HEDGE IN FLIGHT", p.warning))
        legend = (
            f" H hedge · M max {fmt.usd(inv.max_inventory_usd, 0)}"
            f" · C cap {fmt.usd(inv.position_cap_usd, 0)}"
        )
        return [gauge, position, hedge, [Segment(fmt.fit(legend, width), p.muted)]]
