"""Session charts: net P&L, inventory and the spread terms over the whole session, any pane size.

Each chart is a title rule that says the span covered ("session 2h14m · 1 col = 8s"), a
gutter of y labels (the data's real extremes, so a spike downsampled into one column still
reads at its value) and a plot in block characters at an eighth of a cell. Net P&L and
inventory are signed bars from a zero line to each column's last value, with a thin whisker
out to the column's min and max: a spike is drawn, never averaged away. The spread chart
stacks the terms' means (base, vol premium, inventory premium, widen) up to the quoted total.

Drawing is per column, not per cell (a column's glyphs are one cached string), and each row
is cut into runs of one style (one Segment per run): a 200x60 screen of the three charts over
a day's history costs about 2 ms, redrawn once per history sample (once a wall second at a
sim speed above 1).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from rich.color import Color
from rich.segment import Segment
from rich.style import Style

from engine.history import HistoryBucket, HistoryView
from tui.widgets import fmt
from tui.widgets.bars import LOWER_EIGHTHS
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row
from tui.widgets.palette import Palette

_RUN = re.compile(r"(.)\1*", re.S)
_MIN_PLOT_W = 8
"""Narrower than this, the y labels go: the bars matter more than their scale."""
_MIN_CHART_H = 5
"""A title and four plot rows: below that a chart says nothing a number does not."""


# ---- text -------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """Session time the way a desk says it: 42s, 3m05s, 5m, 2h14m, 2h, 1d03h."""
    if 0 < seconds < 1:
        return f"{seconds:.2g}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    for unit_s, unit, sub_s, sub in (
        (86_400, "d", 3_600, "h"),
        (3_600, "h", 60, "m"),
        (60, "m", 1, "s"),
    ):
        if s >= unit_s:
            whole, rest = divmod(s, unit_s)
            return f"{whole}{unit}{rest // sub_s:02d}{sub}" if rest // sub_s else f"{whole}{unit}"
    return f"{s}s"


def _usd_label(value: float) -> str:
    return fmt.signed_usd(value, 0 if abs(value) >= 1_000 else 2)


def _titles(name: str, history: HistoryView | None, col_s: float, note: str = "") -> list[str]:
    """A chart's title from the fullest to the shortest; the first that fits is shown."""
    if history is None or history.empty:
        return [f"{name} · no samples yet", name]
    span, col = duration(history.span_s), duration(col_s)
    extra = f" · {note}" if note else ""
    return [
        f"{name} · session {span} · 1 col = {col}{extra}",
        f"{name} · session {span} · 1 col = {col}",
        f"{name} · {span} · {col}/col",
        f"{name} · {span}",
        name,
    ]


def _title_row(
    titles: Sequence[str], width: int, style: Style, legend: Sequence[Segment] = ()
) -> Row:
    """`── title ─────` (then the legend, when it fits), exactly `width` cells."""
    legend_w = sum(len(s.text) for s in legend)
    if legend:
        for title in titles:
            head = f"── {title} "
            if len(head) + legend_w + 2 <= width:
                fill = width - len(head) - legend_w
                return [Segment(head + "─" * (fill - 1) + " ", style), *legend]
    for title in titles:
        head = f"── {title} "
        if len(head) <= width:
            return [Segment(head + "─" * (width - len(head)), style)]
    return [Segment(fmt.fit(f"── {titles[-1]}", width), style)]


_EMPTY = "\0"
"""A cell no bar or whisker covers: each row puts its own blank there (space, axis, mark)."""


def _rows_of_columns(
    columns: list[str],
    codes: list[str],
    width: int,
    blanks: Sequence[tuple[str, str]],
    styles: dict[str, Style],
) -> list[Row]:
    """Rows from top-to-bottom column strings (padded with empty columns to `width`): each
    row's `_EMPTY` cells get that row's (glyph, style code), then the row is cut into one
    Segment per run of one code. Columns are strings turned into rows by `zip`, so the Python
    work is per column and per run, not per cell."""
    height = len(blanks)
    pad = width - len(columns)
    if pad > 0:
        columns = columns + [_EMPTY * height] * pad
        codes = codes + [_EMPTY * height] * pad
    rows: list[Row] = []
    row_texts = zip(*columns, strict=True)
    row_codes = zip(*codes, strict=True)
    for chars, cell_codes, (blank, blank_code) in zip(row_texts, row_codes, blanks, strict=True):
        text = "".join(chars).replace(_EMPTY, blank)
        code = "".join(cell_codes).replace(_EMPTY, blank_code)
        rows.append(
            [Segment(text[m.start() : m.end()], styles[m.group(1)]) for m in _RUN.finditer(code)]
        )
    return rows


# ---- the time axis ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """The session cut into columns of `col_s` seconds, from the session's start."""

    col_s: float
    groups: tuple[tuple[HistoryBucket, ...], ...]
    """Buckets per column, first column first; a gap (a stall) is an empty group."""


_NICE_COL_S = (
    *(1, 2, 3, 5, 10, 15, 20, 30),
    *(60, 120, 180, 300, 600, 900, 1_200, 1_800),
    *(3_600, 7_200, 10_800, 14_400, 21_600, 28_800, 43_200, 86_400),
)
"""Seconds per column the operator can count in: 1 col = 15s, 5m, 2h."""


def _col_seconds(span_s: float, columns: int, bucket_s: float) -> float:
    """The shortest round duration, no shorter than a bucket, that fits the span in `columns`
    columns (the last sample's column is column `columns - 1` at the latest)."""
    for nice in _NICE_COL_S:
        if nice >= bucket_s and nice * columns > span_s:
            return float(nice)
    days = math.floor(span_s / columns / 86_400) + 1
    return max(days * 86_400.0, bucket_s)


def time_axis(history: HistoryView | None, columns: int) -> TimeAxis:
    """The buckets grouped into columns of a round duration, as short as fits the session.

    A column is never shorter than a bucket, so no column between two samples is empty;
    where a column boundary falls inside a bucket, the bucket counts in the column it starts in.
    """
    if history is None or history.empty or columns <= 0:
        return TimeAxis(col_s=1.0 if history is None else history.bucket_s, groups=())
    last_start_s = history.buckets[-1].start_s
    col_s = _col_seconds(last_start_s, columns, history.bucket_s)
    groups: list[list[HistoryBucket]] = [[] for _ in range(int(last_start_s // col_s) + 1)]
    for bucket in history.buckets:
        groups[int(bucket.start_s // col_s)].append(bucket)
    return TimeAxis(col_s=col_s, groups=tuple(tuple(g) for g in groups))


# ---- signed bars with whiskers ----------------------------------------------------------------

Span = tuple[float, float, float]
"""One column of a signed series: (last, min, max)."""


@dataclass(frozen=True, slots=True)
class Series:
    """Which bucket fields a signed chart draws: the last value, the min and the max."""

    last: Callable[[HistoryBucket], float]
    lo: Callable[[HistoryBucket], float]
    hi: Callable[[HistoryBucket], float]


NET_PNL = Series(
    last=attrgetter("net_pnl_usd"),
    lo=attrgetter("net_pnl_min_usd"),
    hi=attrgetter("net_pnl_max_usd"),
)
INVENTORY = Series(
    last=attrgetter("inventory_usd"),
    lo=attrgetter("inventory_min_usd"),
    hi=attrgetter("inventory_max_usd"),
)


def _signed_spans(axis: TimeAxis, series: Series) -> list[Span | None]:
    last, lo, hi = series.last, series.lo, series.hi
    return [
        (last(group[-1]), min(map(lo, group)), max(map(hi, group))) if group else None
        for group in axis.groups
    ]


@dataclass(frozen=True, slots=True)
class _SignedScale:
    lo: float
    hi: float
    rows_up: int
    unit: float
    """Value per row."""


def _signed_scale(lo: float, hi: float, height: int) -> _SignedScale:
    """Rows above zero in proportion to the data above zero; one unit per row both ways."""
    lo, hi = min(0.0, lo), max(0.0, hi)
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
    return _SignedScale(lo=lo, hi=hi, rows_up=rows_up, unit=unit)


@functools.lru_cache(maxsize=4_096)
def _signed_column(span: Span | None, rows_up: int, rows_down: int, unit: float) -> tuple[str, str]:
    """One column, top to bottom: glyphs and style codes (u up, d down, h hanging partial)."""
    if span is None:
        return _EMPTY * (rows_up + rows_down), _EMPTY * (rows_up + rows_down)
    last, lo, hi = span
    # above zero, built from the zero line up, then reversed: bar, then whisker to the max
    bar = min(rows_up * 8, round(last / unit * 8)) if last > 0 else 0
    full, part = divmod(bar, 8)
    up = "█" * full + (LOWER_EIGHTHS[part] if part else "")
    tip = min(rows_up * 8, round(hi / unit * 8)) if hi > 0 else 0
    whisker = (tip + 7) // 8 - len(up)
    if whisker > 0:
        half = 0 < tip % 8 <= 4
        up += "│" * (whisker - 1) + ("╷" if half else "│")
    n_up = len(up)
    # below zero, from the zero line down: the hanging bar, then the whisker to the min
    bar = min(rows_down * 8, round(-last / unit * 8)) if last < 0 else 0
    full, part = divmod(bar, 8)
    down = "█" * full + (LOWER_EIGHTHS[8 - part] if part else "")
    down_codes = "d" * full + ("h" if part else "")
    tip = min(rows_down * 8, round(-lo / unit * 8)) if lo < 0 else 0
    whisker = (tip + 7) // 8 - len(down)
    if whisker > 0:
        half = 0 < tip % 8 <= 4
        down += "│" * (whisker - 1) + ("╵" if half else "│")
        down_codes += "d" * whisker
    blank_up, blank_down = rows_up - n_up, rows_down - len(down)
    text = _EMPTY * blank_up + up[::-1] + down + _EMPTY * blank_down
    codes = _EMPTY * blank_up + "u" * n_up + down_codes + _EMPTY * blank_down
    return text, codes


def signed_plot(
    spans: Sequence[Span | None],
    width: int,
    height: int,
    scale: _SignedScale,
    *,
    up: Style,
    down: Style,
    axis: Style,
    background: Color,
    marks: Sequence[float] = (),
    mark: Style | None = None,
) -> list[Row]:
    """`height` rows of `width` cells: each column a bar from zero to its last value and a
    whisker (│, ╷/╵ at a half-cell tip) out to its min and max; `marks` are dashed lines."""
    if width <= 0 or height <= 0:
        return [[] for _ in range(max(0, height))]
    rows_up, unit = scale.rows_up, scale.unit
    rows_down = height - rows_up
    blanks = [(" ", " ")] * height
    for value in marks:
        if 0 < value <= rows_up * unit:
            blanks[rows_up - min(rows_up, math.ceil(value / unit))] = ("╌", "m")
        elif -rows_down * unit <= value < 0:
            blanks[rows_up - 1 + min(rows_down, math.ceil(-value / unit))] = ("╌", "m")
    # the zero line: under the last row above zero, or over the first row below it
    blanks[max(0, rows_up - 1)] = ("▁" if rows_up else "▔", " ")
    columns: list[str] = []
    codes: list[str] = []
    for span in spans[:width]:
        text, code = _signed_column(span, rows_up, rows_down, unit)
        columns.append(text)
        codes.append(code)
    styles = {
        " ": axis,
        "m": mark or axis,
        "u": up,
        "d": down,
        "h": Style(color=background, bgcolor=down.color),
    }
    return _rows_of_columns(columns, codes, width, blanks, styles)


# ---- stacked spread terms ---------------------------------------------------------------------


Stack = tuple[float, float, float, float]
"""One column of the spread chart: the tops of base, vol premium, inventory premium and widen
stacked in that order, in bps, each held to the quoted total (the last top is the total)."""


def _spread_stacks(axis: TimeAxis) -> list[Stack | None]:
    """Each column's means (weighted by samples; a bucket without a spread counts for none),
    stacked. Plain sums, no objects per bucket: this runs over every bucket of the session."""
    stacks: list[Stack | None] = []
    for group in axis.groups:
        n = base = vol = inv = widen = total = 0.0
        for bucket in group:
            means = bucket.spread
            if means is None:
                continue
            k = means.samples
            n += k
            base += means.base_bps * k
            vol += means.vol_premium_bps * k
            inv += means.inventory_premium_bps * k
            widen += (means.manual_widen_bps + means.other_widen_bps) * k
            total += means.total_bps * k
        if not n:
            stacks.append(None)
            continue
        total /= n
        top1 = min(total, base / n)
        top2 = min(total, (base + vol) / n)
        top3 = min(total, (base + vol + inv) / n)
        stacks.append((top1, top2, top3, min(total, (base + vol + inv + widen) / n)))
    return stacks


_FULL_CODES = "ABCD"
"""Style codes of a cell one term fills."""


def _shared_code(lower: int, upper: int) -> str:
    """Style code of a cell where term `lower` ends and `upper` (-1: nothing) goes on."""
    return chr(ord("a") + lower * 5 + upper + 1)


@functools.lru_cache(maxsize=4_096)
def _stack_column(stack: Stack | None, height: int, unit: float) -> tuple[str, str]:
    """One column, top to bottom. A cell two terms share is the lower-block glyph of the
    one that ends in it, on the colour of the one after it (three in one cell: the first two
    show)."""
    if stack is None:
        return _EMPTY * height, _EMPTY * height
    tops = [min(height * 8, round(t / unit * 8)) for t in stack]
    text: list[str] = []
    codes: list[str] = []
    cells = 0  # written so far, from the bottom
    for term, top in enumerate(tops):
        full = top // 8 - cells
        if full > 0:
            text.append("█" * full)
            codes.append(_FULL_CODES[term] * full)
            cells += full
        if top % 8 and top // 8 == cells:
            upper = next((u for u in range(term + 1, 4) if tops[u] > top), -1)
            text.append(LOWER_EIGHTHS[top % 8])
            codes.append(_shared_code(term, upper))
            cells += 1
    blank = _EMPTY * (height - cells)
    return blank + "".join(text)[::-1], blank + "".join(codes)[::-1]


def stacked_plot(
    columns: Sequence[Stack | None],
    width: int,
    height: int,
    top_bps: float,
    colors: Sequence[Color],
    axis: Style,
) -> list[Row]:
    """`height` rows of `width` cells: each column the terms stacked from 0 to the total, at
    an eighth of a cell."""
    if width <= 0 or height <= 0:
        return [[] for _ in range(max(0, height))]
    unit = (top_bps / height) or 1.0
    styles: dict[str, Style] = {" ": axis}
    for lower, color in enumerate(colors):
        styles[_FULL_CODES[lower]] = Style(color=color)
        for upper in range(-1, len(colors)):
            bg = None if upper < 0 else colors[upper]
            styles[_shared_code(lower, upper)] = Style(color=color, bgcolor=bg)
    texts: list[str] = []
    codes: list[str] = []
    for stack in columns[:width]:
        text, code = _stack_column(stack, height, unit)
        texts.append(text)
        codes.append(code)
    blanks = [(" ", " ")] * (height - 1) + [("▁", " ")]
    return _rows_of_columns(texts, codes, width, blanks, styles)


# ---- whole charts -----------------------------------------------------------------------------


def _fit_rows(rows: list[Row], width: int, height: int) -> list[Row]:
    """Exactly `height` rows (blank ones added at the bottom); each row is already `width`."""
    if len(rows) > height:
        return rows[:height]
    return rows + [[Segment(" " * width)] if width > 0 else [] for _ in range(height - len(rows))]


def _gutter(labels: Sequence[str], width: int) -> int:
    """Cells for the y labels plus a space, or 0 where the plot needs them more."""
    label_w = max((len(label) for label in labels), default=0)
    return label_w + 1 if label_w and width - label_w - 1 >= _MIN_PLOT_W else 0


def _labelled(plot: list[Row], labels: dict[int, str], gutter: int, style: Style) -> list[Row]:
    if not gutter:
        return plot
    w = gutter - 1
    return [[Segment(f"{labels.get(r, ''):>{w}.{w}} ", style), *row] for r, row in enumerate(plot)]


@dataclass(frozen=True, slots=True)
class _Signed:
    """A signed chart's scale and its y labels, ready to draw at one height."""

    scale: _SignedScale
    labels: dict[int, str]
    marks: tuple[float, ...]


def _signed_extremes(history: HistoryView | None, series: Series) -> tuple[float, float]:
    if history is None or history.empty:
        return 0.0, 0.0
    return min(map(series.lo, history.buckets)), max(map(series.hi, history.buckets))


def _signed_layout(lo: float, hi: float, plot_h: int, marks: Sequence[float] = ()) -> _Signed:
    """Scale and labels: the data's own extremes label the rows they reach; a mark (max
    inventory) joins the scale once the data has come at least half way to it."""
    scale_lo, scale_hi = min(0.0, lo), max(0.0, hi)
    shown: list[float] = []
    for value in marks:
        if value > 0 and hi >= value / 2:
            scale_hi = max(scale_hi, value)
            shown.append(value)
        elif value < 0 and lo <= value / 2:
            scale_lo = min(scale_lo, value)
            shown.append(value)
    scale = _signed_scale(scale_lo, scale_hi, plot_h)
    rows_up, unit = scale.rows_up, scale.unit
    labels: dict[int, str] = {}
    # each extreme labels the row it reaches (a mark can leave rows above it empty)
    if rows_up and hi > 0:
        labels[max(0, rows_up - math.ceil(hi / unit))] = _usd_label(hi)
    if rows_up < plot_h and lo < 0:
        labels[min(plot_h - 1, rows_up - 1 + math.ceil(-lo / unit))] = _usd_label(lo)
    zero_row = max(0, rows_up - 1)
    if zero_row not in labels:
        labels[zero_row] = "$0"
    return _Signed(scale=scale, labels=labels, marks=tuple(shown))


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where a chart's plot starts (the y-label gutter) and what each column covers."""

    gutter: int
    axis: TimeAxis


def _columns(history: HistoryView | None, width: int, labels: Sequence[str]) -> _Columns:
    gutter = _gutter(labels, width)
    return _Columns(gutter=gutter, axis=time_axis(history, width - gutter))


def _signed_chart(
    name: str,
    series: Series,
    history: HistoryView | None,
    width: int,
    height: int,
    palette: Palette,
    *,
    marks: Sequence[float] = (),
    note: str = "",
    columns: _Columns | None = None,
) -> list[Row]:
    if height <= 0:
        return []
    if width <= 0:
        return [[] for _ in range(height)]
    p = palette
    plot_h = height - 1
    layout = _signed_layout(*_signed_extremes(history, series), max(1, plot_h), marks)
    if columns is None:
        columns = _columns(history, width, list(layout.labels.values()))
    rows = [_title_row(_titles(name, history, columns.axis.col_s, note), width, p.rule)]
    if plot_h <= 0:
        return rows
    plot = signed_plot(
        _signed_spans(columns.axis, series),
        width - columns.gutter,
        plot_h,
        layout.scale,
        up=p.up,
        down=p.down,
        axis=p.rule,
        background=p.background,
        marks=layout.marks,
        mark=p.warning,
    )
    return rows + _labelled(plot, layout.labels, columns.gutter, p.muted)


def _inventory_marks(max_inventory_usd: float | None) -> tuple[float, ...]:
    return (max_inventory_usd, -max_inventory_usd) if max_inventory_usd else ()


def _spread_colors(p: Palette) -> list[Color]:
    """base, vol premium, inventory premium, widen: four colours every theme tells apart."""
    black = Color.default()
    return [style.color or black for style in (p.muted, p.bid, p.warning, p.ask)]


def _spread_top(history: HistoryView | None) -> float:
    if history is None or history.empty:
        return 0.0
    return max((b.spread.total_bps for b in history.buckets if b.spread is not None), default=0.0)


def _spread_labels(top_bps: float, plot_h: int) -> dict[int, str]:
    if not top_bps:
        return {}
    labels = {0: f"{top_bps:.1f}"}  # the title says bps
    if plot_h > 1:
        labels[plot_h - 1] = "0"
    return labels


def _spread_chart(
    history: HistoryView | None,
    width: int,
    height: int,
    palette: Palette,
    columns: _Columns | None = None,
) -> list[Row]:
    if height <= 0:
        return []
    if width <= 0:
        return [[] for _ in range(height)]
    p = palette
    plot_h = height - 1
    top = _spread_top(history)
    labels = _spread_labels(top, plot_h)
    if columns is None:
        columns = _columns(history, width, list(labels.values()))
    colors = _spread_colors(p)
    legend: list[Segment] = []
    for name, color in zip(("base", "vol", "inv", "widen"), colors, strict=True):
        legend += [Segment("█", Style(color=color)), Segment(f"{name} ", p.muted)]
    titles = _titles("spread bps", history, columns.axis.col_s)
    rows = [_title_row(titles, width, p.rule, legend)]
    if plot_h > 0:
        stacks = _spread_stacks(columns.axis)
        plot = stacked_plot(stacks, width - columns.gutter, plot_h, top, colors, p.rule)
        rows += _labelled(plot, labels, columns.gutter, p.muted)
    return rows


def net_pnl_rows(
    history: HistoryView | None, width: int, height: int, palette: Palette
) -> list[Row]:
    """Net P&L over the session: exactly `height` rows of `width` cells."""
    rows = _signed_chart("net P&L", NET_PNL, history, width, height, palette)
    return _fit_rows(rows, width, height)


def inventory_rows(
    history: HistoryView | None,
    width: int,
    height: int,
    palette: Palette,
    max_inventory_usd: float | None = None,
) -> list[Row]:
    """Signed inventory over the session, ±max inventory dashed once the data nears it:
    exactly `height` rows of `width` cells."""
    note = f"max ±{fmt.usd(max_inventory_usd, 0)}" if max_inventory_usd else ""
    marks = _inventory_marks(max_inventory_usd)
    rows = _signed_chart(
        "inventory", INVENTORY, history, width, height, palette, marks=marks, note=note
    )
    return _fit_rows(rows, width, height)


def spread_rows(
    history: HistoryView | None, width: int, height: int, palette: Palette
) -> list[Row]:
    """The spread terms' means stacked to the quoted total, over the session: exactly
    `height` rows of `width` cells."""
    return _fit_rows(_spread_chart(history, width, height, palette), width, height)


def session_rows(
    history: HistoryView | None,
    width: int,
    height: int,
    palette: Palette,
    max_inventory_usd: float | None = None,
) -> list[Row]:
    """Net P&L, then inventory, then the spread terms, as many as the height gives room for
    (each at least `_MIN_CHART_H` rows), on one time axis: exactly `height` rows."""
    if height <= 0:
        return []
    if width <= 0:
        return [[] for _ in range(height)]
    count = max(1, min(3, height // _MIN_CHART_H))
    # one gutter and one time axis for all: the columns line up from chart to chart
    marks = _inventory_marks(max_inventory_usd)
    labels = [
        *_signed_layout(*_signed_extremes(history, NET_PNL), 2).labels.values(),
        *_signed_layout(*_signed_extremes(history, INVENTORY), 2, marks).labels.values(),
        *_spread_labels(_spread_top(history), 2).values(),
    ]
    columns = _columns(history, width, labels)
    note = f"max ±{fmt.usd(max_inventory_usd, 0)}" if max_inventory_usd else ""
    builders: list[Callable[[int], list[Row]]] = [
        lambda h: _signed_chart("net P&L", NET_PNL, history, width, h, palette, columns=columns),
        lambda h: _signed_chart(
            "inventory",
            INVENTORY,
            history,
            width,
            h,
            palette,
            marks=marks,
            note=note,
            columns=columns,
        ),
        lambda h: _spread_chart(history, width, h, palette, columns),
    ][:count]
    rows: list[Row] = []
    for i, build in enumerate(builders):
        rows += build(height // count + (1 if i < height % count else 0))
    return _fit_rows(rows, width, height)


# ---- panes ------------------------------------------------------------------------------------


def redraw_key(frame: Frame) -> Hashable:
    """When a session chart needs redrawing: at each new sample, or at sim speed ×N (N samples
    a wall second) once a wall second: a chart a second old is still the session's chart."""
    history = frame.history
    if history is None:
        return None
    if frame.speed <= 1:
        return history.version
    return (math.floor(frame.wall_time_s), history.empty)


class SessionCharts(LinePane):
    """One to three session charts stacked (net P&L, inventory, spread), by the pane's height."""

    DEFAULT_CSS = """
    SessionCharts {
        height: 1fr;
    }
    """

    def key(self, frame: Frame) -> Hashable:
        return (redraw_key(frame), frame.snapshot.inventory.max_inventory_usd)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        max_usd = frame.snapshot.inventory.max_inventory_usd
        return session_rows(frame.history, width, height, self.palette, max_usd)
