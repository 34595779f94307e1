"""The gate between venues and the core: every venue event is checked before the core sees it.

A venue connector decodes bytes into events; this gate checks what decoding cannot: types
that slipped through, NaN and infinities, negative or zero sizes and prices, crossed
snapshots, fills for sizes we never asked for, and absurd prices (far from the last good
mid). A rejected event never reaches the core; the gate says why in one line, and the shell
raises it as an alert. Nothing here raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def _number(value: object) -> float | None:
    """The value as a finite float, or None (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(slots=True)
class MessageGuard:
    """Checks events against their types and the market; `max_jump_pct` bounds price moves."""

    max_jump_pct: float = 20.0
    last_mid: float | None = None
    reanchor_after: int = 5
    """Consistent snapshots far from `last_mid` in a row that make it the new level (a real
    gap, or a reconnect), so one bad reference never freezes the book for good."""
    _far_mid: float | None = None
    _far_count: int = 0

    def check(self, event: object) -> str | None:
        """None if the event may go to the core, else what is wrong with it."""
        try:
            return self._check(event)
        except Exception as exc:  # a hostile object whose attributes raise: reject it
            return f"unreadable {type(event).__name__}: {exc!r}"

    def _check(self, event: object) -> str | None:
        if isinstance(event, BookUpdate):
            return self._check_book(event)
        if isinstance(event, Trade):
            return self._check_price_size("trade", event.price, event.size_base, event.ts_ns) or (
                None if isinstance(event.aggressor, Side) else "trade aggressor is not a side"
            )
        if isinstance(event, Fill):
            problem = self._check_price_size("fill", event.price, event.size_base, event.ts_ns)
            if problem:
                return problem
            if not isinstance(event.side, Side):
                return f"fill side {event.side!r} is not a side"
            if _number(event.fee_usd) is None:
                return f"fill fee {event.fee_usd!r} is not a finite number"
            leaves = _number(event.leaves_base)
            if leaves is None or leaves < 0:
                return f"fill leaves {event.leaves_base!r} is not a number >= 0"
            if not isinstance(event.order_id, str) or not event.order_id:
                return "fill has no order id"
            return None
        if isinstance(event, OrderAccepted | OrderRejected | OrderCanceled | CancelRejected):
            if not isinstance(event.order_id, str) or not event.order_id:
                return f"{type(event).__name__} has no order id"
            return self._check_ts(event.ts_ns)
        if isinstance(event, FundingPayment):
            rate = _number(event.rate)
            if rate is None or abs(rate) > _MAX_FUNDING_RATE:
                return f"funding rate {event.rate!r} is not a plausible rate"
            mark = _number(event.mark_price)
            if mark is None or mark <= 0:
                return f"funding mark {event.mark_price!r} is not a positive number"
            return self._check_absurd("funding mark", mark)
        return f"unknown event type {type(event).__name__}"

    def _check_ts(self, ts_ns: object) -> str | None:
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, int) or ts_ns < 0:
            return f"timestamp {ts_ns!r} is not a whole number of ns >= 0"
        return None

    def _check_price_size(self, what: str, price: object, size: object, ts: object) -> str | None:
        p = _number(price)
        if p is None or p <= 0:
            return f"{what} price {price!r} is not a positive finite number"
        s = _number(size)
        if s is None or s <= 0:
            return f"{what} size {size!r} is not a positive finite number"
        return self._check_ts(ts) or self._check_absurd(f"{what} price", p)

    def _check_absurd(self, what: str, price: float) -> str | None:
        mid = self.last_mid
        if mid is not None and abs(price / mid - 1.0) * 100 > self.max_jump_pct:
            return f"{what} {price:g} is more than {self.max_jump_pct:g}% from the last mid {mid:g}"
        return None

    def _check_book(self, update: BookUpdate) -> str | None:
        problem = self._check_ts(update.ts_ns)
        if problem:
            return problem
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
                if size is None or size < 0:
                    return f"book {side_name} size {level[1]!r} is not a finite number >= 0"
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
