"""The live shell: the quoter core against the embedded exchange, paced to the wall clock.

One asyncio task owns the core and the venue. Each wake-up it steps the venue through every
occurrence now due (events in, actions out), runs the core's timer every 100 ms of sim time,
applies the operator's commands, and publishes an immutable `EngineSnapshot` at most
`publish_hz` times a second. Readers (the console, the headless printer) only ever read
`engine.snapshot` and call `engine.send(command)`: the engine never waits for them.

Sim time starts at the wall clock's Unix time (ns) when the engine is built and runs at
`sim.speed` times the (monotonic) wall clock. The clock and the sleep are injectable, so tests
run the real loop on a fake clock, deterministically and fast. No Textual import here, ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TextIO

from engine.alerts import Severity
from engine.config import Settings
from engine.events import Action, CancelAll, Command, PlaceQuote, ReplaceQuote, SetPaused
from engine.history import SessionHistory
from engine.quoter import Quoter
from engine.ratelimit import cancel_reserve
from engine.sim.configure import sim_params
from engine.sim.market import SimMarket
from engine.sim.params import SimParams
from engine.snapshot import EngineSnapshot, EngineState

Clock = Callable[[], int]
"""Monotonic wall clock in nanoseconds."""
Sleep = Callable[[float], Awaitable[None]]
"""Wait this many wall seconds (the engine passes 0 to just yield to the event loop)."""

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000

# Catching up after a stall (a GC pause, a suspended laptop) is done in slices of this much
# work, so the screen sharing the event loop never freezes behind a backlog.
_WORK_SLICE_NS = 20 * _NS_PER_MS
# After an error the venue keeps failing on, retry at this pace instead of spinning.
_ERROR_BACKOFF_S = 0.5
# Shutdown steps the venue until every cancel is confirmed, for up to `venue.shutdown_timeout_s`
# of the venue's clock (the embedded exchange is stepped, so its clock, not the wall's, is the
# one that runs); the step count is only a guard against a venue that never advances.
_SHUTDOWN_MAX_STEPS = 1_000_000
_SHUTDOWN_CANCEL_RETRIES = 3


class VenueUnavailable(Exception):
    """The configured venue cannot be traded live (no connector yet, or not that symbol)."""


def check_venue(settings: Settings) -> None:
    """Refuse, before anything starts, a venue we cannot run or a symbol it does not trade."""
    if settings.venue.name != "sim":
        from engine.venues.live import check_live_venue  # the network venues' own checks

        check_live_venue(settings)
        return
    traded = sim_params(settings.sim, start_ns=0).symbol
    if settings.strategy.symbol != traded:
        raise VenueUnavailable(
            f"strategy.symbol = {settings.strategy.symbol!r}: the embedded exchange trades "
            f"{traded} only; set strategy.symbol = {traded!r}"
        )


class LiveEngine:
    """The quoter core on the embedded exchange, run by one asyncio task at wall-clock pace."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        params: SimParams | None = None,
        publish_hz: float = 20.0,
        timer_interval_s: float = 0.1,
        max_sleep_s: float = 0.05,
        epoch_s: float | None = None,
        lag_window_s: float = 10.0,
        order_id_prefix: str = "",
        venue: Any = None,
    ) -> None:
        self.settings = settings
        self.epoch_s = time.time() if epoch_s is None else epoch_s
        """Wall-clock time (Unix seconds) when the engine was built, at sim time `sim0_ns`."""
        self.realtime = venue is not None and bool(getattr(venue, "realtime", False))
        """A venue whose events arrive on the wall clock (a network venue, started and
        stopped by the loop), as opposed to the embedded exchange the engine steps itself."""
        if venue is None:
            if settings.venue.name != "sim":
                raise VenueUnavailable(
                    f"venue.name = {settings.venue.name!r}: connect the venue first and give "
                    "it to the engine (the shells do: perpdesk --headless)"
                )
            check_venue(settings)
            # The sim's clock starts on the wall clock's epoch, so the core's day roll (the
            # daily loss limit) falls on UTC midnight, as it would at a real venue.
            self.params: SimParams | None = (
                params
                if params is not None
                else sim_params(settings.sim, start_ns=round(self.epoch_s * _NS_PER_S))
            )
            self.sim0_ns = self.params.start_ns
            self.market: Any = SimMarket(self.params)
            self.venue_name = "sim"
            self.venue_network = ""
            """Which network of a network venue (mainnet, testnet, local); "" for the sim."""
            self.venue_account = ""
            """The account traded at a network venue (its address); "" for the sim."""
            self.speed = settings.sim.speed
            latency_ms = self.params.latency_ms
        else:
            self.params = None
            self.sim0_ns = round(self.epoch_s * _NS_PER_S)
            self.market = venue
            self.venue_name = venue.name
            self.venue_network = str(getattr(venue, "network", ""))
            self.venue_account = str(getattr(venue, "account", ""))
            self.speed = 1.0
            latency_ms = 0.0
        self.quoter = Quoter(
            settings.strategy,
            settings.risk,
            self.market.instrument,
            seed=settings.sim.seed,
            ladder_levels=settings.ui.ladder_levels,
            order_id_prefix=order_id_prefix,
        )
        self.quoter.replace_quotes = bool(getattr(self.market, "replaces_quotes", False))
        self.publish_hz = publish_hz
        self._clock: Clock = clock if clock is not None else time.monotonic_ns
        self._sleep: Sleep | None = sleep
        self._timer_ns = round(timer_interval_s * _NS_PER_S)
        self._max_sleep_s = max_sleep_s
        self._publish_ns = round(_NS_PER_S / publish_hz)
        self._latency_ns = round(latency_ms * _NS_PER_MS)

        self._wall0_ns = self._clock()
        self._switch_seen: str | None = None
        self._address_low = False
        venue_limit = getattr(self.market, "ip_weight_limit", None)
        self._rate_limit = min(settings.risk.rate_limit_calls, venue_limit or (1 << 31))
        """The rate budget's limit before the venue's address budget is taken into account."""
        if self._rate_limit != self.quoter.budget.limit:
            self.quoter.budget.set_limit(self._rate_limit)
        if self.realtime:  # a started network venue: events on our clock, wake us on arrival
            self.market.clock = self.sim_now_ns
            self.market.wake = self.wake
        self._core_now_ns = self.sim0_ns
        """The latest sim time handed to the core; it never goes back."""
        self._next_timer_ns = self.sim0_ns
        self._next_publish_wall_ns = 0
        self._commands: deque[Command] = deque()

        self.snapshot: EngineSnapshot = self.quoter.snapshot(self.sim0_ns)
        """The latest published picture of the engine; replaced, never mutated."""
        self.snapshots_published = 1
        self.pumps = 0
        """Wake-ups done so far (tests wait on it)."""
        self.history = SessionHistory(self.sim0_ns)
        """Net P&L, inventory and the spread terms over the whole session, one sample a second
        of sim time, downsampled to a bounded number of buckets (the console's session charts)."""
        self._next_history_ns = self.sim0_ns

        # loop health: lateness of each wake-up, venue event rate
        self._lag_window_ns = round(lag_window_s * _NS_PER_S)
        self._lags: deque[tuple[int, float]] = deque()
        """(wall ns, lateness ms) of each wake-up in the window."""
        self.lag_p99_ms = 0.0
        """99th percentile of wake-up lateness over the last `lag_window_s`, in ms."""
        self.lag_max_ms = 0.0
        self.events_total = 0
        self.events_per_s = 0.0
        """Venue events handled per wall second, over the last second."""
        self._rate_events = 0
        self._rate_since_ns = self._wall0_ns
        self.errors = 0
        self.last_error: str | None = None
        self._failing = False
        self._in_run = False
        """The engine's own loop is running it (a test may pump it by hand instead)."""
        self._deferred_publish: tuple[int, bool] | None = None
        self._in_batch = False
        """True while the core handles one batch of venue events: the venue must not be
        stepped again until the whole batch is booked."""

        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.closed = False
        self.resting_left: int | None = None
        """Orders left at the venue after shutdown (None until the engine has closed)."""
        self.unconfirmed_ids: tuple[str, ...] = ()
        """After shutdown: ids of our orders the venue still holds or never confirmed gone."""
        self.shutdown_timeout_s = settings.venue.shutdown_timeout_s
        self.exit_kind = "clean"
        """How this session is ending, for the journal: 'clean', 'signal' or 'crash'. The
        shell sets it before stopping, so it is recorded before anything can fail."""

    # ---- time ---------------------------------------------------------------------------------

    def sim_now_ns(self, wall_ns: int | None = None) -> int:
        """Sim time for a wall-clock reading (now if None)."""
        wall = self._clock() if wall_ns is None else wall_ns
        return self.sim0_ns + max(0, int((wall - self._wall0_ns) * self.speed))

    def _wall_of_sim(self, sim_ns: int) -> int:
        return self._wall0_ns + math.ceil((sim_ns - self.sim0_ns) / self.speed)

    def wall_time_s(self, sim_ns: int) -> float:
        """Unix time of a sim timestamp, for display (alerts, the header clock)."""
        return self.epoch_s + (sim_ns - self.sim0_ns) / _NS_PER_S / self.speed

    # ---- the operator's side ------------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Queue a command for the core; the engine applies it at its next wake-up, at once."""
        self._commands.append(command)  # deque.append is atomic: safe from any thread
        self.wake()

    def wake(self) -> None:
        """Wake the loop now (it also wakes by itself for every occurrence and publish). From
        the loop's own thread (a network venue's reader) the event is set directly; from any
        other thread (the console's keys) through the loop."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    @property
    def switch(self) -> str | None:
        """A network venue's dead man's switch ("off", "arming", "armed", "refused: ..."), or
        None where there is none (the embedded exchange)."""
        state = getattr(self.market, "switch", None)
        return state if isinstance(state, str) else None

    def resting_at_venue(self) -> int:
        """Our orders the venue holds right now (the venue's count, not the core's belief)."""
        return len(self.market.resting_orders())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ---- one wake-up --------------------------------------------------------------------------

    def _watch_switch(self) -> None:
        """A network venue's dead man's switch: say when it is armed, and loudly when the venue
        refuses it (the operator decides whether to trade without it)."""
        state = getattr(self.market, "switch", None)
        if state is None or state == self._switch_seen or state == "arming":
            return
        self._switch_seen = state
        now = self._core_now_ns
        if state == "armed":
            self.quoter.raise_alert(now, Severity.INFO, "venue", "dead man's switch armed")
        elif state.startswith("refused"):
            self.quoter.raise_alert(
                now, Severity.WARNING, "venue", f"dead man's switch OFF, the venue {state}"
            )

    def _sync_rate_budget(self) -> None:
        """A network venue's own accounting feeds the core's rate budget: the REST weight it
        spent beyond the core's actions (reads, the dead man's switch) is spent on it, and
        when the venue's address budget has fewer requests left than the window, the limit
        shrinks to them (the cancel reserve stays on top: the venue lets cancels past it)."""
        market, budget = self.market, self.quoter.budget
        now = self._core_now_ns
        take = getattr(market, "take_side_weight", None)
        weight = take() if take is not None else 0
        if weight:
            budget.spend(now, weight)
        room = market.address_room() if hasattr(market, "address_room") else None
        if room is None:
            return
        reserve = cancel_reserve(self._rate_limit)
        used = budget.used(now)
        limit = self._rate_limit
        # reads weigh on the window but not on the address budget: from here on the core may
        # send `room` more orders and cancels, and the reserve's cancels past them
        low = used + max(0, room) + reserve < limit
        if low:
            limit = max(used + max(0, room) + reserve, reserve + 1)
        if limit != budget.limit:
            budget.set_limit(limit, reserve)
        if low != self._address_low:
            self._address_low = low
            cap = getattr(market, "address_cap", None)
            if low:
                self.quoter.raise_alert(
                    now,
                    Severity.WARNING,
                    "rate limit",
                    f"venue address budget low: {max(0, room):,} requests left of {cap:,}; "
                    "quoting limited to them (each USDC traded frees one)",
                )
            else:
                self.quoter.raise_alert(
                    now, Severity.INFO, "rate limit", f"venue address budget back: {room:,} left"
                )

    def pump(self) -> None:
        """Everything one wake-up does: catch the venue up, apply commands, maybe publish.

        Never raises: an error from the core or the venue trips the kill switch (cancel all,
        stop quoting) and is reported in the alerts; the loop keeps running.
        """
        self.pumps += 1
        if self.realtime:
            self._watch_switch()
            self._sync_rate_budget()
        started_ns = self._clock()
        target_ns = self.sim_now_ns(started_ns)
        forced = False
        try:
            caught_up = self._advance(target_ns, deadline_wall_ns=started_ns + _WORK_SLICE_NS)
            if caught_up:
                self._run_timers(target_ns)
                self._core_now_ns = max(self._core_now_ns, target_ns)
            if self._commands:
                forced = True
                self._apply_commands()
            self._failing = False
        except Exception as exc:  # the console must stay up: kill, cancel all, report
            self._fail(exc)
            forced = True
        pending = getattr(self.market, "pending_actions", None)
        if self._in_run and pending:
            # the venue's sender has orders to put on the wire: it goes first, the snapshot
            # for the screen right after (the loop publishes once the sender has had its turn)
            self._deferred_publish = (started_ns, forced)
            return
        self._publish(started_ns, forced)

    def _advance(self, target_ns: int, deadline_wall_ns: int | None = None) -> bool:
        """Step the venue through every occurrence due by `target_ns`; False if out of time."""
        market, quoter, submit = self.market, self.quoter, self.market.submit
        on_event = quoter.on_event
        count = 0
        while market.next_ts_ns <= target_ns:
            ts = market.next_ts_ns
            self._run_timers(ts)
            events = market.step()
            self._core_now_ns = max(self._core_now_ns, ts)
            self._in_batch = True
            try:
                for event in events:
                    # one bad event must not cost the core the rest of its batch (fills, cancels)
                    try:
                        actions = on_event(event, ts)
                    except Exception as exc:
                        self._fail(exc)
                        continue
                    for action in actions:
                        submit(action, ts)
            finally:
                self._in_batch = False
            count += len(events)
            if deadline_wall_ns is not None and count >= 64 and self._clock() > deadline_wall_ns:
                self._count_events(count)
                return False
        self._count_events(count)
        return True

    def _run_timers(self, until_ns: int) -> None:
        submit = self.market.submit
        while self._next_timer_ns <= until_ns:
            at = self._next_timer_ns
            self._next_timer_ns += self._timer_ns
            self._core_now_ns = max(self._core_now_ns, at)
            for action in self.quoter.on_timer(at):
                submit(action, at)

    def _apply_commands(self) -> None:
        now = self._core_now_ns
        while self._commands:
            command = self._commands.popleft()
            for action in self.command_actions(command, now):
                self.market.submit(action, now)
        # Our actions take effect at `now` (plus latency): let the venue answer them at once,
        # so a kill shows as "no resting orders" in the very next snapshot.
        self._advance(now)

    def command_actions(self, command: Command, now_ns: int) -> list[Action]:
        """What the core does with an operator command (a shell may refuse some first)."""
        return self.quoter.on_command(command, now_ns)

    def _count_events(self, count: int) -> None:
        self.events_total += count
        self._rate_events += count

    def _fail(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self._failing:  # the same trouble again: already killed and reported
            return
        self._failing = True
        now = self._core_now_ns
        try:
            for action in self.quoter.on_error(self.last_error, now):
                self.market.submit(action, now)
            if not self._in_batch:  # mid-batch, the loop already stepping the venue answers
                self._advance(now)
        except Exception as again:  # the venue cannot even take the cancel: keep reporting
            self.last_error = f"{self.last_error}; cancel-all failed: {again}"

    def _publish(self, wall_ns: int, forced: bool) -> None:
        if not forced and wall_ns < self._next_publish_wall_ns:
            return
        try:
            self.snapshot = self.quoter.snapshot(self._core_now_ns)
        except Exception as exc:
            self.errors += 1
            self.last_error = f"snapshot failed: {type(exc).__name__}: {exc}"
            return
        self.snapshots_published += 1
        self._next_publish_wall_ns = wall_ns + self._publish_ns
        if self._core_now_ns >= self._next_history_ns:
            self._sample_history()
        elapsed = wall_ns - self._rate_since_ns
        if elapsed >= _NS_PER_S:
            self.events_per_s = self._rate_events * _NS_PER_S / elapsed
            self._rate_events = 0
            self._rate_since_ns = wall_ns
            self._update_lag_stats()

    def _sample_history(self) -> None:
        """One history sample from the snapshot just published; the next is due at the next
        whole second of sim time (after a stall or at a high sim speed, gaps are not filled)."""
        snap = self.snapshot
        net_usd, inventory_usd = snap.pnl.terms.net_usd, snap.inventory.inventory_usd
        self.history.record(snap.ts_ns, net_usd, inventory_usd, snap.spread)
        elapsed_s = (snap.ts_ns - self.sim0_ns) // _NS_PER_S
        self._next_history_ns = self.sim0_ns + (elapsed_s + 1) * _NS_PER_S

    def lag_samples_ms(self) -> list[float]:
        """Lateness of every wake-up in the window, in ms, oldest first."""
        return [lag for _, lag in self._lags]

    def reset_lag_stats(self) -> None:
        self._lags.clear()
        self.lag_p99_ms = self.lag_max_ms = 0.0

    def _update_lag_stats(self) -> None:
        lags = self._lags
        horizon = self._clock() - self._lag_window_ns
        while lags and lags[0][0] < horizon:
            lags.popleft()
        if not lags:
            return
        ordered = sorted(lag for _, lag in lags)
        self.lag_p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        self.lag_max_ms = ordered[-1]

    def _unconfirmed(self) -> tuple[str, ...]:
        """Our orders the venue holds, or that the core has not yet seen confirmed gone."""
        ids = {order_id for order_id, *_ in self.market.resting_orders()}
        ids.update(order.order_id for order in self.quoter.working_orders())
        return tuple(sorted(ids))

    def shutdown_report(self) -> str:
        """One line on how the shutdown ended; never claims more than the venue confirmed."""
        if not self.closed:
            return "not stopped yet"
        if not self.unconfirmed_ids:
            return "stopped: every cancel confirmed; 0 resting orders left at the venue"
        shown = ", ".join(self.unconfirmed_ids[:10])
        more = (
            f" and {len(self.unconfirmed_ids) - 10} more" if len(self.unconfirmed_ids) > 10 else ""
        )
        return (
            f"stopped: cancel-all sent, but {len(self.unconfirmed_ids)} orders not confirmed "
            f"cancelled after {self.shutdown_timeout_s:g} s: {shown}{more}; check them at the venue"
        )

    # ---- the loop -----------------------------------------------------------------------------

    def next_wake_wall_ns(self) -> int:
        """When the loop should wake next: next occurrence, timer or publish, capped."""
        now = self._clock()
        sim_next = min(self.market.next_ts_ns, self._next_timer_ns)
        target = min(
            self._wall_of_sim(sim_next),
            self._next_publish_wall_ns,
            now + round(self._max_sleep_s * _NS_PER_S),
        )
        if self._failing:
            target = max(target, now + round(_ERROR_BACKOFF_S * _NS_PER_S))
        return max(target, now)

    async def run(self) -> None:
        """The engine loop; returns when `stop()` is called."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._in_run = True
        try:
            await self._loop_until_stopped()
        finally:
            self._in_run = False

    async def _loop_until_stopped(self) -> None:
        while not self._stopping:
            self.pump()
            deferred = self._deferred_publish
            if deferred is not None:
                self._deferred_publish = None
                await asyncio.sleep(0)
                self._publish(*deferred)
            if self._stopping:
                break
            await self._sleep_until(self.next_wake_wall_ns())

    async def _sleep_until(self, target_ns: int) -> None:
        delay_s = max(0.0, (target_ns - self._clock()) / _NS_PER_S)
        if self._sleep is not None:
            await self._sleep(delay_s)
        else:
            wake = self._wake
            assert wake is not None
            wake.clear()
            if self._commands:
                return
            if delay_s <= 0:
                await asyncio.sleep(0)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay_s)
                    return  # woken early by a command: not a late wake-up
        woke_ns = self._clock()
        late_ms = (woke_ns - target_ns) / _NS_PER_MS
        self._lags.append((woke_ns, late_ms if late_ms > 0 else 0.0))

    def start(self) -> asyncio.Task[None]:
        """Start the engine task on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="perpdesk-engine")
        return self._task

    async def stop(self, timeout_s: float = 2.0) -> int:
        """Stop the loop, cancel every order at the venue, wait for the venue to confirm all
        cancels, publish a final snapshot; return how many orders are left resting (0)."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.realtime:
            return await self._close_realtime()
        return self.close()

    async def _close_realtime(self) -> int:
        """Shutdown on a network venue: pause, cancel all, and keep handing the venue's answers
        to the core on the wall clock until every cancel is confirmed (retrying the cancel-all
        now and then), for up to `venue.shutdown_timeout_s`; then close the connections."""
        if self.closed:
            return self.resting_left or 0
        market = self.market
        self._begin_shutdown(self.sim_now_ns())
        give_up = time.monotonic() + self.shutdown_timeout_s
        retry_at = time.monotonic() + 2.0
        retries = 0
        while time.monotonic() < give_up:
            await asyncio.sleep(0.02)
            now = self.sim_now_ns()
            while market.next_ts_ns <= now:
                self._shutdown_step(now)
            if not self._unconfirmed():
                break
            if time.monotonic() >= retry_at and retries < _SHUTDOWN_CANCEL_RETRIES:
                retries += 1
                retry_at = time.monotonic() + 2.0
                market.submit(CancelAll(f"shutdown: cancel all, retry {retries}"), now)
        left = self._end_shutdown()
        with contextlib.suppress(Exception):
            await market.close()
        return left

    def close(self) -> int:
        """Shutdown without the loop: pause, cancel all, step until the venue confirms every
        cancel (bounded), publish a final snapshot; return the orders left at the venue."""
        if self.closed:
            return self.resting_left or 0
        market = self.market
        now = self._core_now_ns
        self._begin_shutdown(now)
        start_ns = max(now, market.now_ns)
        confirm_by_ns = start_ns + self._latency_ns
        give_up_ns = start_ns + round(self.shutdown_timeout_s * _NS_PER_S)
        retries = 0
        steps = 0
        while steps < _SHUTDOWN_MAX_STEPS:
            ts = market.next_ts_ns
            if ts > give_up_ns or (ts > confirm_by_ns and not self._unconfirmed()):
                break
            if ts > confirm_by_ns and retries < _SHUTDOWN_CANCEL_RETRIES:
                # the venue has had time to answer and still holds orders: ask again
                retries += 1
                market.submit(CancelAll(f"shutdown: cancel all, retry {retries}"), ts)
                confirm_by_ns = ts + self._latency_ns + _NS_PER_S
            steps += 1
            self._shutdown_step(ts)
        return self._end_shutdown()

    def _begin_shutdown(self, now: int) -> None:
        """Pause (so nothing the venue says makes the core requote) and cancel everything."""
        self._stopping = True
        actions: list[Action] = []
        if self.quoter.state is EngineState.QUOTING:
            actions += self.quoter.on_command(SetPaused(True), now)
        actions.append(CancelAll("shutdown: cancel all before exit"))
        for action in actions:
            self.market.submit(action, now)

    def _shutdown_step(self, now: int) -> None:
        """Hand the venue's next batch to the core; hedges and cancels still go, quotes not."""
        market = self.market
        try:
            for event in market.step():
                for action in self.quoter.on_event(event, now):
                    if not isinstance(action, PlaceQuote | ReplaceQuote):
                        market.submit(action, now)
        except Exception as exc:
            self.errors += 1
            self.last_error = f"during shutdown: {type(exc).__name__}: {exc}"
        self._core_now_ns = max(self._core_now_ns, now)

    def _end_shutdown(self) -> int:
        """What is left at the venue, the final snapshot; the engine is closed."""
        self.unconfirmed_ids = self._unconfirmed()
        self.resting_left = len(self.unconfirmed_ids)
        self.closed = True
        with contextlib.suppress(Exception):
            self.snapshot = self.quoter.snapshot(self._core_now_ns)
            self.snapshots_published += 1
        return self.resting_left


@contextlib.contextmanager
def signals_absorbed() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP are ignored while a shutdown finishes: the first one already
    asked to stop, and a second must not cut short the cancels or the journal's exit record."""
    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # outside the main thread there is nothing to absorb
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---- headless: the same engine without the screen ---------------------------------------------


def status_line(engine: LiveEngine) -> str:
    """One line for logs: the phase (the console's badge), mid, our quotes, inventory, net
    P&L, and why."""
    snap = engine.snapshot
    clock = time.strftime("%H:%M:%S", time.gmtime(engine.wall_time_s(snap.ts_ns)))
    mid = "-" if snap.mid is None else f"{snap.mid:,.1f}"
    bid = "-" if snap.bid_quote is None else f"{snap.bid_quote.price:,.1f}"
    ask = "-" if snap.ask_quote is None else f"{snap.ask_quote.price:,.1f}"
    inv = snap.inventory
    return (
        f"{clock}Z {snap.phase.value:<11} {snap.symbol} mid {mid} bid {bid} ask {ask} "
        f"inv {inv.inventory_usd:+,.2f} USD ({inv.position_base:+.5f}) "
        f"net {snap.pnl.terms.net_usd:+,.2f} USD | {snap.status}"
    )


async def run_headless(
    settings: Settings,
    stop_event: asyncio.Event,
    *,
    engine: LiveEngine | None = None,
    out: TextIO | None = None,
    interval_s: float = 1.0,
) -> int:
    """Run the engine, print a status line every `interval_s`, and on `stop_event` cancel
    everything and report; returns 0 when no order is left at the venue, else 1."""
    stream = sys.stdout if out is None else out
    engine = engine if engine is not None else LiveEngine(settings)
    engine.start()
    print(f"perpdesk headless: {engine.venue_name} {settings.strategy.symbol}", file=stream)
    while not stop_event.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), interval_s)
        task = engine._task
        if task is not None and task.done() and not stop_event.is_set():
            task.result()  # the engine loop died: raise its error (the session ends as a crash)
            raise RuntimeError("the engine loop stopped by itself")
        print(status_line(engine), file=stream, flush=True)
    left = await engine.stop()
    print(engine.shutdown_report(), file=stream)
    return 0 if left == 0 else 1
