"""A live session: the engine with its journal, recovery from the last session, and a recorded exit.

`open_engine` reads the journal in the state directory, restarts the embedded exchange with the
account it had (a paper account survives restarts like a real one), restores the core's
inventory, P&L, day baseline and kill state, and wraps the venue so that every order, fill and
cancel is journaled and every venue event passes the message gate before the core sees it.
The engine journals state changes, alerts, commands and a mark a second; `close` records how
the session ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
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
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    Trade,
    VenueEvent,
)
from engine.journal import Journal, recover
from engine.live import LiveEngine, run_headless
from engine.quoter import Quoter
from engine.sim.configure import sim_params
from engine.sim.market import SimMarket
from engine.snapshot import EngineState
from engine.validate import MessageGuard

_NS_PER_S = 1_000_000_000
WallClock = Callable[[], int]


class JournaledVenue:
    """The venue as the core sees it: actions journaled on the way out, events journaled and
    checked by the message gate on the way in (a refused event becomes an alert)."""

    def __init__(
        self, venue: SimMarket, journal: Journal, quoter: Quoter, wall_ns: WallClock
    ) -> None:
        self.venue = venue
        self.journal = journal
        self.quoter = quoter
        self.guard = MessageGuard(last_mid=None)
        self._wall_ns = wall_ns

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
        elif isinstance(action, CancelAll):
            journal.append("cancel_all_sent", wall, {"reason": action.reason})
        self.venue.submit(action, now_ns)

    def step(self) -> list[VenueEvent]:
        events = self.venue.step()
        passed: list[VenueEvent] = []
        guard = self.guard
        for event in events:
            problem = guard.check(event)
            if problem is not None:
                ts = event.ts_ns if isinstance(event.ts_ns, int) else self.venue.now_ns
                if isinstance(event, BookUpdate | Trade):
                    self.quoter.raise_alert(
                        ts, Severity.WARNING, "feed", f"venue message refused: {problem}"
                    )
                    continue
                # An order or account message we cannot book means our position is no longer
                # known: stop and cancel everything rather than trade on a wrong inventory.
                message = f"venue message refused: {problem}"
                if self.quoter.state is EngineState.KILLED:
                    self.quoter.raise_alert(ts, Severity.CRITICAL, "feed", message)
                    continue
                for action in self.quoter.on_error(message, ts):
                    self.submit(action, ts)
                continue
            passed.append(event)
            if isinstance(
                event, Fill | OrderCanceled | OrderRejected | CancelRejected | FundingPayment
            ):
                self._journal_event(event)
        guard.accepted_mid(self.quoter.book.mid)
        return passed

    def _journal_event(self, event: VenueEvent) -> None:
        wall = self._wall_ns()
        if isinstance(event, Fill):
            self.journal.fill(wall, event, self.quoter.book.mid)
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
                "funding", wall, {"rate": event.rate, "mark_price": event.mark_price}
            )


class JournaledEngine(LiveEngine):
    """The live engine, journaling what the core decided: state, alerts, commands, marks."""

    journal: Journal
    wall_ns: WallClock

    def attach(self, journal: Journal, wall_ns: WallClock) -> None:
        self.journal = journal
        self.wall_ns = wall_ns
        self._journaled_state = self.quoter.state
        self._journaled_alerts = sum(self.quoter.alert_counts.values())
        self._next_mark_wall_ns = 0
        self._reconciled = False
        self.market = JournaledVenue(self.market, journal, self.quoter, wall_ns)  # type: ignore[assignment]

    def send(self, command: Command) -> None:
        self.journal.append(
            "command", self.wall_ns(), {"command": type(command).__name__, **_fields(command)}
        )
        super().send(command)

    def pump(self) -> None:
        super().pump()
        try:
            self.journal_core()
        except Exception as exc:  # the journal must never stop the engine: kill and report
            self._fail(exc)

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
            quoter.reconcile(self.market.position_base, self._core_now_ns)
            self._reconciled = True
        if mid is not None and wall >= self._next_mark_wall_ns:
            journal.mark(wall, mid)
            self._next_mark_wall_ns = wall + _NS_PER_S

    def close(self) -> int:
        if self.closed:
            return self.resting_left or 0
        left = super().close()
        self.journal_core()
        mark = self.quoter.ledger.mark_price
        if mark is not None:  # the mark the P&L was last taken at, so a restart adds up exactly
            self.journal.mark(self.wall_ns(), mark)
        if not left:
            self.journal.append("cancel_all_done", self.wall_ns(), {})
        return left

    def finish(self, exit: str) -> int:
        """Close the engine (cancel all, confirmed) and the journal, recording `exit`."""
        left = self.close()
        self.journal.close(exit, self.wall_ns())
        return left


def _fields(command: Command) -> dict[str, Any]:
    return {name: getattr(command, name) for name in getattr(command, "__slots__", ())}


def open_engine(
    settings: Settings, state_dir: Path, *, wall_ns: WallClock = time.time_ns, **engine_options: Any
) -> JournaledEngine:
    """The engine for a live session in `state_dir`, carrying on from its journal."""
    now = wall_ns()
    rec = recover(state_dir, now)
    params = sim_params(
        settings.sim,
        start_ns=now,
        start_position_base=rec.ledger.position_base,
        start_cash_usd=float(rec.ledger.cash),
        start_price_usd=rec.last_mid or settings.sim.start_price_usd,
    )
    engine = JournaledEngine(settings, params=params, **engine_options)
    journal = Journal(
        state_dir, venue=engine.venue_name, symbol=settings.strategy.symbol, started_ns=now
    )
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
    if rec.killed:
        journal.append("state", now, {"state": EngineState.KILLED.value, "reason": rec.kill_reason})
    engine.attach(journal, wall_ns)
    return engine


def main_headless(settings: Settings, state_dir: Path) -> int:
    """`perpdesk --headless`: a journaled session until SIGINT/SIGTERM/SIGHUP, then cancel all,
    record the exit and leave; 0 when no order is left at the venue."""
    engine = open_engine(settings, state_dir)

    async def _main() -> int:
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop_event.set)
        return await run_headless(settings, stop_event, engine=engine)

    try:
        code = asyncio.run(_main())
    finally:
        engine.finish("signal")
    return code
