"""The spread breakdown: one line per term of the quoted spread, the cap, and the total."""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment

from tui.widgets import fmt
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row


class SpreadPane(LinePane):
    """Terms in bps of mid, full width (bid to ask); why each one is what it is."""

    def key(self, frame: Frame) -> Hashable:
        s = frame.snapshot
        vol = None if s.vol_1h is None else round(s.vol_1h, 6)
        return (s.spread, vol)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        s = frame.snapshot
        b = s.spread
        if b is None:
            return [[Segment(" waiting for a two-sided book", p.muted)]]
        vol = "vol warming up" if s.vol_1h is None else f"vol {s.vol_1h * 100:.2f}%/h"
        terms = [
            ("base", b.base_bps, ""),
            ("vol premium", b.vol_premium_bps, vol),
            ("inventory premium", b.inventory_premium_bps, "|inv|/max"),
            ("manual widen", b.manual_widen_bps, "w / n"),
            ("adverse widen", b.adverse_widen_bps, "fill rate" if b.adverse_widen_bps else ""),
            ("breaker widen", b.breaker_widen_bps, "VOL BREAKER" if b.breaker_widen_bps else ""),
        ]
        label_w = 17
        rows: list[Row] = []
        optional: list[int] = []  # rows that may go when the pane is short, first to go first
        note_room = width - (1 + label_w + 6 + 6)

        def note_of(note: str) -> str:  # a note that does not fit goes whole, never cut
            return note if len(note) <= note_room else ""

        for label, value, note in terms:
            style = p.text if value else p.muted
            if not value and label in ("breaker widen", "adverse widen"):
                optional.append(len(rows))
            rows.append(
                [
                    Segment(f" {label:<{label_w}}{fmt.bps(value):>6} bps  ", style),
                    Segment(note_of(note), p.warning if note.isupper() else p.muted),
                ]
            )
        optional.reverse()
        optional.append(len(rows))
        rows.append([Segment(" " + "─" * max(0, min(width - 2, label_w + 11)), p.rule)])
        capped = b.capped
        rows.append(
            [
                Segment(f" {'cap':<{label_w}}{fmt.bps(b.cap_bps):>6} bps  ", p.text),
                Segment(
                    note_of("CAPPED" if capped else "not reached"),
                    p.warning if capped else p.muted,
                ),
            ]
        )
        rows.append([Segment(f" {'total':<{label_w}}{fmt.bps(b.total_bps):>6} bps", p.heading)])
        # Short of rows (compact layout, KILLED banner): idle widen terms go, then the rule.
        drop = set(optional[: max(0, len(rows) - height)])
        return [row for i, row in enumerate(rows) if i not in drop]
