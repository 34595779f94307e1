"""Hyperliquid as a venue of the live shell: market and account events in, the core's actions out.

The shell pulls, as it does from the embedded exchange: `next_ts_ns` says when the venue next
has something (the arrival time of the oldest message not yet handed over), `step()` hands over
one batch of core events, `submit()` queues an action. Behind that, two tasks on the event loop:
the reader turns WebSocket frames (l2Book, trades, orderUpdates, userFills) into core events
stamped on arrival, the sender signs and posts actions over one keep-alive `httpx.AsyncClient`
and turns the replies into events (accepted, rejected, cancelled). `wake` is called whenever
something arrives, so the shell never waits for its next tick to see it.

Orders: quotes are ALO with a client order id (cloid) derived from the core's order id, prices
rounded away from the touch onto the instrument's grid (bids down, asks up), sizes down to the
lot; a quote below the $10 minimum is refused here, with the reason, and never sent. Hedges are
IOC limits at the mid -+ `slippage_bps`. Fills are taken from userFills only (the IOC reply says
how much will come), once each by trade id; an IOC's unfilled rest is reported cancelled only
after its fills, so the core never sees a fill for an order it thinks is gone.

When the WebSocket drops, every open quote is cancelled over REST at once, and the feed resumes
only after a reconnect (with backoff) and a fresh book: the core never quotes on a stale book.

First cut: no batchModify requotes, no scheduleCancel heartbeat, no start-up reconciliation of
position and fills yet (see the README's status of the Hyperliquid venue).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import httpx
import msgspec
import websockets

from engine.events import (
    Action,
    BookUpdate,
    CancelAll,
    CancelOrder,
    CancelRejected,
    Fill,
    FundingPayment,
    Instrument,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    ReplaceQuote,
    Side,
    VenueEvent,
)
from engine.live import VenueUnavailable
from engine.venues.hyperliquid import wire
from engine.venues.hyperliquid.grid import Grid
from engine.venues.hyperliquid.signing import (
    NonceClock,
    OrderWire,
    Signer,
    batch_modify_action,
    cancel_by_cloid_action,
    order_action,
    order_wire,
    schedule_cancel_action,
)

_NEVER = 1 << 62
ORDER_TTL_MS = 5_000
"""Orders are signed to expire this long after they are sent: one left unanswered is known
for sure to be dead once that time has passed, so it is never resent blindly nor left behind."""
_PING_S = 50.0
IP_WEIGHT_PER_MIN = 1_200
"""REST weight an IP may spend a minute (HTTP 429 past it)."""
_INFO_WEIGHT = {"l2Book": 2, "allMids": 2, "clearinghouseState": 2, "orderStatus": 2,
                "spotClearinghouseState": 2, "exchangeStatus": 2, "userRole": 60}  # fmt: skip
"""/info weights by request type; every other type weighs 20."""
_MS_PER_HOUR = 3_600_000
_NS_PER_HOUR = _MS_PER_HOUR * 1_000_000
_ASK_AFTER_S = 1.0
"""How long an order taken off the book waits for its orderUpdate before orderStatus is asked."""
_LIMITS_EVERY_S = 30.0
"""How often the address budget (userRateLimit) is read again."""
_JSON = msgspec.json.Encoder()
_DONE_STATUSES = frozenset({"canceled", "rejected", "filled"})


class _HasTime(Protocol):
    @property
    def time(self) -> int: ...


_Timed = TypeVar("_Timed", bound=_HasTime)


class VenueError(RuntimeError):
    """The venue cannot be used (unreachable at start, unknown coin): one line."""


class _Unanswered(Exception):
    """An action was sent and no answer came (a 5xx, a dropped connection, a timeout): it may
    or may not have been carried out. Never resent blindly: asked about by cloid instead."""


@dataclass(slots=True)
class _Ours:
    """One of our orders as the venue knows it."""

    order_id: str
    cloid: str
    side: Side
    price: Decimal
    """The limit as sent, on the venue's grid."""
    size: Decimal
    is_ioc: bool
    oid: int | None = None
    filled: Decimal = Decimal(0)
    expected: Decimal | None = None
    """How much the venue says was filled in all, once the order is over (an IOC's reply, a
    cancel's orderUpdate or orderStatus): its gone-event waits until the fills have come."""
    ending: bool = False
    """The venue has taken the order off the book; `expected` may still be unknown."""
    asking: bool = False
    """Its fill count is being asked for (orderStatus), if its orderUpdate does not come."""
    done: bool = False


def cloid_of(order_id: str, prefix: str = "7064") -> str:
    """A cloid for one of our order ids: our 2-byte prefix, then 14 bytes of its hash."""
    return "0x" + prefix + hashlib.sha256(order_id.encode()).hexdigest()[:28]


class HyperliquidVenue:
    """One coin on Hyperliquid (mainnet, testnet or the local exchange) for one account."""

    name = "hyperliquid"
    replaces_quotes = True
    """A requote is one batchModify (`ReplaceQuote`): one request instead of a cancel and a
    placement, half the address budget, and never two quotes on a side."""
    realtime = True
    """Events arrive on the wall clock; the shell starts and closes the connections."""

    def __init__(
        self,
        http_url: str,
        ws_url: str,
        signer: Signer,
        account: str,
        coin: str,
        *,
        mainnet: bool,
        clock: Callable[[], int] = time.time_ns,
        slippage_bps: float = 50.0,
        timeout_s: float = 10.0,
        dead_mans_switch_s: float = 30.0,
        network: str | None = None,
    ) -> None:
        self.network = network or ("mainnet" if mainnet else "testnet")
        """Which Hyperliquid this is, for the operator: mainnet, testnet or local."""
        self.http_url = http_url.rstrip("/")
        self.ws_url = ws_url
        self.signer = signer
        self.account = account.lower()
        self.coin = coin
        self.mainnet = mainnet
        self.clock = clock
        self.slippage = Decimal(repr(slippage_bps)) / Decimal(10_000)
        self.nonces = NonceClock()
        self.http = httpx.AsyncClient(base_url=self.http_url, timeout=timeout_s)
        self.instrument = Instrument(coin, 1.0, 1.0)
        self.grid = Grid(0)
        self.asset = -1
        self.wake: Callable[[], None] = lambda: None
        self._inbox: deque[tuple[int, list[VenueEvent]]] = deque()
        self._actions: asyncio.Queue[Action] = asyncio.Queue()
        self._orders: dict[str, _Ours] = {}
        self._by_cloid: dict[str, _Ours] = {}
        self._by_oid: dict[int, _Ours] = {}
        self._tids: set[int] = set()
        self._paid_hours: set[int] = set()
        """Hours (ms // 3,600,000) whose funding has been handed over: one payment an hour."""
        self._mid: Decimal | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ws: Any = None
        self.connected = asyncio.Event()
        self.drops = 0
        self.errors: deque[str] = deque(maxlen=50)
        self._closing = False
        self.dead_mans_switch_s = dead_mans_switch_s
        self.switch = "off" if dead_mans_switch_s <= 0 else "arming"
        """The dead man's switch: "off", "arming", "armed", or "refused: <why>"."""
        self.notes: list[str] = []
        """What start-up found at the venue, for the operator (orders left, foreign orders)."""
        self.position_base = 0.0
        """Our position as the venue reports it: read at start, then moved by our fills."""
        self.maker_fee_pct = 0.015
        self.taker_fee_pct = 0.045
        """Our rates in % (userFees at start; each fill still carries its own fee)."""
        self._skip_trades = True
        self._start_ms = 0
        self._fresh = False
        """A book has come since the last (re)subscribe: quotes may go out."""
        self.ip_weight_limit = IP_WEIGHT_PER_MIN
        self._side_weight = 0
        """REST weight spent beyond the core's own actions (reads, the dead man's switch,
        start-up cancels), not yet handed to the core's rate budget."""
        self.address_used: int | None = None
        self.address_cap: int | None = None
        """The address budget as userRateLimit last said (None until read)."""
        self._address_sent = 0
        """Address requests sent since that read (each order or cancel of a batch counts)."""

    # ---- the pull interface ----------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        return self.clock()

    @property
    def next_ts_ns(self) -> int:
        return self._inbox[0][0] if self._inbox else _NEVER

    def step(self) -> list[VenueEvent]:
        return self._inbox.popleft()[1] if self._inbox else []

    def submit(self, action: Action, now_ns: int) -> None:
        """Queue an action; it is sent at once by the sender task (never blocks the core)."""
        self._actions.put_nowait(action)

    def resting_orders(self) -> list[tuple[str, Side, float, float]]:
        """Our orders the venue has confirmed and not yet reported gone."""
        return [
            (o.order_id, o.side, float(o.price), float(o.size - o.filled))
            for o in self._orders.values()
            if o.oid is not None and not o.done
        ]

    @property
    def pending_actions(self) -> int:
        """Actions queued for the sender and not yet taken up by it."""
        return self._actions.qsize()

    def take_side_weight(self) -> int:
        """REST weight spent since the last call on what the core did not ask for (the core
        counts its own actions): the shell spends it on the core's rate budget."""
        weight, self._side_weight = self._side_weight, 0
        return weight

    def address_room(self) -> int | None:
        """Address requests left before the venue refuses new orders (None: not known)."""
        if self.address_cap is None or self.address_used is None:
            return None
        return self.address_cap - self.address_used - self._address_sent

    def _emit(self, events: list[VenueEvent]) -> None:
        if events:
            self._inbox.append((self.clock(), events))
            self.wake()

    # ---- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        """Read the instrument, take the first book, connect the feeds, start the tasks."""
        try:
            meta = wire.decode_meta(await self._info({"type": "meta"}))
            self.asset, info = meta.asset(self.coin)
        except (httpx.HTTPError, wire.WireError, KeyError, LookupError) as exc:
            raise VenueError(f"cannot read the {self.coin} market: {exc}") from None
        self.grid = Grid(info.sz_decimals)
        self._start_ms = time.time_ns() // 1_000_000  # fills from here on are ours to book
        state = wire.decode_clearinghouse_state(
            await self._info({"type": "clearinghouseState", "user": self.account})
        )
        self.position_base = float(state.position(self.coin))
        if state.time is not None:  # the position includes every fill up to then, no later
            self._start_ms = int(state.time) + 1
        fees = wire.decode_user_fees(await self._info({"type": "userFees", "user": self.account}))
        self.maker_fee_pct = float(Decimal(fees.user_add_rate) * 100)
        self.taker_fee_pct = float(Decimal(fees.user_cross_rate) * 100)
        await self._read_limits()
        await self._clear_left_orders()
        book = wire.decode_l2_book(await self._info({"type": "l2Book", "coin": self.coin}))
        event = wire.book_event(book, self.clock())
        self._note_mid(event)
        if self._mid is None:
            raise VenueError(f"the {self.coin} book is empty or one-sided: no price to quote on")
        changes = self.grid.tick_changes_near(self._mid)
        if changes is not None:
            raise VenueError(
                f"{self.coin} at {self._mid:f}: its price step changes from {changes[0]:f} to "
                f"{changes[1]:f} within 20% of the price; perpdesk quotes a coin on one step "
                "only (BTC, above $12,500, always is)"
            )
        tick = float(self.grid.tick(self._mid))
        lot = float(Decimal(1).scaleb(-info.sz_decimals))
        self.instrument = Instrument(self.coin, tick, lot)
        self._emit([event])
        self._tasks = [
            asyncio.create_task(self._feed(), name="hyperliquid-feed"),
            asyncio.create_task(self._sender(), name="hyperliquid-sender"),
        ]
        self._tasks.append(asyncio.create_task(self._limits(), name="hyperliquid-limits"))
        if self.dead_mans_switch_s > 0:
            switch = asyncio.create_task(self._switch(), name="hyperliquid-switch")
            switch.add_done_callback(self._switch_ended)
            self._tasks.append(switch)
        await asyncio.wait_for(self.connected.wait(), 10)

    async def _clear_left_orders(self) -> None:
        """Orders of ours a previous session left at the venue (our cloid prefix) are
        cancelled before we quote; anyone else's are left alone and reported."""
        orders = wire.decode_open_orders(
            await self._info({"type": "frontendOpenOrders", "user": self.account})
        )
        mine = [o for o in orders if o.coin == self.coin and (o.cloid or "").startswith("0x7064")]
        foreign = [o for o in orders if o not in mine]
        if mine:
            reply = await self._post_action(
                cancel_by_cloid_action([(self.asset, str(o.cloid)) for o in mine])
            )
            cancelled = sum(1 for status in reply.statuses if status == "success")
            self.notes.append(
                f"{len(mine)} order(s) of an earlier session were open at the venue; "
                f"{cancelled} cancelled before quoting"
            )
        if foreign:
            self.notes.append(
                f"{len(foreign)} order(s) not placed by perpdesk are open on this account "
                "(left alone: they count in the venue's position if they fill)"
            )

    async def missed_fills(
        self, order_ids: Iterable[str], since_ms: int, known_tids: set[str]
    ) -> list[Fill]:
        """Fills of these orders (an earlier session's, not known to be over) that the venue
        made from `since_ms` on and that are not among `known_tids` (those the journal holds):
        what filled while perpdesk was down, oldest first, stamped with the venue's time. Their
        trade ids are marked seen, so the feed never hands them over a second time (one already
        queued is dropped)."""
        by_cloid = {cloid_of(order_id): order_id for order_id in order_ids}
        if not by_cloid:
            return []
        found: dict[int, wire.WsFill] = {}
        fills = await self._since(
            "userFillsByTime", wire.decode_user_fills, since_ms, 2_000, "the fills made"
        )
        for fill in fills:
            if fill.coin == self.coin and (fill.cloid or "") in by_cloid:
                found.setdefault(int(fill.tid), fill)
        out: list[Fill] = []
        for tid, fill in sorted(found.items(), key=lambda item: (int(item[1].time), item[0])):
            if str(tid) in known_tids:  # the journal has it
                continue
            side, sz = wire.fill_side(fill), wire.fill_sz(fill)
            if tid not in self._tids:  # the feed has not counted it, and now never will
                self._tids.add(tid)
                if int(fill.time) >= self._start_ms:  # not in the position read at start
                    self.position_base = float(Decimal(repr(self.position_base)) + side * sz)
            out.append(Fill(int(fill.time) * 1_000_000, by_cloid[fill.cloid or ""], side,
                            float(wire.fill_px(fill)), float(sz), float(wire.fill_fee(fill)),
                            wire.is_maker(fill), 0.0, str(tid)))  # fmt: skip
        taken = {fill.trade_id for fill in out}
        # The feed's copy, if it came first (as a fill of an order this session does not know,
        # which the gate would refuse): booked here instead, with its order.
        self._drop_queued(lambda e: isinstance(e, Fill) and e.trade_id in taken)
        return out

    def _drop_queued(self, drop: Callable[[VenueEvent], bool]) -> None:
        """Take out of the queue, not yet handed to the core, the events `drop` names."""
        for index, (ts, events) in enumerate(self._inbox):
            kept = [event for event in events if not drop(event)]
            if len(kept) != len(events):
                self._inbox[index] = (ts, kept)

    async def missed_funding(
        self, since_ms: int, known_hours: set[int]
    ) -> list[tuple[int, Decimal, Decimal]]:
        """The hourly funding of our coin paid from `since_ms` on in hours (ms // 3,600,000)
        not in `known_hours` (those the journal holds): (time ms, USD received, rate), oldest
        first. Their hours are marked booked: the feed's copy of one (at a restart on the
        hour) is dropped, queued or still to come."""
        found: dict[int, tuple[int, Decimal, Decimal]] = {}
        entries = await self._since(
            "userFunding", wire.decode_user_funding, since_ms, 500, "the funding paid"
        )
        for entry in entries:
            delta = entry.delta
            hour = int(entry.time) // _MS_PER_HOUR
            if delta.coin != self.coin or hour in known_hours or hour in self._paid_hours:
                continue
            if Decimal(delta.usdc) != 0:  # nothing paid: nothing to book
                found[int(entry.time)] = (
                    int(entry.time),
                    Decimal(delta.usdc),
                    Decimal(delta.funding_rate),
                )
        hours = {ms // _MS_PER_HOUR for ms in found}
        self._paid_hours |= hours
        self._drop_queued(
            lambda e: isinstance(e, FundingPayment) and e.ts_ns // _NS_PER_HOUR in hours
        )
        return [found[ms] for ms in sorted(found)]

    async def _since(
        self,
        kind: str,
        decode: Callable[[bytes], list[_Timed]],
        since_ms: int,
        page_size: int,
        what: str,
    ) -> list[_Timed]:
        """Every item of a by-time history (`kind`) from `since_ms` on, page by page (the venue
        answers at most `page_size` a reply); unreadable is one line, and nothing is booked."""
        items: list[_Timed] = []
        start = since_ms
        try:
            while True:
                page = decode(await self._info({
                    "type": kind, "user": self.account, "startTime": start,
                }))  # fmt: skip
                self._side_weight += len(page) // 20
                items.extend(page)
                if len(page) < page_size:
                    return items
                last = max(int(item.time) for item in page)
                start = last if last > start else start + 1
        except (httpx.HTTPError, wire.WireError) as exc:
            raise VenueUnavailable(
                f"{self.network} at {self.http_url}: cannot read {what} since the last session "
                f"({type(exc).__name__}: {exc}); nothing was booked, start again"
            ) from None

    async def _read_limits(self) -> None:
        limit = wire.decode_user_rate_limit(
            await self._info({"type": "userRateLimit", "user": self.account})
        )
        self.address_used, self.address_cap = limit.n_requests_used, limit.n_requests_cap
        self._address_sent = 0

    async def _limits(self) -> None:
        """Read the address budget again now and then (it grows with volume traded)."""
        while True:
            await asyncio.sleep(_LIMITS_EVERY_S)
            try:
                await self._read_limits()
            except (httpx.HTTPError, wire.WireError) as exc:
                self.errors.append(f"userRateLimit: {type(exc).__name__}: {exc}")

    async def _nothing_of_ours_left(self) -> bool:
        orders = wire.decode_open_orders(
            await self._info({"type": "frontendOpenOrders", "user": self.account})
        )
        return not any((o.cloid or "").startswith("0x7064") for o in orders)

    async def _switch(self) -> None:
        """Keep the dead man's switch armed `dead_mans_switch_s` ahead while we run: if this
        process freezes or dies, the venue cancels our orders by itself."""
        every = self.dead_mans_switch_s / 3
        while True:
            at_ms = self.clock() // 1_000_000 + int(self.dead_mans_switch_s * 1000)
            try:
                reply = await self._post_action(schedule_cancel_action(at_ms))
            except _Unanswered as exc:
                self.errors.append(f"dead man's switch: {exc}")
                await asyncio.sleep(1.0)
                continue
            if not reply.ok and (reply.error or "").startswith("HTTP 429"):
                await asyncio.sleep(2.0)  # rate limited: not a refusal of the switch
                continue
            if not reply.ok:
                self.switch = f"refused: {reply.error}"
                return  # the operator decides; we do not hammer a refusal
            self.switch = "armed"
            await asyncio.sleep(every)

    def _switch_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closing:
            return
        error = task.exception()
        if error is not None:
            self.switch = f"refused: re-arming failed ({type(error).__name__}: {error})"

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.switch == "armed":
            with contextlib.suppress(Exception):
                if self.resting_orders() or not await self._nothing_of_ours_left():
                    # something may still rest: let the venue cancel it soon
                    at_ms = time.time_ns() // 1_000_000 + 6_000
                    await self._post_action(schedule_cancel_action(at_ms))
                else:  # a clean stop: leave no switch to fire later
                    await self._post_action(schedule_cancel_action(None))
                    self.switch = "off"
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        await self.http.aclose()

    # ---- REST --------------------------------------------------------------------------------

    async def _info(self, body: dict[str, Any]) -> bytes:
        self._side_weight += _INFO_WEIGHT.get(body["type"], 20)
        reply = await self.http.post("/info", content=_JSON.encode(body),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        reply.raise_for_status()
        return reply.content

    async def _post_action(
        self, action: dict[str, Any], expires_after: int | None = None, *, side: bool = True
    ) -> wire.ExchangeReply:
        """Sign and send one action. `side`: not one the core asked for (the core counts its
        own in its rate budget; the weight of these is handed to it)."""
        items = action.get("orders") or action.get("cancels") or action.get("modifies") or (1,)
        self._address_sent += len(items)
        if side:
            self._side_weight += 1 + len(items) // 40
        nonce = self.nonces.next()
        signature = self.signer.sign_l1(
            action, nonce, expires_after=expires_after, mainnet=self.mainnet
        )
        body = {"action": action, "nonce": nonce, "signature": signature,
                "vaultAddress": None, "expiresAfter": expires_after}  # fmt: skip
        try:
            reply = await self.http.post("/exchange", content=_JSON.encode(body),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        except httpx.HTTPError as exc:
            raise _Unanswered(f"{type(exc).__name__}: {exc}") from None
        if reply.status_code >= 500:
            raise _Unanswered(f"HTTP {reply.status_code}")
        if reply.status_code != 200:  # 4xx (429: rate limited): refused, not carried out
            return wire.ExchangeReply(False, error=f"HTTP {reply.status_code}: {reply.text[:200]}")
        try:
            return wire.decode_exchange_reply(reply.content)
        except wire.WireError as exc:  # it was carried out or not: we cannot read which
            raise _Unanswered(f"unreadable reply: {exc}") from None

    async def _order_status(self, cloid: str, tries: int = 6) -> wire.OrderStatus | None:
        """orderStatus by cloid, asked again (with backoff) while the venue does not answer."""
        delay = 0.25
        for _ in range(tries):
            try:
                raw = await self._info({"type": "orderStatus", "user": self.account, "oid": cloid})
                return wire.decode_order_status(raw)
            except (httpx.HTTPError, wire.WireError) as exc:
                self.errors.append(f"orderStatus {cloid}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 4.0)
        return None

    def _later(self, resolving: Coroutine[Any, Any, list[VenueEvent]]) -> None:
        """Resolve unanswered orders in the background: the sender goes on (a kill's cancels
        must not wait behind an order's expiry)."""

        async def run() -> None:
            self._emit(await resolving)

        task = asyncio.create_task(run(), name="hyperliquid-resolve")
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _resolve(self, sent: list[_Ours], why: str, expires: int) -> list[VenueEvent]:
        """What became of orders whose placement went unanswered: asked by cloid once the
        action has expired (the venue can no longer carry it out after that)."""
        wait_s = (expires - time.time_ns() // 1_000_000) / 1000 + 0.25
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        out: list[VenueEvent] = []
        for ours in sent:
            if ours.done:  # its fills or a cancel have already finished it
                continue
            status = await self._order_status(ours.cloid)
            now = self.clock()
            if status is None:  # the venue cannot be asked: still working, and said so
                self.errors.append(f"order {ours.order_id} unresolved after {why}")
                continue
            if status.status != "order" or status.order is None:
                ours.done = True
                out.append(OrderRejected(now, ours.order_id, f"not placed ({why})"))
                continue
            self._known(ours, int(status.order.order.oid))
            state = status.order.status
            if ours.is_ioc:  # no acceptance for a hedge: its fills, then its rest cancelled
                order = status.order.order
                filled = Decimal(order.orig_sz or ours.size) - Decimal(order.sz)
                out.extend(self._ended(ours, filled))
            elif state == "open":
                out.append(OrderAccepted(now, ours.order_id))
            elif state == "filled":
                out.append(OrderAccepted(now, ours.order_id))  # its fills come on their own
            elif state.endswith(("anceled", "Cancel")):
                order = status.order.order
                filled = Decimal(order.orig_sz or ours.size) - Decimal(order.sz)
                out.extend(self._ended(ours, filled))
            else:
                ours.done = True
                out.append(OrderRejected(now, ours.order_id, state))
        return out

    # ---- the sender ------------------------------------------------------------------------

    async def _sender(self) -> None:
        while True:
            action = await self._actions.get()
            batch = [action]
            while not self._actions.empty():
                batch.append(self._actions.get_nowait())
            quotes = [a for a in batch if isinstance(a, PlaceQuote)]
            # cancels first, all in one request: a requote's old quotes go before its new ones,
            # at one request's weight; each step fails on its own, the others still go
            cancel_actions: list[Action] = [a for a in batch if isinstance(a, CancelOrder)]
            steps: list[tuple[list[Action], Coroutine[Any, Any, None]]] = []
            if any(isinstance(item, CancelAll) for item in batch):
                steps.append(([], self._cancel_all()))
            replaces = [a for a in batch if isinstance(a, ReplaceQuote)]
            if replaces:
                steps.append((list(replaces), self._modify(replaces)))
            if cancel_actions:
                ids = [a.order_id for a in cancel_actions if isinstance(a, CancelOrder)]
                steps.append((cancel_actions, self._cancel(ids)))
            for item in batch:
                if isinstance(item, PlaceHedge):
                    steps.append(([item], self._hedge(item)))
            if quotes:
                steps.append((list(quotes), self._place(quotes)))
            for actions, step in steps:
                try:
                    await step
                except Exception as exc:  # failed before it was sent: the core hears so
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    self._emit(self._failed(actions, f"not sent: {type(exc).__name__}: {exc}"))

    async def _modify(self, replaces: list[ReplaceQuote]) -> None:
        """Requotes in one batchModify: each old quote is cancelled and its successor placed by
        the venue at once. A successor the venue refuses (it would cross, it is below the
        minimum, the old one is already gone) is rejected to the core, and its old quote is
        then cancelled the usual way: the core wants it gone either way."""
        now = self.clock()
        cancel_instead: list[str] = []
        refused: list[VenueEvent] = []
        olds: list[_Ours] = []
        sent: list[_Ours] = []
        entries: list[tuple[int | str, OrderWire]] = []
        for replace in replaces:
            quote = replace.quote
            old = self._orders.get(replace.old_order_id)
            if old is None or old.done or old.ending or old.oid is None:
                # Already off the book (filled; cancelled, by a kill's cancel-all in this very
                # batch too): the successor is not placed, the core decides anew.
                refused.append(OrderRejected(now, quote.order_id, "the quote it replaces is gone"))
                if old is not None and not old.done and not old.ending:
                    cancel_instead.append(old.order_id)
                continue
            if not self._fresh:  # the feed is down: the old one goes, no new one on an old book
                refused.append(OrderRejected(now, quote.order_id, "feed down: no fresh book"))
                cancel_instead.append(old.order_id)
                continue
            is_buy = quote.side is Side.BUY
            px = self.grid.price_bid(quote.price) if is_buy else self.grid.price_ask(quote.price)
            sz = self.grid.size(quote.size_base)
            if sz <= 0 or not self.grid.min_notional_ok(px, sz):
                refused.append(OrderRejected(
                    now, quote.order_id, f"below the $10 minimum order value ({sz} at {px})"
                ))  # fmt: skip
                cancel_instead.append(old.order_id)
                continue
            ours = self._track(quote.order_id, quote.side, px, sz, False)
            olds.append(old)
            sent.append(ours)
            new = order_wire(self.asset, is_buy, self.grid.wire(px), self.grid.wire(sz), False,
                             "Alo", ours.cloid)  # fmt: skip
            entries.append((old.cloid, new))
        self._emit(refused)
        if entries:
            expires = time.time_ns() // 1_000_000 + ORDER_TTL_MS
            try:
                reply = await self._post_action(batch_modify_action(entries), expires, side=False)
            except _Unanswered as exc:
                # whether the old ones went is unknown: the core hears its cancels were not
                # confirmed (it asks again); the new ones are asked about by cloid once expired
                self._emit([CancelRejected(self.clock(), o.order_id, f"no answer: {exc}")
                            for o in olds])  # fmt: skip
                self._later(self._resolve(sent, str(exc), expires))
            else:
                outcomes = self._order_outcomes(sent, reply)
                statuses = reply.statuses if reply.ok and len(reply.statuses) == len(sent) else []
                for index, old in enumerate(olds):
                    status = statuses[index] if index < len(statuses) else None
                    if isinstance(status, wire.Resting | wire.Filled):
                        outcomes.extend(self._ended(old, None))  # replaced: gone after its fills
                    elif not old.done and not old.ending:
                        cancel_instead.append(old.order_id)
                self._emit(outcomes)
        if cancel_instead:  # beyond the one request the core counted: weighed on its budget
            await self._cancel(cancel_instead, side=True)

    def _failed(self, batch: list[Action], reason: str) -> list[VenueEvent]:
        now = self.clock()
        out: list[VenueEvent] = []
        for action in batch:
            if isinstance(action, PlaceQuote | PlaceHedge):
                ours = self._orders.get(action.order_id)
                if ours is not None and ours.oid is None and not ours.done:
                    ours.done = True
                    out.append(OrderRejected(now, action.order_id, reason))
            elif isinstance(action, CancelOrder):
                out.append(CancelRejected(now, action.order_id, reason))
            elif isinstance(action, ReplaceQuote):
                out.extend(self._failed([CancelOrder(action.old_order_id), action.quote], reason))
        return out

    def _track(
        self, order_id: str, side: Side, price: Decimal, size: Decimal, is_ioc: bool
    ) -> _Ours:
        ours = _Ours(order_id, cloid_of(order_id), side, price, size, is_ioc)
        self._orders[order_id] = ours
        self._by_cloid[ours.cloid] = ours
        return ours

    async def _place(self, quotes: list[PlaceQuote]) -> None:
        now = self.clock()
        if not self._fresh:  # the feed is down or not yet resynced: no quote on an old book
            self._emit([OrderRejected(now, q.order_id, "feed down: no fresh book") for q in quotes])
            return
        refused: list[VenueEvent] = []
        sent: list[_Ours] = []
        wires: list[OrderWire] = []
        for quote in quotes:
            is_buy = quote.side is Side.BUY
            px = self.grid.price_bid(quote.price) if is_buy else self.grid.price_ask(quote.price)
            sz = self.grid.size(quote.size_base)
            if sz <= 0 or not self.grid.min_notional_ok(px, sz):
                reason = f"below the $10 minimum order value ({sz} at {px})"
                refused.append(OrderRejected(now, quote.order_id, reason))
                continue
            ours = self._track(quote.order_id, quote.side, px, sz, False)
            sent.append(ours)
            wires.append(order_wire(self.asset, is_buy, self.grid.wire(px),
                                    self.grid.wire(sz), False, "Alo", ours.cloid))  # fmt: skip
        self._emit(refused)
        if wires:
            expires = time.time_ns() // 1_000_000 + ORDER_TTL_MS
            try:
                reply = await self._post_action(order_action(wires), expires, side=False)
            except _Unanswered as exc:
                self._later(self._resolve(sent, str(exc), expires))
                return
            self._emit(self._order_outcomes(sent, reply))

    async def _hedge(self, hedge: PlaceHedge) -> None:
        mid = self._mid
        is_buy = hedge.side is Side.BUY
        sz = self.grid.size(hedge.size_base)
        if mid is None or sz <= 0:
            self._emit([OrderRejected(self.clock(), hedge.order_id, "no book to price a hedge")])
            return
        limit = mid * (1 + self.slippage) if is_buy else mid * (1 - self.slippage)
        px = self.grid.price_ask(limit) if is_buy else self.grid.price_bid(limit)
        ours = self._track(hedge.order_id, hedge.side, px, sz, True)
        order = order_wire(self.asset, is_buy, self.grid.wire(px), self.grid.wire(sz), False,
                           "Ioc", ours.cloid)  # fmt: skip
        expires = time.time_ns() // 1_000_000 + ORDER_TTL_MS
        try:
            reply = await self._post_action(order_action([order]), expires, side=False)
        except _Unanswered as exc:
            self._later(self._resolve([ours], str(exc), expires))
            return
        self._emit(self._order_outcomes([ours], reply))

    def _order_outcomes(self, sent: list[_Ours], reply: wire.ExchangeReply) -> list[VenueEvent]:
        now = self.clock()
        out: list[VenueEvent] = []
        if not reply.ok or len(reply.statuses) not in (1, len(sent)):
            reason = reply.error or f"unexpected reply: {reply.statuses!r}"[:200]
            for ours in sent:
                ours.done = True
                out.append(OrderRejected(now, ours.order_id, reason))
            return out
        statuses = reply.statuses * len(sent) if len(reply.statuses) == 1 else reply.statuses
        for ours, status in zip(sent, statuses, strict=True):
            if ours.done:
                continue
            if isinstance(status, wire.Resting):
                self._known(ours, int(status.oid))
                out.append(OrderAccepted(now, ours.order_id))
            elif isinstance(status, wire.Filled):
                self._known(ours, int(status.oid))
                out.extend(self._ended(ours, Decimal(status.total_sz)))
            elif isinstance(status, wire.StatusError):
                ours.done = True
                if ours.is_ioc and "could not immediately match" in status.error:
                    out.append(OrderCanceled(now, ours.order_id))  # an IOC that met nothing
                else:
                    out.append(OrderRejected(now, ours.order_id, status.error))
            else:
                ours.done = True
                out.append(OrderRejected(now, ours.order_id, f"unexpected status {status!r}"))
        return out

    def _known(self, ours: _Ours, oid: int) -> None:
        ours.oid = oid
        self._by_oid[oid] = ours

    def _settle(self, ours: _Ours) -> list[VenueEvent]:
        """An order the venue took off the book is reported gone only once every fill the
        venue counted for it has come: the core never sees a fill for an order it thinks gone."""
        if ours.done or not ours.ending or ours.expected is None or ours.filled < ours.expected:
            return []
        ours.done = True
        if ours.filled < ours.size:
            return [OrderCanceled(self.clock(), ours.order_id)]
        return []  # all filled: the last fill (leaves 0) said it

    def _ended(self, ours: _Ours, filled: Decimal | None) -> list[VenueEvent]:
        """The venue says the order is off the book, having filled `filled` (None: not said;
        asked by cloid in the background)."""
        ours.ending = True
        if filled is not None:
            ours.expected = filled if ours.expected is None else max(ours.expected, filled)
            return self._settle(ours)
        if ours.expected is None and not ours.asking:
            ours.asking = True
            self._later(self._ask_filled(ours))
        return []

    async def _ask_filled(self, ours: _Ours) -> list[VenueEvent]:
        """How much an order the venue took off the book had filled, when its orderUpdate has
        not said so within `_ASK_AFTER_S` (it nearly always does: asking at once for every
        cancelled quote would cost more weight than the quotes themselves)."""
        await asyncio.sleep(_ASK_AFTER_S)
        if ours.done or ours.expected is not None:
            return self._settle(ours)
        status = await self._order_status(ours.cloid)
        if status is None or status.order is None:
            ours.asking = False  # no answer: ask again (after the wait) until there is one
            return self._ended(ours, None)
        order = status.order.order
        filled = Decimal(order.orig_sz or ours.size) - Decimal(order.sz)
        if status.order.status == "filled":
            filled = ours.size
        ours.expected = filled if ours.expected is None else max(ours.expected, filled)
        return self._settle(ours)

    async def _cancel(self, order_ids: list[str], *, side: bool = False) -> None:
        now = self.clock()
        targets: list[_Ours] = []
        out: list[VenueEvent] = []
        for order_id in order_ids:
            ours = self._orders.get(order_id)
            if ours is None:
                out.append(CancelRejected(now, order_id, "unknown order"))
            elif not ours.done and not ours.ending:  # else off the book, its gone-event said
                targets.append(ours)
        self._emit(out)
        if not targets:
            return
        try:
            reply = await self._post_action(
                cancel_by_cloid_action([(self.asset, o.cloid) for o in targets]), side=side
            )
        except _Unanswered as exc:  # the core retries a refused cancel: safe to say so
            now = self.clock()
            self._emit([CancelRejected(now, o.order_id, f"no answer: {exc}") for o in targets])
            return
        now = self.clock()
        out = []
        statuses = reply.statuses if reply.ok else []
        if len(statuses) == 1 and len(targets) > 1:
            statuses = statuses * len(targets)
        for index, ours in enumerate(targets):
            status = statuses[index] if index < len(statuses) else None
            if status == "success":
                out.extend(self._ended(ours, None))  # the orderUpdate says how much filled
            elif not ours.done:
                reason = (
                    status.error if isinstance(status, wire.StatusError)
                    else reply.error or "cancel not confirmed"
                )  # fmt: skip
                out.append(CancelRejected(now, ours.order_id, reason))
        self._emit(out)

    async def _cancel_all(self, *, side: bool = False) -> None:
        live = [
            o.order_id
            for o in self._orders.values()
            if not o.done and not o.ending and not o.is_ioc
        ]
        if live:
            await self._cancel(live, side=side)

    # ---- the feed ----------------------------------------------------------------------------

    async def _feed(self) -> None:
        """Connect, subscribe, read; on a drop pull the quotes, reconnect with backoff."""
        backoff = 0.5
        while not self._closing:
            try:
                async with websockets.connect(self.ws_url, ping_interval=None,
                                              max_size=2**22) as ws:  # fmt: skip
                    self._ws = ws
                    await self._subscribe(ws)
                    backoff = 0.5
                    pinger = asyncio.create_task(self._ping(ws))
                    try:
                        async for frame in ws:
                            self._on_frame(frame)
                    finally:
                        pinger.cancel()
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.errors.append(f"feed: {type(exc).__name__}: {exc}")
            if self._closing:
                return
            self.connected.clear()
            self._fresh = False
            self.drops += 1
            await self._pull_quotes()
            await asyncio.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, 10.0)

    async def _pull_quotes(self) -> None:
        """The feed is gone: our quotes must not outlive it."""
        with contextlib.suppress(Exception):
            await self._cancel_all(side=True)

    async def _subscribe(self, ws: Any) -> None:
        user = self.account
        subscriptions: list[dict[str, Any]] = [
            {"type": "l2Book", "coin": self.coin},
            {"type": "trades", "coin": self.coin},
            {"type": "orderUpdates", "user": user},
            {"type": "userFills", "user": user},
            {"type": "userEvents", "user": user},
        ]
        for sub in subscriptions:
            await ws.send(wire.encode_subscribe(sub).decode())
        self._skip_trades = True  # the first trades message is history, not news
        self._fresh = False  # quotes wait for the first book of this connection

    async def _ping(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(_PING_S)
            await ws.send(wire.PING.decode())

    def _note_mid(self, event: BookUpdate) -> None:
        if event.bids and event.asks:
            self._mid = (Decimal(repr(event.bids[0][0])) + Decimal(repr(event.asks[0][0]))) / 2

    def _on_frame(self, frame: str | bytes) -> None:
        try:
            message = wire.parse(frame)
        except wire.WireError as exc:
            self.errors.append(str(exc))
            return
        now = self.clock()
        if isinstance(message, wire.WsBook):
            event = wire.book_event(message, now)
            self._note_mid(event)
            self._fresh = True
            self.connected.set()
            self._emit([event])
        elif isinstance(message, wire.WsTrades):
            if self._skip_trades:
                self._skip_trades = False
                return
            self._emit(list(wire.trade_events(message)))
        elif isinstance(message, wire.WsUserFills):
            fills = message.fills
            if message.is_snapshot:
                # a snapshot (one per connection) is history: only what filled since our start
                # counts (the rest is in the position read at start, or in the journal)
                fills = [f for f in fills if int(f.time) >= self._start_ms]
            self._emit(self._fills(fills, now))
        elif isinstance(message, wire.OrderUpdates):
            self._emit(self._updates(message.updates, now))
        elif isinstance(message, wire.WsFunding):
            hour = int(message.time) // _MS_PER_HOUR
            # nothing paid (a zero rate): nothing to book; an hour the start-up booked: done
            if Decimal(message.usdc) != 0 and hour not in self._paid_hours:
                self._paid_hours.add(hour)
                self._emit([wire.funding_event(message)])
        elif isinstance(message, wire.NonUserCancels):
            gone: list[VenueEvent] = []
            for cancel in message.cancels:
                ours = self._by_oid.get(int(cancel.oid))
                if ours is not None and not ours.done:
                    gone.extend(self._ended(ours, None))
            self._emit(gone)

    def _fills(self, fills: list[wire.WsFill], now: int) -> list[VenueEvent]:
        out: list[VenueEvent] = []
        for fill in fills:
            tid = int(fill.tid)
            if tid in self._tids:
                continue
            self._tids.add(tid)
            ours = self._by_cloid.get(fill.cloid or "") or self._by_oid.get(int(fill.oid))
            sz = wire.fill_sz(fill)
            side = wire.fill_side(fill)
            if int(fill.time) >= self._start_ms:  # older ones are in the position read at start
                self.position_base = float(Decimal(repr(self.position_base)) + side * sz)
            if ours is None:  # not ours: the gate refuses it and says so
                order_id, leaves = f"hl-oid-{fill.oid}", Decimal(0)
            else:
                ours.filled += sz
                order_id, leaves = ours.order_id, max(Decimal(0), ours.size - ours.filled)
                if not ours.is_ioc and leaves == 0:
                    ours.done = True
            out.append(Fill(now, order_id, side, float(wire.fill_px(fill)),
                            float(sz), float(wire.fill_fee(fill)), wire.is_maker(fill),
                            float(leaves), str(tid)))  # fmt: skip
            if ours is not None:
                out.extend(self._settle(ours))
        return out

    def _updates(self, updates: list[wire.WsOrderUpdate], now: int) -> list[VenueEvent]:
        out: list[VenueEvent] = []
        for update in updates:
            order = update.order
            ours = self._by_cloid.get(order.cloid or "") or self._by_oid.get(int(order.oid))
            if ours is None or ours.done or ours.oid is None:
                continue  # not ours, over, or its placement reply (which decides) still due
            status = update.status
            if status in ("open", "filled", "triggered"):
                continue  # accepted via the reply; fills come on their own channel
            if status.endswith("Rejected") or status == "rejected":
                ours.done = True
                out.append(OrderRejected(now, ours.order_id, status))
                continue
            filled = Decimal(order.orig_sz or ours.size) - Decimal(order.sz)
            out.extend(self._ended(ours, filled))  # canceled, *Canceled: gone once filled
        return out
