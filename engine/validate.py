"""The gate between venues and the core: every venue event is checked before the core sees it.

A venue connector decodes bytes into events; this gate checks what decoding cannot: types
that slipped through, NaN and infinities, negative or zero sizes and prices, timestamps far
from the venue's clock, crossed snapshots, absurd prices (far from the last good mid), and,
with `orders` set, fills against the orders we actually have working: the id must be one of
ours, the side ours, the size no more than what is left of the order, a maker fill at our
price, a hedge fill within `max_hedge_slippage_pct` of the mid it was sent at, and the fee
within a sane bound of the venue's schedule. A refused event never reaches the core or the
journal; the gate says why in one line, and the shell raises it as an alert. Nothing here
raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from engine.events import (
    BookUpdate,
    CancelRejected,
    Fill,
    FundingPayment,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    Side,
    Trade,
)

_MAX_LEVELS = 10_000
_MAX_FUNDING_RATE = 0.05  # 5% per payment: no venue pays that; it is a broken message
_MAX_TS_NS = 1 << 62  # year 2116: anything later is not a time
_MAX_SIZE_BASE = 1e9  # more than any market's whole open interest: a broken number
_NS_PER_DAY = 86_400 * 1_000_000_000


class WorkingOrderView(Protocol):
    """What the gate needs to know of one of our orders that the venue may still fill."""

    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> float: ...
    @property
    def leaves_base(self) -> float: ...
    @property
    def is_hedge(self) -> bool: ...


OrderLookup = Callable[[str], WorkingOrderView | None]


def _number(value: object) -> float | None:
    """The value as a finite float, or None (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


@dataclass(slots=True)
class MessageGuard:
    """Checks events against their types, the market and our orders; never raises."""

    max_jump_pct: float = 20.0
    last_mid: float | None = None
    reanchor_after: int = 5
    """Consistent snapshots far from `last_mid` in a row that make it the new level (a real
    gap, or a reconnect), so one bad reference never freezes the book for good."""
    orders: OrderLookup | None = None
    """Our working orders by id (the core's view). None checks fills by their shape only."""
    tick_size: float = 0.0
    lot_size: float = 0.0
    max_fee_rate: float = 0.01
    """Largest |fee| a fill may carry, as a share of its notional (the venue's top rate
    with room to spare; 1% by default, which no perp venue charges)."""
    max_hedge_slippage_pct: float = 2.0
    max_clock_skew_ns: int = _NS_PER_DAY
    """How far an event's timestamp may be from the venue's clock (`check(..., now_ns)`)."""
    _far_mid: float | None = None
    _far_count: int = 0
    _taken: dict[str, float] = field(default_factory=dict)
    """Size of each order filled by events passed since the core last caught up: the core
    books a batch after the gate has seen all of it, so two fills of one order in one batch
    must add up to no more than its leaves."""

    def check(self, event: object, now_ns: int | None = None) -> str | None:
        """None if the event may go to the core, else what is wrong with it."""
        try:
            return self._check(event, now_ns)
        except Exception as exc:  # a hostile object whose attributes raise: reject it
            return f"unreadable {type(event).__name__}: {exc!r}"

    def core_caught_up(self) -> None:
        """The core has handled every event passed so far: its orders are current again."""
        self._taken.clear()

    def _check(self, event: object, now_ns: int | None) -> str | None:
        if isinstance(event, BookUpdate):
            return self._check_ts(event.ts_ns, now_ns) or self._check_book(event)
        if isinstance(event, Trade):
            problem = self._check_price_size("trade", event.price, event.size_base)
            return (
                problem
                or self._check_ts(event.ts_ns, now_ns)
                or (None if isinstance(event.aggressor, Side) else "trade aggressor is not a side")
            )
        if isinstance(event, Fill):
            return self._check_fill(event, now_ns)
        if isinstance(event, OrderAccepted | OrderRejected | OrderCanceled | CancelRejected):
            if not isinstance(event.order_id, str) or not event.order_id:
                return f"{type(event).__name__} has no order id"
            return self._check_ts(event.ts_ns, now_ns)
        if isinstance(event, FundingPayment):
            rate = _number(event.rate)
            if rate is None or abs(rate) > _MAX_FUNDING_RATE:
                return f"funding rate {event.rate!r} is not a plausible rate"
            mark = _number(event.mark_price)
            if mark is None or mark <= 0:
                return f"funding mark {event.mark_price!r} is not a positive number"
            return self._check_ts(event.ts_ns, now_ns) or self._check_absurd("funding mark", mark)
        return f"unknown event type {type(event).__name__}"

    def _check_fill(self, fill: Fill, now_ns: int | None) -> str | None:
        order_id = fill.order_id
        if not isinstance(order_id, str) or not order_id:
            return "fill has no order id"
        problem = self._check_price_size(f"fill {order_id}", fill.price, fill.size_base)
        if problem:
            return problem
        problem = self._check_ts(fill.ts_ns, now_ns)
        if problem:
            return f"fill {order_id}: {problem}"
        if not isinstance(fill.side, Side):
            return f"fill {order_id} side {fill.side!r} is not a side"
        if not isinstance(fill.is_maker, bool):
            return f"fill {order_id} is_maker {fill.is_maker!r} is not true or false"
        price, size = float(fill.price), float(fill.size_base)
        fee = _number(fill.fee_usd)
        if fee is None:
            return f"fill {order_id} fee {fill.fee_usd!r} is not a finite number"
        notional = price * size
        if abs(fee) > notional * self.max_fee_rate + 0.01:
            return (
                f"fill {order_id} fee ${fee:g} is more than {self.max_fee_rate:.2%} of its "
                f"${notional:,.2f} notional"
            )
        leaves = _number(fill.leaves_base)
        if leaves is None or leaves < 0:
            return f"fill {order_id} leaves {fill.leaves_base!r} is not a number >= 0"
        if self.orders is None:
            return None
        order = self.orders(order_id)
        if order is None:
            return f"fill for order {order_id}, which is not one of our working orders"
        if fill.side is not order.side:
            return f"fill {order_id} is a {fill.side.name} but our order is a {order.side.name}"
        lot = self.lot_size
        half_lot = lot / 2
        if lot > 0:
            lots = size / lot
            if abs(lots - round(lots)) > 1e-6 + lots * 1e-9 or lots < 0.5:
                return f"fill {order_id} of {size:g} is not a whole number of {lot:g} lots"
        left = order.leaves_base - self._taken.get(order_id, 0.0)
        if size > left + half_lot:
            return f"fill {order_id} of {size:g} is more than the {max(left, 0.0):g} left of it"
        if abs(leaves - (left - size)) > half_lot:
            # a venue that says less is left than we hold would have the core forget a live
            # order; one that says more, book a fill that never happened
            return (
                f"fill {order_id} says {leaves:g} left, but {left:g} - {size:g} = {left - size:g}"
            )
        if order.is_hedge:
            if fill.is_maker:
                return f"fill {order_id} is a maker fill of our taker hedge"
            reference = self.last_mid if self.last_mid is not None else order.price
            for ref in {reference, order.price}:
                slip_pct = abs(price / ref - 1.0) * 100
                if slip_pct > self.max_hedge_slippage_pct:
                    return (
                        f"hedge fill {order_id} at {price:g} is {slip_pct:.2f}% from {ref:g} "
                        f"(more than {self.max_hedge_slippage_pct:g}%)"
                    )
        else:
            if not fill.is_maker:
                return f"fill {order_id} is a taker fill of our post-only quote"
            if abs(price - order.price) > self.tick_size / 2:
                return f"fill {order_id} at {price:g} is not our quote's price {order.price:g}"
        self._taken[order_id] = self._taken.get(order_id, 0.0) + size
        return None

    def _check_ts(self, ts_ns: object, now_ns: int | None = None) -> str | None:
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, int) or not 0 <= ts_ns <= _MAX_TS_NS:
            return f"timestamp {ts_ns!r} is not a whole number of ns in [0, 2**62]"
        if now_ns is not None and abs(ts_ns - now_ns) > self.max_clock_skew_ns:
            return f"timestamp {ts_ns} is more than a day from the venue's clock {now_ns}"
        return None

    def _check_price_size(self, what: str, price: object, size: object) -> str | None:
        p = _number(price)
        if p is None or p <= 0:
            return f"{what} price {price!r} is not a positive finite number"
        s = _number(size)
        if s is None or s <= 0 or s > _MAX_SIZE_BASE:
            return f"{what} size {size!r} is not a number in (0, {_MAX_SIZE_BASE:g}]"
        return self._check_absurd(f"{what} price", p)

    def _check_absurd(self, what: str, price: float) -> str | None:
        mid = self.last_mid
        if mid is not None and abs(price / mid - 1.0) * 100 > self.max_jump_pct:
            return f"{what} {price:g} is more than {self.max_jump_pct:g}% from the last mid {mid:g}"
        return None

    def _check_book(self, update: BookUpdate) -> str | None:
        best_bid = -math.inf
        best_ask = math.inf
        for side_name, levels in (("bid", update.bids), ("ask", update.asks)):
            if not isinstance(levels, tuple | list):
                return f"book {side_name}s are not a list of levels"
            if len(levels) > _MAX_LEVELS:
                return f"book has {len(levels)} {side_name} levels (more than {_MAX_LEVELS})"
            for level in levels:
                if not isinstance(level, tuple | list) or len(level) != 2:
                    return f"book {side_name} level {level!r} is not (price, size)"
                price, size = _number(level[0]), _number(level[1])
                if price is None or price <= 0:
                    return f"book {side_name} price {level[0]!r} is not a positive finite number"
                if size is None or size < 0 or size > _MAX_SIZE_BASE:
                    return f"book {side_name} size {level[1]!r} is not a number in [0, 1e9]"
                if size > 0:
                    if side_name == "bid":
                        best_bid = max(best_bid, price)
                    else:
                        best_ask = min(best_ask, price)
        if update.is_snapshot and best_bid >= best_ask:
            return f"book snapshot is crossed: bid {best_bid:g} >= ask {best_ask:g}"
        for what, price in (("best bid", best_bid), ("best ask", best_ask)):
            if math.isfinite(price):
                problem = self._check_absurd(f"book {what}", price)
                if problem:
                    if update.is_snapshot and self._reanchor(best_bid, best_ask):
                        break
                    return problem
        if update.is_snapshot and math.isfinite(best_bid) and math.isfinite(best_ask):
            self.last_mid = (best_bid + best_ask) / 2
        return None

    def _reanchor(self, best_bid: float, best_ask: float) -> bool:
        """True once `reanchor_after` far snapshots in a row agree on where the market is."""
        if not (math.isfinite(best_bid) and math.isfinite(best_ask)):
            return False
        mid = (best_bid + best_ask) / 2
        far = self._far_mid
        if far is not None and abs(mid / far - 1.0) * 100 <= self.max_jump_pct / 4:
            self._far_count += 1
        else:
            self._far_count = 1
        self._far_mid = mid
        if self._far_count < self.reanchor_after:
            return False
        self._far_count = 0
        self._far_mid = None
        return True

    def accepted_mid(self, mid: float | None) -> None:
        """Tell the gate the mid the core's book now shows (deltas move it too)."""
        if mid is not None:
            self.last_mid = mid
