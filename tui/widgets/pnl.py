"""P&L: each attribution term, net, the day against its loss limit, fees, volume, fill rate,
markouts, and a signed chart of net P&L over the whole session (downsampled)."""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment
from rich.style import Style

from tui.widgets import fmt
from tui.widgets.charts import net_pnl_rows, redraw_key
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row


class PnlPane(LinePane):
    """Numbers first (signed, with ▲/▼), the chart in whatever height is left."""

    _chart_cache: tuple[Hashable, list[Row]] | None = None
    """The session chart's rows and what they were drawn from."""

    def key(self, frame: Frame) -> Hashable:
        return (frame.snapshot.pnl, redraw_key(frame))

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        pnl = frame.snapshot.pnl
        t = pnl.terms
        label_w = 16
        value_w = max(10, min(14, width - label_w - 4))

        def money_row(label: str, value: float, strong: bool = False) -> Row:
            style = p.up if value > 0 else p.down if value < 0 else p.muted
            if strong:
                style = style + p.heading
            return [
                Segment(f" {label:<{label_w}}", p.heading if strong else p.text),
                Segment(f"{fmt.signed_usd(value):>{value_w}}", style),
            ]

        rows: list[Row] = [
            money_row("spread capture", t.spread_usd),
            money_row("rebates", t.rebates_usd),
            money_row("inventory", t.inventory_usd),
            money_row("hedge", t.hedge_usd),
            money_row("funding", t.funding_usd),
            [Segment(" " + "─" * (label_w + value_w), p.rule)],
        ]
        net_row = money_row("net P&L", t.net_usd, strong=True)
        net_row.append(Segment(" ▲" if t.net_usd > 0 else " ▼" if t.net_usd < 0 else " ●", p.text))
        rows.append(net_row)
        limit = pnl.daily_loss_limit_usd
        used = max(0.0, -pnl.day_pnl_usd) / limit * 100 if limit else 0.0
        day_style = p.critical if used >= 80 else p.warning if used >= 50 else p.text
        day_used = f" ({used:.0f}% used)" if used else ""
        fill_rate = "n/a" if pnl.fill_rate is None else f"{pnl.fill_rate * 100:.0f}%"
        markouts = [f"{label} {fmt.signed_bps(v, 1)}" for label, v in pnl.markouts_bps]
        room = width - 12

        def first_fit(*texts: str) -> str:
            """The longest wording that fits whole; the last one cut at a word, never inside
            a number."""
            for text in texts:
                if len(text) <= room:
                    return text
            return fmt.fit_words(texts[-1], room)

        def info(label: str, text: str, style: Style = p.text) -> Row:
            return [Segment(f" {label:<11}", p.muted), Segment(text, style)]

        day = f"{fmt.signed_usd(pnl.day_pnl_usd)} of -{fmt.usd(limit, 0)}"
        rows += [
            info("day", first_fit(f"{day} limit{day_used}", f"{day}{day_used}", day), day_style),
            info("fees paid", first_fit(fmt.signed_usd(pnl.fees_paid_usd))),
            info(
                "volume",
                first_fit(
                    f"{fmt.usd(pnl.volume_usd, 0)} · {pnl.fills} fills", f"{pnl.fills} fills"
                ),
            ),
            info(
                "fill rate",
                first_fit(
                    fill_rate if pnl.fill_rate is None else f"{fill_rate} of quotes", fill_rate
                ),
            ),
            # the longest horizons first: a 30 s markout says more than a 1 s one
            info(
                "markouts",
                first_fit(*(" ".join(markouts[i:]) + " bps" for i in range(len(markouts)))),
            ),
        ]

        chart_h = height - len(rows)
        if chart_h >= 3:  # a title and two rows of bars
            rows += self._chart(frame, width, chart_h)
        return rows

    def _chart(self, frame: Frame, width: int, height: int) -> list[Row]:
        """The session chart; the numbers change every frame, the chart once a sample."""
        key = (redraw_key(frame), width, height, self.palette)
        if self._chart_cache is None or self._chart_cache[0] != key:
            self._chart_cache = (key, net_pnl_rows(frame.history, width, height, self.palette))
        return self._chart_cache[1]
