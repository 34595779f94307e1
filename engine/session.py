"""A live session: the engine with its journal, recovery from the last session, and a recorded exit.

`open_engine` reads the journal in the state directory, restarts the embedded exchange with the
account it had (a paper account survives restarts like a real one), restores the core's
inventory, P&L, day baseline and kill state, and wraps the venue so that every order, fill and
cancel is journaled and every venue event passes the message gate before the core sees it.
The engine journals state changes, alerts, commands and a mark a second; `close` records how
the session ended.

What real money leans on here:
- Order ids are session-unique (`s<session>-<random>-q17`), so a restart can tell its orders
  from a crashed session's; orders the last session left open, or any order of ours the
  venue still holds at start, are cancelled and the operator is told what was found.
- A fill the gate refuses (not one of our working orders, oversized, at a price we did not
  quote, an absurd fee) is never booked, journaled as booked or hedged: it is a critical
  alert, the position is checked against the venue's, and a second one within a minute kills.
- A journal that cannot record a fill within `risk.journal_stall_s` kills (cancel all, stop
  quoting) with the reason on screen; resume is refused until the journal has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.alerts import Severity
from engine.config import Settings
from engine.events import (
    Action,
    BookUpdate,
    CancelAll,
    CancelOrder,
    CancelRejected,
    Command,
    Fill,
    FundingPayment,
    Kill,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    ReplaceQuote,
    Resume,
    Trade,
    VenueEvent,
)
from engine.journal import CloseReport, Journal, funding_history, lock_state_dir, order_history
from engine.live import LiveEngine, check_venue, run_headless, signals_absorbed
from engine.quoter import Quoter
from engine.sim.configure import sim_params
from engine.snapshot import EngineState
from engine.validate import MessageGuard

_NS_PER_S = 1_000_000_000
_REFUSED_FILL_WINDOW_NS = 60 * _NS_PER_S
WallClock = Callable[[], int]


class JournaledVenue:
    """The venue as the core sees it: actions journaled on the way out, events checked by the
    message gate and journaled on the way in (a refused event becomes an alert, or a kill)."""

    def __init__(self, venue: Any, journal: Journal, quoter: Quoter, wall_ns: WallClock) -> None:
        self.venue = venue
        self.journal = journal
        self.quoter = quoter
        params = getattr(venue, "params", None) or venue  # a network venue says its own fees
        top_fee_pct = max(abs(params.maker_fee_pct), abs(params.taker_fee_pct), 0.01)
        self.guard = MessageGuard(
            last_mid=None,
            orders=quoter.working_order,
            tick_size=venue.instrument.tick_size,
            lot_size=venue.instrument.lot_size,
            max_fee_rate=2 * top_fee_pct / 100,
        )
        self._wall_ns = wall_ns
        self.refused_fill_ns: deque[int] = deque()
        """Venue times of the fills refused in the last minute."""
        self.refused_fills = 0
        self._position_check_due = False
        self._position_check_why = "after a refused fill"

    def __getattr__(self, name: str) -> Any:  # the rest of the venue's surface, unchanged
        return getattr(self.venue, name)

    @property
    def next_ts_ns(self) -> int:
        return self.venue.next_ts_ns

    def submit(self, action: Action, now_ns: int) -> None:
        wall = self._wall_ns()
        journal = self.journal
        if isinstance(action, PlaceQuote):
            journal.append(
                "order_sent",
                wall,
                {
                    "order_id": action.order_id,
                    "kind": "quote",
                    "side": int(action.side),
                    "price": action.price,
                    "size_base": action.size_base,
                },
            )
        elif isinstance(action, PlaceHedge):
            journal.append(
                "order_sent",
                wall,
                {
                    "order_id": action.order_id,
                    "kind": "hedge",
                    "side": int(action.side),
                    "size_base": action.size_base,
                    "reason": action.reason,
                },
            )
        elif isinstance(action, CancelOrder):
            journal.append("cancel_sent", wall, {"order_id": action.order_id})
        elif isinstance(action, ReplaceQuote):
            quote = action.quote
            journal.append("cancel_sent", wall, {"order_id": action.old_order_id})
            journal.append(
                "order_sent",
                wall,
                {
                    "order_id": quote.order_id,
                    "kind": "quote",
                    "side": int(quote.side),
                    "price": quote.price,
                    "size_base": quote.size_base,
                    "replaces": action.old_order_id,
                },
            )
        elif isinstance(action, CancelAll):
            journal.append("cancel_all_sent", wall, {"reason": action.reason})
        self.venue.submit(action, now_ns)

    def step(self) -> list[VenueEvent]:
        # The core has handled the last batch by now: its orders and position are current.
        guard = self.guard
        guard.core_caught_up()
        if self._position_check_due:
            self._position_check_due = False
            self.check_position(self.venue.now_ns)
        events = self.venue.step()
        now = self.venue.now_ns
        passed: list[VenueEvent] = []
        for event in events:
            problem = guard.check(event, now)
            if problem is not None:
                self._refuse(event, problem, now)
                continue
            passed.append(event)
            if isinstance(
                event, Fill | OrderCanceled | OrderRejected | CancelRejected | FundingPayment
            ):
                self._journal_event(event)
        guard.accepted_mid(self.quoter.book.mid)
        return passed

    def _refuse(self, event: object, problem: str, now: int) -> None:
        quoter = self.quoter
        message = f"venue message refused: {problem}"
        if isinstance(event, BookUpdate | Trade):
            quoter.raise_alert(now, Severity.WARNING, "feed", message)
            return
        self.journal.append(
            "refused", self._wall_ns(), {"event": type(event).__name__, "problem": problem}
        )
        if isinstance(event, Fill):
            # Never booked, never hedged. Our picture of the account may be wrong: check the
            # venue's position (after the core has handled this batch), and stop on a second.
            self.refused_fills += 1
            self.position_check("after a refused fill")
            times = self.refused_fill_ns
            times.append(now)
            while times and times[0] < now - _REFUSED_FILL_WINDOW_NS:
                times.popleft()
            quoter.raise_alert(now, Severity.CRITICAL, "orders", f"fill refused: {problem}")
            if len(times) >= 2 and quoter.state is not EngineState.KILLED:
                self._kill(now, f"{len(times)} fills refused within a minute ({problem})")
            return
        # Any other order or account message we cannot read means our position is no longer
        # known: stop and cancel everything rather than trade on a wrong inventory.
        if quoter.state is EngineState.KILLED:
            quoter.raise_alert(now, Severity.CRITICAL, "feed", message)
            return
        for action in quoter.on_error(message, now):
            self.submit(action, now)

    def _kill(self, now: int, reason: str) -> None:
        for action in self.quoter.on_command(Kill(reason), now):
            self.submit(action, now)

    def position_check(self, why: str) -> None:
        """Check our position against the venue's after the next batch (it needs a mid)."""
        self._position_check_why = why
        self._position_check_due = True

    def check_position(self, now: int) -> None:
        """The venue's position is the truth: adopt it (and say so) if ours differs."""
        quoter = self.quoter
        venue_position = self.venue.position_base
        ours = quoter.position_base
        if abs(venue_position - ours) < quoter.instrument.lot_size / 2:
            quoter.raise_alert(
                now,
                Severity.INFO,
                "reconcile",
                f"position checked {self._position_check_why}: venue and core agree at {ours:g}",
            )
            return
        if quoter.book.mid is None:
            self._position_check_due = True  # needs a mid to mark the difference: next batch
            return
        # the core's alert says both positions; the refused fill was already a critical one
        adopt_venue_position(quoter, self.journal, venue_position, now, self._wall_ns())

    def _journal_event(self, event: VenueEvent) -> None:
        wall = self._wall_ns()
        if isinstance(event, Fill):
            mid = self.quoter.book.mid if event.venue_mid is None else event.venue_mid
            self.journal.fill(wall, event, mid)
            if event.leaves_base <= 0:
                self.journal.append("order_done", wall, {"order_id": event.order_id})
        elif isinstance(event, OrderCanceled | OrderRejected):
            self.journal.append(
                "order_done", wall, {"order_id": event.order_id, "why": type(event).__name__}
            )
        elif isinstance(event, CancelRejected):
            self.journal.append(
                "cancel_refused", wall, {"order_id": event.order_id, "reason": event.reason}
            )
        elif isinstance(event, FundingPayment):
            self.journal.append(
                "funding",
                wall,
                {
                    "rate": event.rate,
                    "mark_price": event.mark_price,
                    "venue_ms": event.ts_ns // 1_000_000,  # a restart books it not again
                },
            )


class JournaledEngine(LiveEngine):
    """The live engine, journaling what the core decided: state, alerts, commands, marks."""

    journal: Journal
    wall_ns: WallClock
    market: JournaledVenue

    def attach(
        self, journal: Journal, wall_ns: WallClock, left_open: dict[str, int] | None = None
    ) -> None:
        self.journal = journal
        self.wall_ns = wall_ns
        self._journaled_state = self.quoter.state
        self._journaled_alerts = sum(self.quoter.alert_counts.values())
        self._next_mark_wall_ns = 0
        self._reconciled = False
        self._left_open: dict[str, int] | None = dict(left_open or {})
        """Orders the journal says the last session left open: checked at the first pump."""
        self._journal_failing = False
        self._journal_failures_seen = journal.failure_count
        self._exit_marked = False
        self.close_report: CloseReport | None = None
        self.market = JournaledVenue(self.market, journal, self.quoter, wall_ns)

    def send(self, command: Command) -> None:
        self.journal.append(
            "command", self.wall_ns(), {"command": type(command).__name__, **_fields(command)}
        )
        super().send(command)

    def command_actions(self, command: Command, now_ns: int) -> list[Action]:
        if isinstance(command, Resume) and self.journal.failure:
            self.quoter.raise_alert(
                now_ns,
                Severity.CRITICAL,
                "journal",
                f"resume refused: the journal cannot record fills ({self.journal.failure})",
            )
            return []
        return super().command_actions(command, now_ns)

    def pump(self) -> None:
        if self._left_open is not None:  # before the core's first quote: nothing of ours doubles
            try:
                self._cancel_left_behind()
            except Exception as exc:
                self._fail(exc)
        super().pump()
        try:
            self.watch_journal()
            self.journal_core()
        except Exception as exc:  # the journal must never stop the engine: kill and report
            self._fail(exc)

    def watch_journal(self) -> None:
        """A journal that cannot record fills stops the trading until it can again; a failure
        that came and went between two looks still kills (the count says it happened)."""
        journal = self.journal
        now = self._core_now_ns
        failure = journal.failure  # reading it also notices a commit stuck past stall_s
        count = journal.failure_count
        if count != self._journal_failures_seen:
            self._journal_failures_seen = count
            reason = failure or journal.last_failure or "journal write failed"
            self._journal_failing = True
            if self.quoter.state is not EngineState.KILLED:
                for action in self.quoter.on_command(Kill(f"journal: {reason}"), now):
                    self.market.submit(action, now)
        if self._journal_failing and not failure:
            self._journal_failing = False
            note = journal.take_recovered_note() or "journal writable again"
            self.quoter.raise_alert(
                now, Severity.INFO, "journal", f"{note}; every record is on disk, resume when ready"
            )

    def journal_core(self) -> None:
        """Write what changed in the core since the last call: state, new alerts, a mark."""
        quoter, journal = self.quoter, self.journal
        wall = self.wall_ns()
        if quoter.state is not self._journaled_state:
            self._journaled_state = quoter.state
            journal.append(
                "state", wall, {"state": quoter.state.value, "reason": quoter.kill_reason}
            )
        total = sum(quoter.alert_counts.values())
        if total != self._journaled_alerts:
            new = min(total - self._journaled_alerts, len(quoter.alerts))
            for alert in list(quoter.alerts)[-new:] if new else ():
                journal.append(
                    "alert",
                    wall,
                    {
                        "severity": alert.severity.value,
                        "control": alert.control,
                        "message": alert.message,
                        "value": alert.value,
                        "threshold": alert.threshold,
                    },
                )
            self._journaled_alerts = total
        mid = quoter.book.mid
        if not self._reconciled and mid is not None:
            # The venue's position wins over the journal's; any difference is alerted.
            adopt_venue_position(
                quoter, journal, self.market.position_base, self._core_now_ns, wall
            )
            self._reconciled = True
        if mid is not None and wall >= self._next_mark_wall_ns:
            journal.mark(wall, mid)
            self._next_mark_wall_ns = wall + _NS_PER_S

    async def book_missed(self) -> tuple[int, int]:
        """Before the first pump, on a venue that can say what happened while perpdesk was
        down: the fills an earlier session's orders (those the journal never saw over) made,
        booked once each by the venue's trade id, and the funding paid on the position held,
        booked once each by its time; in the venue's time order, so each payment meets the
        position it was paid on. A restart (after kill -9 too) loses nothing and books nothing
        twice. Returns (fills, payments) booked."""
        venue = self.market.venue
        if not hasattr(venue, "missed_fills"):
            return 0, 0
        fills, history = await self._missed_fills(venue)
        last_ns, paid_hours = funding_history(self.journal.path.parent, self.journal.session)
        payments: list[tuple[int, Any, Any]] = []
        if last_ns is not None:  # from a little before the last session's last record
            payments = await venue.missed_funding(last_ns // 1_000_000 - 300_000, paid_hours)
        booked_payments = 0
        timeline: list[tuple[int, int, Fill | None, tuple[int, Any, Any] | None]] = sorted(
            [(fill.ts_ns // 1_000_000, 0, fill, None) for fill in fills]
            + [(payment[0], 1, None, payment) for payment in payments],
            key=lambda item: (item[0], item[1]),
        )
        for _, _, fill, payment in timeline:
            if fill is not None:
                self._book_missed_fill(fill, history)
            elif payment is not None and self._book_missed_funding(*payment):
                booked_payments += 1
        return len(fills), booked_payments

    async def _missed_fills(self, venue: Any) -> tuple[list[Fill], dict[str, Any]]:
        open_orders = self.journal.recovered.open_orders
        if not open_orders:
            return [], {}
        history = order_history(
            self.journal.path.parent, open_orders, since_session=min(open_orders.values())
        )
        sent = [h.sent_ns for h in history.values() if h.sent_ns is not None]
        if not sent:
            return [], history
        # From when the oldest of them was sent (a minute early: the venue's clock is not ours)
        since_ms = min(sent) // 1_000_000 - 60_000
        known: set[str] = set().union(*(h.trade_ids for h in history.values()))
        return await venue.missed_fills(list(history), since_ms, known), history

    def _book_missed_fill(self, fill: Fill, history: dict[str, Any]) -> None:
        now = self._core_now_ns
        order = history[fill.order_id]
        order.filled_base += fill.size_base
        leaves = 0.0
        if order.size_base is not None:
            leaves = max(0.0, round(order.size_base - order.filled_base, 12))
        fill = dataclasses.replace(fill, ts_ns=now, leaves_base=leaves)
        self.quoter.book_missed_fill(fill, now)
        wall = self.wall_ns()
        self.journal.fill(wall, fill, None)
        if leaves <= 0:
            self.journal.append("order_done", wall, {"order_id": fill.order_id})

    def _book_missed_funding(self, venue_ms: int, usdc: Any, rate: Any) -> bool:
        """One hourly payment made while perpdesk was down: booked for exactly what the venue
        paid, as the funding term's rate times our position at the mark that gives it (the
        journal replays it the same way); said when our position cannot carry it."""
        quoter, now = self.quoter, self._core_now_ns
        usd, rate_f = float(usdc), float(rate)
        position = quoter.ledger.position_base
        when = time.strftime("%H:%M", time.gmtime(venue_ms / 1000))
        mark = -usd / (position * rate_f) if usd and position and rate_f else 0.0
        if not 0 < mark < 1e9:
            quoter.raise_alert(
                now,
                Severity.WARNING,
                "restart",
                f"funding of ${usd:+,.2f} paid at {when}Z while perpdesk was down not booked: "
                f"our position {position:g} cannot have paid it",
            )
            return False
        for action in quoter.on_funding(FundingPayment(now, rate_f, mark), now):
            self.market.submit(action, now)
        self.journal.append(
            "funding", self.wall_ns(), {"rate": rate_f, "mark_price": mark, "venue_ms": venue_ms}
        )
        quoter.raise_alert(now, Severity.INFO, "restart",
                           f"funding paid at {when}Z while perpdesk was down booked: "
                           f"${usd:+,.2f}")  # fmt: skip
        return True

    def _cancel_left_behind(self) -> None:
        """Orders of ours the venue holds that this session did not send (a crashed session's)
        are handed to the core to cancel and track until gone (their fills are ours); orders
        the journal thought open but the venue no longer holds are closed in the journal. The
        operator is told either way."""
        left_open, self._left_open = self._left_open or {}, None
        now = self._core_now_ns
        wall = self.wall_ns()
        quoter = self.quoter
        at_venue = sorted(
            (order_id, side, price, leaves)
            for order_id, side, price, leaves in self.market.resting_orders()
            if quoter.working_order(order_id) is None
        )
        found = [order_id for order_id, *_ in at_venue]
        gone = sorted(set(left_open) - set(found))
        for order_id, side, price, leaves in at_venue:
            for action in quoter.cancel_foreign(order_id, side, price, leaves, now):
                self.market.submit(action, now)
        for order_id in gone:
            self.journal.append("order_done", wall, {"order_id": order_id, "why": "gone at start"})
        if found:
            quoter.raise_alert(
                now,
                Severity.WARNING,
                "restart",
                f"{len(found)} orders left at the venue by an earlier session, cancelling: "
                f"{', '.join(found[:5])}{' ...' if len(found) > 5 else ''}",
            )
        if left_open:
            quoter.raise_alert(
                now,
                Severity.INFO if not found else Severity.WARNING,
                "restart",
                f"the journal had {len(left_open)} orders open from the last session: "
                f"{len(gone)} gone at the venue, {len(set(left_open) & set(found))} found and "
                "cancelled",
            )

    def close(self) -> int:
        if self.closed:
            return self.resting_left or 0
        self.mark_exit()
        left = super().close()
        self._journal_close(left)
        return left

    async def _close_realtime(self) -> int:
        if self.closed:
            return self.resting_left or 0
        self.mark_exit()
        left = await super()._close_realtime()
        self._journal_close(left)
        return left

    def _journal_close(self, left: int) -> None:
        """After the shutdown's cancels: the core's last state, the mark, and how it ended."""
        self.journal_core()
        mark = self.quoter.ledger.mark_price
        if mark is not None:  # the mark the P&L was last taken at, so a restart adds up exactly
            self.journal.mark(self.wall_ns(), mark)
        if not left:
            self.journal.append("cancel_all_done", self.wall_ns(), {})
        else:
            self.journal.append(
                "shutdown_unconfirmed", self.wall_ns(), {"order_ids": list(self.unconfirmed_ids)}
            )

    def mark_exit(self) -> None:
        """Record how the session is ending before anything at shutdown can fail."""
        if not self._exit_marked:
            self._exit_marked = True
            self.journal.mark_exit(self.exit_kind, self.wall_ns())

    def finish(self, exit: str) -> int:
        """Close the engine (cancel all, confirmed) and the journal, recording `exit`."""
        if not self._exit_marked or exit == "crash":  # a crash outranks what was marked
            self.exit_kind = exit
        left = self.close()
        self.close_report = self.journal.close(self.exit_kind, self.wall_ns())
        return left

    def exit_notes(self) -> list[str]:
        """What the operator must know at exit beyond the orders: records not journaled (when
        the journal has not said so itself: a recovery file elsewhere, or none, it has)."""
        report = self.close_report
        if report is None or not report.unwritten or report.recovery_file is None:
            return []
        if report.recovery_file.parent != self.journal.path.parent:
            return []
        return [
            f"journal: {report.unwritten} records could not be written to {self.journal.path}; "
            f"saved to {report.recovery_file} (read back at the next start)"
        ]


def adopt_venue_position(
    quoter: Quoter, journal: Journal, venue_position_base: float, now_ns: int, wall_ns: int
) -> None:
    """The venue's position wins over the core's; an adoption is journaled, so a restart
    carries the same position and cash (it is booked at mid, no fee)."""
    before = quoter.ledger.position
    quoter.reconcile(venue_position_base, now_ns)
    if quoter.ledger.position != before:
        journal.append(
            "reconcile",
            wall_ns,
            {"position_base": venue_position_base, "mid": quoter.ledger.mark_price},
        )


def _fields(command: Command) -> dict[str, Any]:
    return {name: getattr(command, name) for name in getattr(command, "__slots__", ())}


def open_engine(
    settings: Settings,
    state_dir: Path,
    *,
    wall_ns: WallClock = time.time_ns,
    adopt_journal: bool = False,
    venue: Any = None,
    locked_fd: int | None = None,
    **engine_options: Any,
) -> JournaledEngine:
    """The engine for a live session in `state_dir`, carrying on from its journal. With a
    connected network `venue`, the venue's position is the truth: where the journal differs,
    the core adopts the venue's and says so."""
    check_venue(settings)  # before the journal records a session that cannot run
    now = wall_ns()
    # The journal's own view, read once it holds the state directory's lock: nothing another
    # process does between reading and locking can be counted twice.
    journal = Journal(
        state_dir,
        venue=settings.venue.name,
        symbol=settings.strategy.symbol,
        started_ns=now,
        account=(settings.venue.account_address or "") if venue is not None else "",
        adopt=adopt_journal,
        stall_s=settings.risk.journal_stall_s,
        locked_fd=locked_fd,
    )
    try:
        rec = journal.recovered
        prefix = f"s{journal.session}-{secrets.token_hex(2)}-"
        if venue is None:
            # the market carries on where the journal left it; `params` (a benchmark's
            # cranked market) replaces the settings' own
            carry_on = {
                "start_ns": now,
                "start_position_base": rec.ledger.position_base,
                "start_cash_usd": float(rec.ledger.cash),
                "start_price_usd": rec.last_mid or settings.sim.start_price_usd,
            }
            given = engine_options.pop("params", None)
            if given is None:
                params = sim_params(settings.sim, **carry_on)
            else:
                params = dataclasses.replace(given, **carry_on)
            engine = JournaledEngine(
                settings, params=params, order_id_prefix=prefix, **engine_options
            )
        else:
            engine = JournaledEngine(
                settings, venue=venue, order_id_prefix=prefix, **engine_options
            )
        engine.attach(journal, wall_ns, rec.open_orders)
        kill_reason = (rec.kill_reason or "kill switch") if rec.killed else None
        engine.quoter.restore(rec.ledger, rec.day_start_net_usd, kill_reason, now)
        if rec.last_exit is not None:
            engine.quoter.raise_alert(
                now,
                Severity.INFO if rec.last_exit == "clean" else Severity.WARNING,
                "restart",
                f"resumed from the journal: last session ended "
                f"'{rec.last_exit}'; position {rec.position_base:+g}, "
                f"day P&L ${rec.day_pnl_usd():+,.2f}",
            )
        if venue is not None:  # once the first book gives a mid: the venue's position wins
            engine.market.position_check("at start")
            for note in getattr(venue, "notes", ()):
                engine.quoter.raise_alert(now, Severity.WARNING, "restart", note)
    except BaseException:
        journal.close("crash", wall_ns())
        raise
    return engine


async def open_network_engine(
    settings: Settings, state_dir: Path, *, adopt_journal: bool = False
) -> JournaledEngine:
    """Connect the network venue (inside the running loop), open the journaled engine on it,
    and book what filled while perpdesk was down; the venue is closed again on any failure."""
    from engine.venues.live import open_hyperliquid

    # The state directory first: a second perpdesk on it must not touch the venue (cancel
    # the running session's quotes, take over its dead man's switch) before being refused.
    check_venue(settings)
    locked_fd = lock_state_dir(state_dir)
    try:
        venue = await open_hyperliquid(settings)
    except BaseException:
        os.close(locked_fd)
        raise
    engine: JournaledEngine | None = None
    try:  # the journal owns the lock from here on
        engine = open_engine(
            settings, state_dir, adopt_journal=adopt_journal, venue=venue, locked_fd=locked_fd
        )
        await engine.book_missed()
    except BaseException:
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.journal.close("crash", time.time_ns())
        await venue.close()
        raise
    return engine


def main_headless(settings: Settings, state_dir: Path, *, adopt_journal: bool = False) -> int:
    """`perpdesk --headless`: a journaled session until SIGINT/SIGTERM/SIGHUP, then cancel all,
    record the exit and leave; 0 when no order is left at the venue."""
    check_venue(settings)  # a bad venue setting is one line before anything starts
    network = settings.venue.name != "sim"
    engine: JournaledEngine | None = (
        None if network else open_engine(settings, state_dir, adopt_journal=adopt_journal)
    )

    async def _main() -> int:
        nonlocal engine
        if engine is None:  # a network venue is connected inside the loop, then journaled
            engine = await open_network_engine(settings, state_dir, adopt_journal=adopt_journal)
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop_event.set)
        engine.exit_kind = "signal"
        # Still inside the loop when finishing, so a second signal only sets the event again:
        # the cancels and the journal's exit record are never cut short.
        try:
            code = await run_headless(settings, stop_event, engine=engine)
        except BaseException:
            with signals_absorbed():
                engine.finish("crash")
            raise
        with signals_absorbed():
            engine.finish("signal")
        return code

    try:
        code = asyncio.run(_main())
    finally:
        with signals_absorbed():
            if engine is not None and (not engine.closed or engine.close_report is None):
                engine.finish("crash")
    assert engine is not None
    for note in engine.exit_notes():
        print(note, file=sys.stderr)
    return code
