"""The blotter (every fill and order of the day) and the alerts log, read from the journal.

Both are scrollable tables fed from the state directory's journal, so they show the whole UTC
day, earlier sessions included, not only this process's lifetime. They read only while on
screen: once when shown, then the new records once a second, off the event loop (a thread),
so a hidden blotter costs the engine nothing. Markouts need the marks that follow a fill; a
fill younger than its horizon shows `…` until a later read fills it in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Static

from engine.journal.export import AlertRow, FillRow, OrderRow, read_blotter, refresh_markouts
from tui.widgets import fmt
from tui.widgets.palette import Palette

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S
POLL_S = 1.0
"""How often a blotter on screen reads the journal's new records."""
ORDERS_SPAN_S = 3_600
"""The orders view reads the last hour: a day of quoting sends hundreds of thousands."""
MARKOUT_WAIT_S = 40.0
"""A fill younger than this is read again until its 30 s markout is known."""

SIDES = ("all", "buy", "sell")
FILL_KINDS = ("all", "maker", "taker")
ORDER_KINDS = ("all", "sent", "done", "cancel")


def day_start_ns(now_ns: int) -> int:
    return now_ns - now_ns % _NS_PER_DAY


def _clock(ts_ns: int) -> str:
    return fmt.clock(ts_ns / _NS_PER_S)


def _markout(value: float | None, p: Palette) -> Text:
    if value is None:
        return Text("…", style=p.muted, justify="right")
    style = p.up if value > 0 else p.down if value < 0 else p.text
    return Text(f"{value:+.2f}", style=style, justify="right")


def _side(side: str, p: Palette) -> Text:
    return Text(side.upper(), style=p.bid_strong if side == "buy" else p.ask_strong)


def _right(text: str) -> Text:
    return Text(text, justify="right")


class _JournalTable(Vertical):
    """A filter line over a DataTable; subclasses say what rows are and how they look."""

    DEFAULT_CSS = """
    _JournalTable > .journal-filter {
        height: 1;
        background: $panel;
        color: $foreground;
    }
    _JournalTable > DataTable {
        height: 1fr;
    }
    """

    def __init__(self, state_dir: Path | None, palette: Palette, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state_dir = state_dir
        self.palette = palette
        self._last_record: int | None = None
        self._failed = False
        self._reading = False
        self._timer: Timer | None = None
        self.reads = 0
        """Journal reads done (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Static("", classes="journal-filter", markup=False)
        table: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=True)
        yield table

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*self.columns())
        self._show_filter()

    def on_show(self) -> None:
        self.run_worker(self.refresh_now(), exclusive=True, group="read")
        if self._timer is None:
            self._timer = self.set_interval(POLL_S, self._tick)
        else:
            self._timer.resume()

    def on_hide(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def _tick(self) -> None:
        if not self._reading:
            self.run_worker(self.refresh_now(), exclusive=True, group="read")

    async def refresh_now(self) -> None:
        """Read what the journal has that this table has not shown yet."""
        if self.state_dir is None or self._reading:
            return
        self._reading = True
        try:
            updates = await asyncio.to_thread(self.read)
        except Exception as err:  # a journal being rotated or repaired: say so, try again
            self.query_one(".journal-filter", Static).update(f" journal unreadable: {err}")
            self._failed = True
            return
        finally:
            self._reading = False
        self.reads += 1
        # applied here, on the loop: what the table shows never changes under it from the thread
        for name, value in updates.items():
            setattr(self, name, value)
        if updates.keys() - {"_last_record"}:
            self.rebuild()
        elif self._failed:
            self._show_filter()  # the error line goes once a read works again
        self._failed = False

    # ---- what subclasses write ----------------------------------------------------------------

    def columns(self) -> Sequence[str]:
        raise NotImplementedError

    def read(self) -> dict[str, Any]:
        """Read new records (in a thread, touching nothing shown): the attributes to set on
        the loop, empty if the rows did not change."""
        raise NotImplementedError

    def rows(self) -> list[list[Any]]:
        """The cells of the rows the filters let through, newest first."""
        raise NotImplementedError

    def filter_text(self) -> str:
        raise NotImplementedError

    # ---- drawing ------------------------------------------------------------------------------

    def restyle(self, palette: Palette) -> None:
        """A new theme: the rows again in its colours."""
        self.palette = palette
        if self.is_mounted:
            self.rebuild()

    def _show_filter(self) -> None:
        self.query_one(".journal-filter", Static).update(self.filter_text())

    def rebuild(self) -> None:
        table = self.table
        row = table.cursor_row
        table.clear()
        for cells in self.rows():
            table.add_row(*cells)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), animate=False)
        self._show_filter()


class BlotterView(_JournalTable):
    """Fills (time, side, price, size, fee or rebate, maker/taker, markouts, order id) or
    orders, newest first; `o` switches fills/orders, `s` the side, `m` the kind."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "toggle_orders", "fills / orders", id="blotter.orders"),
        Binding("s", "cycle_side", "side", id="blotter.side"),
        Binding("m", "cycle_kind", "kind", id="blotter.kind"),
    ]

    def __init__(self, state_dir: Path | None, palette: Palette, *, id: str | None = None) -> None:
        super().__init__(state_dir, palette, id=id)
        self.fills: tuple[FillRow, ...] = ()
        """The day's fills, oldest first (the journal's order)."""
        self.orders: tuple[OrderRow, ...] = ()
        self.show_orders = False
        self._orders_read = False
        self.side = "all"
        self.kind = "all"
        self.price_decimals = 1
        self.size_decimals = 5

    def columns(self) -> Sequence[str]:
        return (
            "time (UTC)", "side", "price", "size", "fee-/rebate+", "kind", "mk 5s bps",
            "mk 30s bps", "order id",
        )  # fmt: skip

    def read(self) -> dict[str, Any]:
        assert self.state_dir is not None
        now = time.time_ns()
        with_orders = self.show_orders
        if self._last_record is None or with_orders != self._orders_read:
            # a full read: the day's fills; orders (a day of quoting is a lot of them) only
            # while they are shown, and only the last hour of them
            blotter = read_blotter(
                self.state_dir, since_ns=day_start_ns(now), orders=False, alerts=False
            )
            fills, orders, last = blotter.fills, (), blotter.last_record
            if with_orders:
                since = max(day_start_ns(now), now - ORDERS_SPAN_S * _NS_PER_S)
                recent = read_blotter(self.state_dir, since_ns=since, alerts=False)
                # the fills journaled between the two reads come with the second
                fills += tuple(f for f in recent.fills if (f.record_id or 0) > last)
                orders, last = recent.orders, recent.last_record
            return {
                "fills": fills,
                "orders": orders,
                "_orders_read": with_orders,
                "_last_record": last,
            }
        blotter = read_blotter(
            self.state_dir, after_record=self._last_record, orders=with_orders, alerts=False
        )
        fills = [*self.fills, *blotter.fills]  # a new list: the loop keeps showing the old one
        changed = bool(blotter.fills or blotter.orders)
        # fills whose markouts were not known yet: their marks may be in the journal now
        pending = [
            i
            for i, f in enumerate(fills)
            if not f.markouts_known and now - f.ts_ns < MARKOUT_WAIT_S * _NS_PER_S
        ]
        if pending:
            known = refresh_markouts(self.state_dir, [fills[i] for i in pending])
            for i, fill in zip(pending, known, strict=True):
                changed |= fill != fills[i]
                fills[i] = fill
        updates: dict[str, Any] = {"_last_record": blotter.last_record}
        if changed:
            updates.update(fills=tuple(fills), orders=self.orders + blotter.orders)
        return updates

    def rows(self) -> list[list[Any]]:
        p = self.palette
        pd, sd = self.price_decimals, self.size_decimals
        out: list[list[Any]] = []
        if self.show_orders:
            sides = {o.order_id: o.side for o in self.orders if o.side}
            for o in reversed(self.orders):
                side = o.side or sides.get(o.order_id)
                if self.side != "all" and side != self.side:
                    continue
                if self.kind != "all" and not o.event.startswith(self.kind):
                    continue
                price = "" if o.price is None else fmt.price(o.price, pd)
                size = "" if o.size_base is None else fmt.size(o.size_base, sd)
                out.append(
                    [_clock(o.ts_ns), _side(side, p) if side else "", _right(price),
                     _right(size), "", f"{o.event} {o.detail}".strip(), "", "", o.order_id]
                )  # fmt: skip
            return out
        for f in reversed(self.fills):
            if self.side != "all" and f.side != self.side:
                continue
            if self.kind != "all" and f.kind != self.kind:
                continue
            out.append(
                [_clock(f.ts_ns), _side(f.side, p), _right(fmt.price(f.price, pd)),
                 _right(fmt.size(f.size_base, sd)), _right(fmt.signed_usd(-f.fee_usd, 4)),
                 f.kind, _markout(f.markout_5s_bps, p), _markout(f.markout_30s_bps, p),
                 f.order_id]
            )  # fmt: skip
        return out

    def filter_text(self) -> str:
        what = "orders" if self.show_orders else "fills"
        count = len(self.orders if self.show_orders else self.fills)
        source = "today" if not self.show_orders else "last hour"
        if self.state_dir is None:
            source = "- no journal (start with a state dir)"
        return (
            f" {what} {source}: {count}   o fills/orders   s side: {self.side}"
            f"   m kind: {self.kind}   ↑↓ PgUp PgDn scroll"
        )

    def action_toggle_orders(self) -> None:
        self.show_orders = not self.show_orders
        self.kind = "all"
        self.rebuild()
        self._tick()  # the orders (or nothing more) read at once

    def action_cycle_side(self) -> None:
        self.side = SIDES[(SIDES.index(self.side) + 1) % len(SIDES)]
        self.rebuild()

    def action_cycle_kind(self) -> None:
        kinds = ORDER_KINDS if self.show_orders else FILL_KINDS
        self.kind = (
            kinds[(kinds.index(self.kind) + 1) % len(kinds)] if self.kind in kinds else "all"
        )
        self.rebuild()


class AlertsLog(_JournalTable):
    """Every alert of the day, newest first; `s` cycles the severity shown."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_severity", "severity", id="alerts.severity"),
    ]
    SEVERITIES = ("all", "warning", "critical", "info")

    def __init__(self, state_dir: Path | None, palette: Palette, *, id: str | None = None) -> None:
        super().__init__(state_dir, palette, id=id)
        self.alerts: tuple[AlertRow, ...] = ()
        """The day's alerts, oldest first."""
        self.severity = "all"

    def columns(self) -> Sequence[str]:
        return ("time (UTC)", "severity", "control", "what", "value", "limit")

    def read(self) -> dict[str, Any]:
        assert self.state_dir is not None
        if self._last_record is None:
            since = day_start_ns(time.time_ns())
            blotter = read_blotter(self.state_dir, since_ns=since, fills=False, orders=False)
        else:
            blotter = read_blotter(
                self.state_dir, after_record=self._last_record, fills=False, orders=False
            )
        updates: dict[str, Any] = {"_last_record": blotter.last_record}
        if blotter.alerts:
            updates["alerts"] = self.alerts + blotter.alerts
        return updates

    def rows(self) -> list[tuple[str, list[Any]]]:
        p = self.palette
        styles = {"info": p.info, "warning": p.warning, "critical": p.critical}
        out: list[list[Any]] = []
        for a in reversed(self.alerts):
            severity = a.severity.lower()
            if self.severity != "all" and severity != self.severity:
                continue
            value = "" if a.value is None else f"{a.value:,.2f}"
            limit = "" if a.threshold is None else f"{a.threshold:,.2f}"
            out.append(
                [_clock(a.ts_ns), Text(severity, style=styles.get(severity, p.text)),
                 a.control, a.message, _right(value), _right(limit)]
            )  # fmt: skip
        return out

    def filter_text(self) -> str:
        source = "no journal (start with a state dir)" if self.state_dir is None else "today"
        return (
            f" alerts {source}: {len(self.alerts)}   s severity: {self.severity}"
            "   ↑↓ PgUp PgDn scroll"
        )

    def action_cycle_severity(self) -> None:
        i = self.SEVERITIES.index(self.severity)
        self.severity = self.SEVERITIES[(i + 1) % len(self.SEVERITIES)]
        self.rebuild()
