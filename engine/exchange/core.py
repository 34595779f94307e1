"""The local exchange's books: accounts, orders and actions in Hyperliquid's terms.

`Exchange` puts Hyperliquid's rules on top of the embedded market (`engine.sim.SimMarket`, one
BTC perp shared by every account and the background flow): signer recovery and nonces, agent
wallets, price and size rules, margin, reduce-only, fees, funding, the dead man's switch and
the address rate limit. It answers /info and /exchange bodies with Hyperliquid's own shapes and
strings, and queues what the WebSocket feeds publish on `bus`. It is synchronous and never
touches the network: the server (`engine.exchange.app`) calls it from one event loop.

Strings marked "(ours)" are not in Hyperliquid's documentation or seen in the wild; they keep
Hyperliquid's style ("Invalid nonce: ...") so a client's prefix match still works.
"""

from __future__ import annotations

import re
import time
from bisect import insort
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.events import (
    CancelOrder,
    CancelRejected,
    Fill,
    FundingPayment,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    Side,
    Trade,
    VenueEvent,
)
from engine.exchange.ledger import ZERO, Ledger, direction
from engine.exchange.rules import (
    MIN_NOTIONAL_USD,
    parse_decimal,
    price_ok,
    size_ok,
    usdc,
    wire,
)
from engine.exchange.signing import (
    USER_SIGNED_TYPES,
    ActionShapeError,
    SignatureError,
    recover_l1_signer,
    recover_user_signed_signer,
)
from engine.sim.market import LimitOrder, SimMarket

COIN = "BTC"
ASSET = 0
SZ_DECIMALS = 5
MAX_LEVERAGE = 40
ZERO_ADDRESS = "0x" + "0" * 40
NONCES_KEPT = 100
NONCE_PAST_MS = 2 * 24 * 3600 * 1000
NONCE_FUTURE_MS = 24 * 3600 * 1000
OPEN_ORDERS_MAX = 1000
DONE_KEPT = 100_000
"""Finished orders kept for orderStatus; older ones answer unknownOid."""
MAX_BATCH = 1000
SCHEDULE_MIN_AHEAD_MS = 5000
SCHEDULE_TRIGGERS_PER_DAY = 10
RATE_BASE = 10_000
_DAY_MS = 86_400_000
_CLOID = re.compile(r"0x[0-9a-f]{32}")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_MAX_AGENTS_NAMED = 3


class RequestError(ValueError):
    """A body that is not a request at all: the server answers HTTP 422 with this text."""


@dataclass(slots=True)
class Order:
    """One order the exchange has seen, open or done."""

    oid: int
    user: str
    is_buy: bool
    limit_px: Decimal
    orig_sz: Decimal
    sz: Decimal
    timestamp: int
    tif: str
    reduce_only: bool
    cloid: str | None
    status: str = "open"
    status_ts: int = 0
    filled: Decimal = ZERO
    notional: Decimal = ZERO

    def wire(self) -> dict[str, Any]:
        """openOrders' shape (and orderUpdates' `order`)."""
        out: dict[str, Any] = {
            "coin": COIN,
            "side": "B" if self.is_buy else "A",
            "limitPx": wire(self.limit_px),
            "sz": wire(self.sz),
            "oid": self.oid,
            "timestamp": self.timestamp,
            "origSz": wire(self.orig_sz),
        }
        if self.cloid is not None:
            out["cloid"] = self.cloid
        return out

    def frontend(self) -> dict[str, Any]:
        out = self.wire()
        out.update(
            reduceOnly=self.reduce_only,
            orderType="Limit",
            tif=self.tif,
            cloid=self.cloid,
            isTrigger=False,
            triggerPx="0.0",
            triggerCondition="N/A",
            isPositionTpsl=False,
            children=[],
        )
        return out


@dataclass(slots=True)
class Agent:
    master: str
    name: str
    valid_until: int | None


@dataclass(slots=True)
class Signer:
    """Per-signer state: the nonces kept, and the address rate-limit use."""

    nonces: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Schedule:
    """A user's dead man's switch."""

    at_ms: int | None = None
    day: int = -1
    triggers: int = 0


@dataclass(frozen=True, slots=True)
class Fees:
    """Rates as fractions: 0.00015 is 1.5 bp. Hyperliquid's base tier by default."""

    maker: Decimal = Decimal("0.00015")
    taker: Decimal = Decimal("0.00045")


Publish = tuple[str, str | None, Any]
"""(channel, user or None for public feeds, data) queued for the WebSocket fan-out."""


class Exchange:
    """Accounts, orders, nonces and agents over one shared market."""

    def __init__(
        self,
        market: SimMarket,
        *,
        mainnet: bool = False,
        fees: Fees | None = None,
        schedule_cancel_min_volume: Decimal = ZERO,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        self.market = market
        self.mainnet = mainnet
        self.chain = "Mainnet" if mainnet else "Testnet"
        self.fees = fees or Fees()
        self.funding_rate = Decimal(repr(market.params.funding_rate_per_hour))
        """Hourly, as a fraction; the market pays it (a long pays when positive)."""
        self.schedule_cancel_min_volume = schedule_cancel_min_volume
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self.ledgers: dict[str, Ledger] = {}
        self.agents: dict[str, Agent] = {}
        self.signers: dict[str, Signer] = {}
        self.requests_used: dict[str, int] = {}
        self.schedules: dict[str, Schedule] = {}
        self.orders: dict[int, Order] = {}
        """Open orders and the most recent `DONE_KEPT` finished ones, by oid."""
        self.done: deque[int] = deque()
        self.done_cloids: dict[tuple[str, str], int] = {}
        self.open_by_user: dict[str, dict[int, Order]] = {}
        self.cloids: dict[tuple[str, str], int] = {}
        self.next_oid = 1_000_000
        self.next_tid = 1
        self.fills_count = 0
        self.bus: list[Publish] = []
        self.book_changed = False
        self.tick = Decimal(repr(market.instrument.tick_size))
        self.lot = Decimal(repr(market.instrument.lot_size))
        self._order_events: dict[str, list[tuple[VenueEvent, str]]] = {}
        self.alo_only_until_ms = 0
        """After an injected network upgrade: only post-only orders until then."""

    # ---- accounts ----------------------------------------------------------------------------

    def fund(self, address: str, usd: Decimal) -> Ledger:
        """Deposit `usd` into `address`, opening its account if new."""
        address = address.lower()
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"not an address: {address!r} (0x and 40 hex digits)")
        ledger = self.ledgers.get(address)
        if ledger is None:
            ledger = self.ledgers[address] = Ledger(address, usd)
            self.market.account(address)
        else:
            ledger.deposited += usd
            ledger.cash += usd
        return ledger

    def now_ms(self) -> int:
        return self.market.now_ns // 1_000_000

    def mark_px(self) -> Decimal:
        bid, ask = self.market.best_ticks()
        if bid is not None and ask is not None:
            return Decimal(bid + ask) * self.tick / 2
        return self.oracle_px()

    def oracle_px(self) -> Decimal:
        return Decimal(round(self.market.fair_mid, 1)).quantize(Decimal("0.1"))

    # ---- the clock ---------------------------------------------------------------------------

    def advance(self, now_ns: int) -> None:
        """Run the market up to `now_ns`, fire due dead man's switches, queue what happened."""
        for event in self.market.advance_to(now_ns):
            self._public(event)
        self._drain()
        now = self.now_ms()
        for user, schedule in self.schedules.items():
            if schedule.at_ms is not None and schedule.at_ms <= now:
                schedule.at_ms = None
                day = now // _DAY_MS
                if schedule.day != day:
                    schedule.day, schedule.triggers = day, 0
                schedule.triggers += 1
                self.cancel_all_of(user, "scheduledCancel")

    def cancel_all_of(self, user: str, status: str) -> int:
        """Cancel every open order of `user` by the venue's hand (status e.g. scheduledCancel)."""
        orders = list(self.open_by_user.get(user, {}).values())
        for order in orders:
            self.market.execute(CancelOrder(str(order.oid)), user)
        self._drain(status)
        if orders:  # every caller is the venue's hand: the user channel says so
            cancels = [{"coin": COIN, "oid": o.oid} for o in orders]
            self.bus.append(("user", user, {"nonUserCancel": cancels}))
        return len(orders)

    def cancel_everything(self) -> int:
        """Every open order of every account is cancelled, as a network upgrade does."""
        return sum(self.cancel_all_of(user, "canceled") for user in list(self.open_by_user))

    # ---- events from the market --------------------------------------------------------------

    def _public(self, event: VenueEvent) -> None:
        if isinstance(event, Trade):
            tid = self.next_tid
            self.next_tid += 1
            trade = {
                "coin": COIN,
                "side": "B" if event.aggressor is Side.BUY else "A",
                "px": wire(event.price),
                "sz": wire(event.size_base),
                "time": event.ts_ns // 1_000_000,
                "hash": _hash(tid),
                "tid": tid,
                "users": [ZERO_ADDRESS, ZERO_ADDRESS],
            }
            self.bus.append(("trades", None, [trade]))
        else:
            self.book_changed = True

    def _drain(self, cancel_status: str = "canceled") -> None:
        """Book every private event the market queued, in order."""
        outbox = self.market.outbox
        if not outbox:
            return
        items = outbox.copy()
        outbox.clear()
        self.book_changed = True
        filled: set[str] = set()
        for user, event, note in items:
            if isinstance(event, FundingPayment):
                self._funding(user, event)
                continue
            order_id = getattr(event, "order_id", "")
            watch = self._order_events.get(order_id)
            if watch is not None:
                watch.append((event, note))
            oid = int(order_id)
            order = self.orders.get(oid)
            if order is None:  # pragma: no cover - the market only knows our oids
                continue
            if isinstance(event, Fill):
                self._fill(order, event)
                filled.add(order.user)
            elif isinstance(event, OrderAccepted):
                self._update(order, "open", event.ts_ns)
            elif isinstance(event, OrderCanceled):
                status = "selfTradeCanceled" if note == "selfTrade" else cancel_status
                self._close(order, status, event.ts_ns)
            elif isinstance(event, OrderRejected):
                status = "badAloPxRejected" if "cross" in event.reason else "rejected"
                self._close(order, status, event.ts_ns)
            elif isinstance(event, CancelRejected):  # pragma: no cover - no cancel faults here
                continue
        for user in filled:
            self._reduce_only_check(user)

    def _reduce_only_check(self, user: str) -> None:
        """A resting reduce-only order that would no longer only reduce the position (it is
        flat, or flipped, or the order is larger than what is left) is cancelled by the venue,
        status reduceOnlyCanceled."""
        szi = self.ledgers[user].szi
        room = abs(szi)
        stale = []
        for order in self.open_by_user.get(user, {}).values():
            if not order.reduce_only:
                continue
            reduces = szi != 0 and (szi > 0) != order.is_buy
            if not reduces or order.sz > room:
                stale.append(order)
            else:
                room -= order.sz
        for order in stale:
            self.market.execute(CancelOrder(str(order.oid)), user)
        if stale:
            self._drain("reduceOnlyCanceled")

    def _fill(self, order: Order, event: Fill) -> None:
        ledger = self.ledgers[order.user]
        px = Decimal(repr(event.price))
        sz = Decimal(repr(event.size_base))
        rate = self.fees.maker if event.is_maker else self.fees.taker
        fee, closed, start = ledger.fill(order.is_buy, px, sz, rate)
        order.sz -= sz
        order.filled += sz
        order.notional += px * sz
        tid = self.next_tid
        self.next_tid += 1
        self.fills_count += 1
        fill: dict[str, Any] = {
            "coin": COIN,
            "px": wire(px),
            "sz": wire(sz),
            "side": "B" if order.is_buy else "A",
            "time": event.ts_ns // 1_000_000,
            "startPosition": wire(start),
            "dir": direction(start, sz if order.is_buy else -sz),
            "closedPnl": wire(usdc(closed)),
            "hash": _hash(tid),
            "oid": order.oid,
            "crossed": not event.is_maker,
            "fee": wire(fee),
            "tid": tid,
            "feeToken": "USDC",
        }
        if order.cloid is not None:
            fill["cloid"] = order.cloid
        ledger.fills.append(fill)
        self.bus.append(("userFills", order.user, fill))
        if order.sz <= 0:
            self._close(order, "filled", event.ts_ns)

    def _funding(self, user: str, event: FundingPayment) -> None:
        ledger = self.ledgers.get(user)
        if ledger is None or ledger.szi == 0:
            return
        rate = Decimal(repr(event.rate))
        oracle = Decimal(repr(round(event.mark_price, 1)))
        szi = ledger.szi
        received = ledger.pay_funding(oracle, rate)
        ms = event.ts_ns // 1_000_000
        delta = {
            "type": "funding",
            "coin": COIN,
            "usdc": wire(received),
            "szi": wire(szi),
            "fundingRate": wire(rate),
            "nSamples": None,
        }
        ledger.fundings.append({"time": ms, "hash": "0x" + "0" * 64, "delta": delta})
        self.bus.append(
            (
                "user",
                user,
                {
                    "funding": {
                        "time": ms,
                        "coin": COIN,
                        "usdc": wire(received),
                        "szi": wire(szi),
                        "fundingRate": wire(rate),
                    }
                },
            )
        )

    def _update(self, order: Order, status: str, ts_ns: int) -> None:
        order.status = status
        order.status_ts = ts_ns // 1_000_000
        self.bus.append(
            (
                "orderUpdates",
                order.user,
                {"order": order.wire(), "status": status, "statusTimestamp": order.status_ts},
            )
        )

    def _close(self, order: Order, status: str, ts_ns: int) -> None:
        if order.status != "open":
            return
        self.open_by_user.get(order.user, {}).pop(order.oid, None)
        if order.cloid is not None:
            self.cloids.pop((order.user, order.cloid), None)
            self.done_cloids[(order.user, order.cloid)] = order.oid
        self._update(order, status, ts_ns)
        self.done.append(order.oid)
        while len(self.done) > DONE_KEPT:
            old = self.orders.pop(self.done.popleft(), None)
            if old is not None and old.cloid is not None:
                key = (old.user, old.cloid)
                if self.done_cloids.get(key) == old.oid:
                    del self.done_cloids[key]

    # ---- /exchange ---------------------------------------------------------------------------

    def exchange(self, body: Any) -> dict[str, Any]:
        """Answer one /exchange body (already JSON-decoded) with Hyperliquid's reply."""
        try:
            return self._exchange(body)
        except (ActionShapeError, SignatureError, RequestError) as exc:
            raise RequestError(str(exc)) from None

    def _exchange(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        action = body.get("action")
        nonce = body.get("nonce")
        signature = body.get("signature")
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            raise RequestError("missing field `action` (an object with a `type`)")
        if isinstance(nonce, bool) or not isinstance(nonce, int):
            raise RequestError("missing field `nonce` (an integer)")
        if not isinstance(signature, dict):
            raise RequestError("missing field `signature`")
        kind = action["type"]
        vault = body.get("vaultAddress")
        expires = body.get("expiresAfter")
        if kind in USER_SIGNED_TYPES:
            return self._user_signed(kind, action, nonce, signature, expires)
        if kind not in _L1_HANDLERS:
            raise RequestError(f"unknown action type {kind!r}")
        signer = recover_l1_signer(action, nonce, vault, expires, signature, mainnet=self.mainnet)
        user = self._user_of(signer)
        if user is None:
            return _err(f"L1 error: User or API Wallet {signer} does not exist.")
        if vault is not None:
            return _err(f"Vault not registered: {str(vault).lower()}")
        if expires is not None and expires < self._wall_ms():
            return _err(f"Action expired: expiresAfter {expires} is in the past")  # (ours)
        problem = self._use_nonce(signer, nonce)
        if problem is not None:
            return _err(problem)
        limited = self._charge(user, action)
        if limited is not None:
            return _err(limited)
        return _L1_HANDLERS[kind](self, user, action)

    def _user_of(self, signer: str) -> str | None:
        if signer in self.ledgers:
            return signer
        agent = self.agents.get(signer)
        if agent is None:
            return None
        if agent.valid_until is not None and agent.valid_until < self._wall_ms():
            return None
        return agent.master if agent.master in self.ledgers else None

    def _use_nonce(self, signer: str, nonce: int) -> str | None:
        state = self.signers.setdefault(signer, Signer())
        kept = state.nonces
        now = self._wall_ms()
        if nonce in kept:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(kept) >= NONCES_KEPT and nonce <= kept[0]:
            return f"Invalid nonce: nonce {nonce} is not above the lowest kept nonce {kept[0]}"
        if nonce <= now - NONCE_PAST_MS:
            return f"Invalid nonce: nonce {nonce} is too old (more than 2 days before {now})"
        if nonce >= now + NONCE_FUTURE_MS:
            return f"Invalid nonce: nonce {nonce} is too far ahead (more than 1 day after {now})"
        insort(kept, nonce)
        if len(kept) > NONCES_KEPT:
            del kept[0]
        return None

    def rate_cap(self, user: str) -> int:
        return RATE_BASE + int(self.ledgers[user].volume)

    def _charge(self, user: str, action: Mapping[str, Any]) -> str | None:
        """The address budget: 10,000 requests plus one per USDC traded; cancels get more room."""
        kind = action["type"]
        items = action.get("orders") or action.get("cancels") or action.get("modifies") or ()
        n = max(1, len(items)) if isinstance(items, list) else 1
        used = self.requests_used.get(user, 0) + n
        cap = self.rate_cap(user)
        room = min(cap + 100_000, 2 * cap) if kind in ("cancel", "cancelByCloid") else cap
        if used > room:
            volume = wire(usdc(self.ledgers[user].volume))
            return (
                f"Too many cumulative requests sent ({used} > {cap}) for cumulative volume "
                f"traded ${volume}. Place taker orders to free up 1 request per USDC traded."
            )
        self.requests_used[user] = used
        return None

    # ---- orders -----------------------------------------------------------------------------

    def _order_action(self, user: str, action: Mapping[str, Any]) -> dict[str, Any]:
        orders = action.get("orders")
        if not isinstance(orders, list) or not orders:
            return _err("Order has invalid size.") if orders == [] else _err("Invalid order")
        if len(orders) > MAX_BATCH:
            return _err(f"Too many orders in one request: at most {MAX_BATCH}")  # (ours)
        statuses = [self._place(user, wire_order) for wire_order in orders]
        return _ok("order", {"statuses": statuses})

    def _would_cross(self, is_buy: bool, px: Decimal) -> bool:
        bid, ask = self.market.best_ticks()
        ticks = px / self.tick
        return ask is not None and ticks >= ask if is_buy else bid is not None and ticks <= bid

    def _post_only_error(self, asset: str) -> dict[str, str]:
        bid, ask = self.market.best_ticks()
        bbo = f"{_px(bid, self.tick)}@{_px(ask, self.tick)}"
        return {"error": f"Post only order would have immediately matched, bbo was {bbo}." + asset}

    def _place(
        self, user: str, w: Any, replacing: Order | None = None, always_place: bool = False
    ) -> Any:
        """One order wire -> its status: resting, filled, or an error."""
        if not isinstance(w, dict):
            return {"error": "Invalid order"}
        if w.get("a") != ASSET:
            return {"error": f"Asset {w.get('a')!r} does not exist."}  # (ours)
        is_buy = w.get("b")
        px = parse_decimal(w.get("p"))
        sz = parse_decimal(w.get("s"))
        tif = _tif(w.get("t"))
        if not isinstance(is_buy, bool) or tif is None:
            return {"error": "Invalid order type."}  # (ours)
        if px is None or px <= 0:
            return {"error": "Order has invalid price."}
        if sz is None or not size_ok(sz, SZ_DECIMALS):
            return {"error": "Order has invalid size."}
        cloid = w.get("c")
        if cloid is not None:
            if not isinstance(cloid, str) or not _CLOID.fullmatch(cloid.lower()):
                return {"error": "Invalid cloid: 0x and 32 hex digits."}  # (ours)
            cloid = cloid.lower()
            holder = self.cloids.get((user, cloid))
            if holder is not None and (replacing is None or holder != replacing.oid):
                return {"error": f"Duplicate cloid {cloid}: an open order has it."}  # (ours)
        reduce_only = w.get("r") is True
        asset = f" asset={ASSET}"
        if tif != "Alo" and self.now_ms() < self.alo_only_until_ms:
            return {"error": "Only post-only orders allowed immediately after a network upgrade"}
        if not price_ok(px, SZ_DECIMALS) or px % self.tick:
            return {"error": "Price must be divisible by tick size." + asset}
        if px * sz < MIN_NOTIONAL_USD:
            return {"error": "Order must have minimum value of $10." + asset}
        oracle = self.oracle_px()
        if abs(px - oracle) > oracle * Decimal("0.8"):
            return {"error": "Order price cannot be more than 80% away from the reference price"}
        ledger = self.ledgers[user]
        szi = ledger.szi
        reduces = szi != 0 and (szi > 0) != is_buy
        if reduce_only:
            if not reduces:
                return {"error": "Reduce only order would increase position." + asset}
            sz = min(sz, abs(szi))
        open_now = len(self.open_by_user.get(user, {})) - (replacing is not None)
        if open_now >= OPEN_ORDERS_MAX:
            return {"error": f"Too many open orders: at most {OPEN_ORDERS_MAX}."}  # (ours)
        if not self._margin_ok(ledger, user, is_buy, px, sz, replacing):
            return {"error": "Insufficient margin to place order." + asset}
        if replacing is not None:
            if not always_place:
                # without always-place the new order must rest: ALO, or a GTC that does not
                # cross (made ALO); checked before the old order is touched
                if tif == "Ioc":
                    return {"error": "Modified order must be post-only or resting (Alo or Gtc)"}
                tif = "Alo"
                if self._would_cross(is_buy, px):
                    return self._post_only_error(asset)
            self.market.execute(CancelOrder(str(replacing.oid)), user)
            self._drain()
            if replacing.status != "canceled" and not always_place:
                return {"error": "Cannot modify canceled or filled order"}
        oid = self.next_oid
        self.next_oid += 1
        now = self.now_ms()
        order = Order(oid, user, is_buy, px, sz, sz, now, tif, reduce_only, cloid, status_ts=now)
        self.orders[oid] = order
        self.open_by_user.setdefault(user, {})[oid] = order
        if cloid is not None:
            self.cloids[(user, cloid)] = oid
        side = Side.BUY if is_buy else Side.SELL
        ticks = int(px / self.tick)
        lots = int(sz / self.lot)
        seen: list[tuple[VenueEvent, str]] = []
        self._order_events[str(oid)] = seen
        try:
            for event in self.market.execute(LimitOrder(str(oid), side, ticks, lots, tif), user):
                self._public(event)
            self._drain()
        finally:
            del self._order_events[str(oid)]
        return self._status(order, seen, asset)

    def _status(self, order: Order, seen: list[tuple[VenueEvent, str]], asset: str) -> Any:
        rejected = next((e for e, _ in seen if isinstance(e, OrderRejected)), None)
        if rejected is not None:
            if "cross" in rejected.reason:
                return self._post_only_error(asset)
            return {"error": rejected.reason}
        ids: dict[str, Any] = {"oid": order.oid}
        if order.cloid is not None:
            ids["cloid"] = order.cloid
        if order.status == "filled":
            avg = _avg(order)
            return {"filled": {"totalSz": wire(order.filled), "avgPx": wire(avg), **ids}}
        if order.status == "open":
            return {"resting": ids}
        if order.filled:  # an IOC partly filled, the rest cancelled
            avg = _avg(order)
            return {"filled": {"totalSz": wire(order.filled), "avgPx": wire(avg), **ids}}
        order.status = "iocCancelRejected"
        return {"error": "Order could not immediately match against any resting orders." + asset}

    def _margin_ok(
        self,
        ledger: Ledger,
        user: str,
        is_buy: bool,
        px: Decimal,
        sz: Decimal,
        replacing: Order | None,
    ) -> bool:
        """Initial margin: position and open orders on the side that grows it, at leverage."""
        mark = self.mark_px()
        szi = ledger.szi
        reducing = min(sz, abs(szi)) if szi != 0 and (szi > 0) != is_buy else ZERO
        new_ntl = (sz - reducing) * px
        if new_ntl <= 0:
            return True
        open_ntl = sum(
            (
                o.sz * o.limit_px
                for o in self.open_by_user.get(user, {}).values()
                if o is not replacing
            ),
            ZERO,
        )
        used = (abs(szi) * mark + open_ntl) / ledger.leverage
        return ledger.equity(mark) - used >= new_ntl / ledger.leverage

    def _cancel_action(self, user: str, action: Mapping[str, Any]) -> dict[str, Any]:
        cancels = action.get("cancels")
        if not isinstance(cancels, list) or not cancels:
            raise RequestError("cancels must be a non-empty list")
        if len(cancels) > MAX_BATCH:
            return _err(f"Too many cancels in one request: at most {MAX_BATCH}")  # (ours)
        by_cloid = action["type"] == "cancelByCloid"
        statuses: list[Any] = []
        for item in cancels:
            order = self._find(user, item, by_cloid)
            if order is None or order.status != "open":
                statuses.append(
                    {"error": f"Order was never placed, already canceled, or filled. asset={ASSET}"}
                )
                continue
            self.market.execute(CancelOrder(str(order.oid)), user)
            self._drain()
            statuses.append("success")
        return _ok("cancel", {"statuses": statuses})

    def _find(self, user: str, item: Any, by_cloid: bool) -> Order | None:
        if not isinstance(item, dict):
            return None
        if by_cloid:
            cloid = item.get("cloid")
            oid = self.cloids.get((user, cloid.lower())) if isinstance(cloid, str) else None
        else:
            oid = item.get("o")
        order = self.orders.get(oid) if isinstance(oid, int) else None
        return order if order is not None and order.user == user else None

    def _modify_action(self, user: str, action: Mapping[str, Any]) -> dict[str, Any]:
        if action["type"] == "modify":
            entries: Any = [{"oid": action.get("oid"), "order": action.get("order")}]
        else:
            entries = action.get("modifies")
        if not isinstance(entries, list) or not entries:
            raise RequestError("modifies must be a non-empty list")
        if len(entries) > MAX_BATCH:
            return _err(f"Too many modifies in one request: at most {MAX_BATCH}")  # (ours)
        statuses: list[Any] = []
        for entry in entries:
            target = entry.get("oid") if isinstance(entry, dict) else None
            if isinstance(target, str):
                oid = self.cloids.get((user, target.lower()))
                old = self.orders.get(oid) if oid is not None else None
            else:
                old = self.orders.get(target) if isinstance(target, int) else None
            if old is None or old.user != user or old.status != "open":
                statuses.append({"error": "Cannot modify canceled or filled order"})
                continue
            always = isinstance(entry, dict) and entry.get("a") is True
            statuses.append(
                self._place(user, entry.get("order"), replacing=old, always_place=always)
            )
        return _ok("order", {"statuses": statuses})

    def _schedule_cancel(self, user: str, action: Mapping[str, Any]) -> dict[str, Any]:
        at = action.get("time")
        ledger = self.ledgers[user]
        if ledger.volume < self.schedule_cancel_min_volume:
            need = wire(self.schedule_cancel_min_volume)
            return _err(
                "Cannot set scheduled cancel time until enough volume traded. "
                f"Required: ${need}. Traded: ${wire(usdc(ledger.volume))}."
            )
        schedule = self.schedules.setdefault(user, Schedule())
        if at is None:
            schedule.at_ms = None
            return _ok_default()
        if isinstance(at, bool) or not isinstance(at, int):
            raise RequestError("scheduleCancel time must be an integer (ms)")
        now = self.now_ms()
        if at < now + SCHEDULE_MIN_AHEAD_MS:
            return _err(
                "Scheduled cancel time too early, must be at least 5 seconds after current time"
            )  # (ours)
        day = now // _DAY_MS
        if schedule.day == day and schedule.triggers >= SCHEDULE_TRIGGERS_PER_DAY:
            return _err(
                "Too many scheduled cancel triggers today: at most 10 per day, reset at 00:00 UTC"
            )  # (ours)
        schedule.at_ms = at
        return _ok_default()

    def _update_leverage(self, user: str, action: Mapping[str, Any]) -> dict[str, Any]:
        leverage = action.get("leverage")
        if action.get("asset") != ASSET:
            return _err(f"Asset {action.get('asset')!r} does not exist.")  # (ours)
        if isinstance(leverage, bool) or not isinstance(leverage, int):
            raise RequestError("updateLeverage leverage must be an integer")
        if not 1 <= leverage <= MAX_LEVERAGE:
            return _err(f"Invalid leverage value: 1 to {MAX_LEVERAGE} for {COIN}")  # (ours)
        ledger = self.ledgers[user]
        ledger.leverage = leverage
        ledger.is_cross = action.get("isCross") is not False
        return _ok_default()

    def _noop(self, user: str, action: Mapping[str, Any]) -> dict[str, Any]:
        return _ok_default()

    # ---- user-signed actions -------------------------------------------------------------

    def _user_signed(
        self,
        kind: str,
        action: Mapping[str, Any],
        nonce: int,
        signature: Mapping[str, Any],
        expires: Any,
    ) -> dict[str, Any]:
        if expires is not None:
            return _err("expiresAfter is not allowed on user-signed actions")  # (ours)
        primary, fields = USER_SIGNED_TYPES[kind]
        signer = recover_user_signed_signer(action, signature, primary, fields)
        if signer not in self.ledgers:
            return _err(f"Must deposit before performing actions. User: {signer}")
        if action.get("hyperliquidChain") != self.chain:
            return _err(f"hyperliquidChain must be {self.chain!r} on this exchange")  # (ours)
        stamp = action.get("nonce", action.get("time"))
        if stamp != nonce:
            return _err("the action's nonce must equal the request's nonce")  # (ours)
        problem = self._use_nonce(signer, nonce)
        if problem is not None:
            return _err(problem)
        if kind != "approveAgent":
            return _err(f"{kind} is not supported on the local exchange")  # (ours)
        return self._approve_agent(signer, action)

    def _approve_agent(self, master: str, action: Mapping[str, Any]) -> dict[str, Any]:
        agent = str(action.get("agentAddress", "")).lower()
        if not _ADDRESS.fullmatch(agent):
            raise RequestError("agentAddress must be an address")
        name = str(action.get("agentName") or "")
        valid_until = None
        marker = " valid_until "
        if marker in name:
            name, _, stamp = name.partition(marker)
            if not (stamp.isascii() and stamp.isdigit()):
                return _err("agentName valid_until must be a time in ms")  # (ours)
            valid_until = int(stamp)
        if agent in self.ledgers:
            return _err(f"Agent {agent} is a user: an API wallet cannot hold funds")  # (ours)
        taken = self.agents.get(agent)
        if taken is not None and taken.master != master:
            return _err(f"Agent {agent} is already an API wallet of another account")  # (ours)
        mine = {a: g for a, g in self.agents.items() if g.master == master}
        for address, known in mine.items():
            if known.name == name:  # same name (or unnamed): replaced
                del self.agents[address]
        now = self._wall_ms()
        named = [
            g
            for g in self.agents.values()
            if g.master == master and g.name and (g.valid_until is None or g.valid_until >= now)
        ]
        if name and len(named) >= _MAX_AGENTS_NAMED:
            return _err(f"At most {_MAX_AGENTS_NAMED} named API wallets")  # (ours)
        self.agents[agent] = Agent(master, name, valid_until)
        return _ok_default()

    # ---- /info ---------------------------------------------------------------------------------

    def info(self, body: Any) -> tuple[Any, int]:
        """Answer one /info body: (reply, IP weight)."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise RequestError("missing field `type`")
        kind = body["type"]
        handler = _INFO_HANDLERS.get(kind)
        if handler is None:
            raise RequestError(f"unknown variant `{kind}`")
        reply = handler(self, body)
        weight = _INFO_WEIGHT.get(kind, 20)
        if kind in ("userFills", "userFillsByTime", "userFunding") and isinstance(reply, list):
            weight += len(reply) // 20
        return reply, weight

    def _user_arg(self, body: Mapping[str, Any]) -> str:
        user = body.get("user")
        if not isinstance(user, str) or not _ADDRESS.fullmatch(user.lower()):
            raise RequestError("missing field `user` (an address)")
        return user.lower()

    def _meta(self) -> dict[str, Any]:
        return {
            "universe": [
                {
                    "name": COIN,
                    "szDecimals": SZ_DECIMALS,
                    "maxLeverage": MAX_LEVERAGE,
                    "marginTableId": MAX_LEVERAGE,
                }
            ],
            "marginTables": [
                [
                    MAX_LEVERAGE,
                    {
                        "description": "",
                        "marginTiers": [{"lowerBound": "0.0", "maxLeverage": MAX_LEVERAGE}],
                    },
                ]
            ],
            "collateralToken": 0,
        }

    def _asset_ctx(self) -> dict[str, Any]:
        mark = self.mark_px()
        volume = sum((ledger.volume for ledger in self.ledgers.values()), ZERO)
        return {
            "funding": wire(self.funding_rate),
            "openInterest": wire(sum((abs(x.szi) for x in self.ledgers.values()), ZERO)),
            "prevDayPx": wire(self.oracle_px()),
            "dayNtlVlm": wire(usdc(volume)),
            "premium": "0.0",
            "oraclePx": wire(self.oracle_px()),
            "markPx": wire(mark),
            "midPx": wire(mark),
            "impactPxs": None,
            "dayBaseVlm": "0.0",
        }

    def l2_book(self, depth: int = 20) -> dict[str, Any]:
        bids, asks = self.market.book_levels(depth)
        lot, tick = self.lot, self.tick

        def side(levels: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
            return [{"px": wire(t * tick), "sz": wire(n * lot), "n": k} for t, n, k in levels]

        return {"coin": COIN, "time": self.now_ms(), "levels": [side(bids), side(asks)]}

    def bbo(self) -> dict[str, Any]:
        bids, asks = self.market.book_levels(1)
        lot, tick = self.lot, self.tick
        levels = [
            {"px": wire(lv[0][0] * tick), "sz": wire(lv[0][1] * lot), "n": lv[0][2]} if lv else None
            for lv in (bids, asks)
        ]
        return {"coin": COIN, "time": self.now_ms(), "bbo": levels}

    def all_mids(self) -> dict[str, str]:
        return {COIN: wire(self.mark_px())}

    def clearinghouse(self, user: str) -> dict[str, Any]:
        ledger = self.ledgers.get(user)
        now = self.now_ms()
        if ledger is None:
            summary = {
                "accountValue": "0.0",
                "totalNtlPos": "0.0",
                "totalRawUsd": "0.0",
                "totalMarginUsed": "0.0",
            }
            return {
                "assetPositions": [],
                "marginSummary": summary,
                "crossMarginSummary": dict(summary),
                "crossMaintenanceMarginUsed": "0.0",
                "withdrawable": "0.0",
                "time": now,
            }
        mark = self.mark_px()
        positions = []
        if ledger.szi != 0:
            position = ledger.position(COIN, mark, MAX_LEVERAGE)
            positions.append({"type": "oneWay", "position": position})
        value = ledger.equity(mark)
        margin = ledger.margin_used(mark)
        summary = {
            "accountValue": wire(usdc(value)),
            "totalNtlPos": wire(usdc(abs(ledger.szi) * mark)),
            "totalRawUsd": wire(usdc(ledger.cash)),
            "totalMarginUsed": wire(usdc(margin)),
        }
        maintenance = abs(ledger.szi) * mark / (2 * MAX_LEVERAGE)
        return {
            "assetPositions": positions,
            "marginSummary": summary,
            "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": wire(usdc(maintenance)),
            "withdrawable": wire(usdc(max(ZERO, value - margin))),
            "time": now,
        }

    def order_status(self, user: str, target: Any) -> dict[str, Any]:
        if isinstance(target, str):
            key = (user, target.lower())
            oid = self.cloids.get(key, self.done_cloids.get(key))
        else:
            oid = target
        order = self.orders.get(oid) if isinstance(oid, int) else None
        if order is None or order.user != user:
            return {"status": "unknownOid"}
        return {
            "status": "order",
            "order": {
                "order": order.frontend(),
                "status": order.status,
                "statusTimestamp": order.status_ts,
            },
        }

    def user_fees(self, user: str) -> dict[str, Any]:
        maker, taker = wire(self.fees.maker), wire(self.fees.taker)
        return {
            "dailyUserVlm": [],
            "feeSchedule": {
                "cross": taker,
                "add": maker,
                "spotCross": "0.0007",
                "spotAdd": "0.0004",
                "tiers": {"vip": [], "mm": []},
                "referralDiscount": "0.04",
            },
            "userCrossRate": taker,
            "userAddRate": maker,
            "userSpotCrossRate": "0.0007",
            "userSpotAddRate": "0.0004",
            "activeReferralDiscount": "0.0",
            "activeStakingDiscount": None,
        }

    def fills_between(self, user: str, start: int, end: int | None) -> list[dict[str, Any]]:
        ledger = self.ledgers.get(user)
        if ledger is None:
            return []
        out = [f for f in ledger.fills if f["time"] >= start and (end is None or f["time"] <= end)]
        return out[:2000]


def _i_meta(ex: Exchange, body: Mapping[str, Any]) -> Any:
    return ex._meta()


def _i_spot_meta(ex: Exchange, body: Mapping[str, Any]) -> Any:
    return {"universe": [], "tokens": []}


def _i_meta_ctxs(ex: Exchange, body: Mapping[str, Any]) -> Any:
    return [ex._meta(), [ex._asset_ctx()]]


def _i_all_mids(ex: Exchange, body: Mapping[str, Any]) -> Any:
    return ex.all_mids()


def _i_l2(ex: Exchange, body: Mapping[str, Any]) -> Any:
    if body.get("coin") != COIN:
        return None  # Hyperliquid answers null for an unknown coin
    return ex.l2_book()


def _i_clearinghouse(ex: Exchange, body: Mapping[str, Any]) -> Any:
    return ex.clearinghouse(ex._user_arg(body))


def _i_open_orders(ex: Exchange, body: Mapping[str, Any]) -> Any:
    orders = ex.open_by_user.get(ex._user_arg(body), {}).values()
    return [o.wire() for o in sorted(orders, key=lambda o: -o.oid)]


def _i_frontend_orders(ex: Exchange, body: Mapping[str, Any]) -> Any:
    orders = ex.open_by_user.get(ex._user_arg(body), {}).values()
    return [o.frontend() for o in sorted(orders, key=lambda o: -o.oid)]


def _i_order_status(ex: Exchange, body: Mapping[str, Any]) -> Any:
    return ex.order_status(ex._user_arg(body), body.get("oid"))


def _i_user_fills(ex: Exchange, body: Mapping[str, Any]) -> Any:
    ledger = ex.ledgers.get(ex._user_arg(body))
    return [] if ledger is None else list(reversed(ledger.fills))[:2000]


def _i_user_fills_by_time(ex: Exchange, body: Mapping[str, Any]) -> Any:
    start = body.get("startTime")
    end = body.get("endTime")
    if isinstance(start, bool) or not isinstance(start, int):
        raise RequestError("missing field `startTime` (ms)")
    if end is not None and (isinstance(end, bool) or not isinstance(end, int)):
        raise RequestError("`endTime` must be an integer (ms) or null")
    return ex.fills_between(ex._user_arg(body), start, end)


def _i_user_fees(ex: Exchange, body: Mapping[str, Any]) -> Any:
    return ex.user_fees(ex._user_arg(body))


def _i_user_rate_limit(ex: Exchange, body: Mapping[str, Any]) -> Any:
    user = ex._user_arg(body)
    ledger = ex.ledgers.get(user)
    volume = ZERO if ledger is None else ledger.volume
    cap = RATE_BASE + int(volume)
    used = ex.requests_used.get(user, 0)
    return {
        "cumVlm": wire(usdc(volume)),
        "nRequestsUsed": used,
        "nRequestsCap": cap,
        "nRequestsSurplus": max(0, cap - used),
    }


def _i_user_funding(ex: Exchange, body: Mapping[str, Any]) -> Any:
    ledger = ex.ledgers.get(ex._user_arg(body))
    start = body.get("startTime", 0)
    end = body.get("endTime")
    if isinstance(start, bool) or not isinstance(start, int):
        raise RequestError("`startTime` must be an integer (ms)")
    if end is not None and (isinstance(end, bool) or not isinstance(end, int)):
        raise RequestError("`endTime` must be an integer (ms) or null")
    if ledger is None:
        return []
    return [f for f in ledger.fundings if f["time"] >= start and (end is None or f["time"] <= end)][
        :500
    ]


def _i_extra_agents(ex: Exchange, body: Mapping[str, Any]) -> Any:
    user = ex._user_arg(body)
    return [
        {"name": g.name, "address": a, "validUntil": g.valid_until}
        for a, g in ex.agents.items()
        if g.master == user
    ]


_INFO_HANDLERS: dict[str, Callable[[Exchange, Mapping[str, Any]], Any]] = {
    "meta": _i_meta,
    "spotMeta": _i_spot_meta,
    "metaAndAssetCtxs": _i_meta_ctxs,
    "allMids": _i_all_mids,
    "l2Book": _i_l2,
    "clearinghouseState": _i_clearinghouse,
    "openOrders": _i_open_orders,
    "frontendOpenOrders": _i_frontend_orders,
    "orderStatus": _i_order_status,
    "userFills": _i_user_fills,
    "userFillsByTime": _i_user_fills_by_time,
    "userFees": _i_user_fees,
    "userRateLimit": _i_user_rate_limit,
    "userFunding": _i_user_funding,
    "extraAgents": _i_extra_agents,
}
_INFO_WEIGHT = {"l2Book": 2, "allMids": 2, "clearinghouseState": 2, "orderStatus": 2}

_L1_HANDLERS: dict[str, Callable[[Exchange, str, Mapping[str, Any]], dict[str, Any]]] = {
    "order": Exchange._order_action,
    "cancel": Exchange._cancel_action,
    "cancelByCloid": Exchange._cancel_action,
    "modify": Exchange._modify_action,
    "batchModify": Exchange._modify_action,
    "scheduleCancel": Exchange._schedule_cancel,
    "updateLeverage": Exchange._update_leverage,
    "noop": Exchange._noop,
}


def _tif(t: Any) -> str | None:
    if not isinstance(t, dict):
        return None
    limit = t.get("limit")
    if not isinstance(limit, dict):
        return None  # trigger orders are not served here
    tif = limit.get("tif")
    return tif if tif in ("Alo", "Ioc", "Gtc") else None


def _px(ticks: int | None, tick: Decimal) -> str:
    return "None" if ticks is None else wire(ticks * tick)


def _avg(order: Order) -> Decimal:
    return (order.notional / order.filled).quantize(Decimal("0.00000001"))


def _hash(n: int) -> str:
    return f"0x{n:064x}"


def _ok(kind: str, data: Any) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": data}}


def _ok_default() -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "default"}}


def _err(message: str) -> dict[str, Any]:
    return {"status": "err", "response": message}
