"""A signed bar chart in block characters: bars rise above a zero line and hang below it.

Sparklines scale to the data's min and max and lose the sign; a P&L chart must show where
zero is. Bars grow from the zero boundary at an eighth of a cell: upward with the lower-block
glyphs, downward with the same glyphs drawn in the background colour over the bar colour (a
top-aligned partial block that every terminal font has).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color
from rich.segment import Segment
from rich.style import Style

from tui.widgets.bars import LOWER_EIGHTHS

Row = list[Segment]


def signed_chart(
    values: Sequence[float],
    width: int,
    height: int,
    *,
    up: Style,
    down: Style,
    axis: Style,
    background: Color,
) -> list[Row]:
    """`height` rows of `width` cells, one column per value (the last `width` values)."""
    if width <= 0 or height <= 0:
        return []
    shown = list(values[-width:])
    hi = max([0.0, *shown])
    lo = min([0.0, *shown])
    if hi == lo:
        rows_up = height // 2
    else:
        rows_up = round(height * hi / (hi - lo))
        if hi > 0:
            rows_up = max(1, rows_up)
        if lo < 0:
            rows_up = min(height - 1, rows_up)
    rows_down = height - rows_up
    unit = max(hi / rows_up if rows_up else 0.0, -lo / rows_down if rows_down else 0.0) or 1.0
    hang = Style(color=background, bgcolor=down.color)
    pad = width - len(shown)
    rows: list[Row] = []
    for r in range(height):
        above = r < rows_up
        # one axis line at zero: under the last row above it, or over the first row below
        boundary = r == rows_up - 1 if above else (r == 0 and rows_up == 0)
        empty = ("▁" if above else "▔") if boundary else " "
        row: Row = [Segment(empty * pad, axis)] if pad else []
        for x in shown:
            if above:
                bottom = (rows_up - r - 1) * unit
                eighths = round(max(0.0, min(1.0, (x - bottom) / unit)) * 8) if x > 0 else 0
                if eighths:
                    row.append(Segment(LOWER_EIGHTHS[eighths], up))
                else:
                    row.append(Segment(empty, axis))
            else:
                top = -(r - rows_up) * unit
                eighths = round(max(0.0, min(1.0, (top - x) / unit)) * 8) if x < 0 else 0
                if eighths == 8:
                    row.append(Segment("█", down))
                elif eighths:
                    row.append(Segment(LOWER_EIGHTHS[8 - eighths], hang))
                else:
                    row.append(Segment(empty, axis))
        rows.append(row)
    return rows
