"""The L2 order book: price levels in integer ticks, validated updates, never crossed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal

from sortedcontainers import SortedList

from engine.events import BookUpdate, Level, Side

_INF = math.inf


class BookError(ValueError):
    """A book update was rejected; the book is exactly as it was before the update."""


def _as_sequence(levels: Iterable[Level]) -> Sequence[Level]:
    # Validation and mutation are two passes, so a one-shot iterator must be materialised;
    # the venues hand us tuples or lists, which pass straight through.
    if isinstance(levels, (tuple, list)):
        return levels
    return tuple(levels)


def _tick_decimals(tick_size: float) -> int:
    """Decimals a price on this tick grid needs: 0.1 -> 1, 0.25 -> 2, 1e-05 -> 5, 1.0 -> 0."""
    exponent = Decimal(repr(tick_size)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite tick_size, checked by the caller
    return max(0, -exponent)


class Book:
    """An L2 book on a tick grid. Best bid < best ask after every accepted update.

    Each side is a dict from price in ticks to size in base units plus a SortedList of its
    ticks, so the best level is an index read and no update ever rescans a side (Binance books
    run ~5,000 levels a side). That pair is what a SortedDict is inside; holding it directly
    lets a size change on an existing level be a plain dict store, ~30% faster per level update
    on the Binance tape than going through SortedDict's Python-level __setitem__ and pop.
    Floats appear only at the edge, through `to_price`.
    """

    __slots__ = (
        "_ask_sizes",
        "_ask_ticks",
        "_bid_sizes",
        "_bid_ticks",
        "_decimals",
        "_min_price",
        "tick_size",
        "ts_ns",
    )

    def __init__(self, tick_size: float) -> None:
        if not (math.isfinite(tick_size) and tick_size > 0.0):
            raise BookError(f"tick_size {tick_size!r} is not a finite positive number")
        self.tick_size: float = tick_size
        self.ts_ns: int = 0
        self._decimals = _tick_decimals(tick_size)
        # A price that rounds to zero ticks is not a price on this grid.
        self._min_price = tick_size / 2.0
        self._bid_sizes: dict[int, float] = {}
        self._bid_ticks: SortedList = SortedList()  # ascending: the best bid is the last
        self._ask_sizes: dict[int, float] = {}
        self._ask_ticks: SortedList = SortedList()  # ascending: the best ask is the first

    # ---- the tick grid ---------------------------------------------------------------------

    def to_ticks(self, price: float) -> int:
        return round(price / self.tick_size)

    def to_price(self, ticks: int) -> float:
        # round() to the grid's decimals returns the float nearest the decimal price, so
        # 999957 ticks of 0.1 is 99995.7 and not 99995.70000000001.
        return round(ticks * self.tick_size, self._decimals)

    # ---- updates ---------------------------------------------------------------------------

    def apply(self, update: BookUpdate) -> None:
        if update.is_snapshot:
            self.apply_snapshot(update.bids, update.asks)
        else:
            self.apply_delta(update.bids, update.asks)
        self.ts_ns = update.ts_ns

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book. Levels of size 0 are skipped; a crossed snapshot is rejected."""
        new_bids = self._validated_levels("bid", bids)
        new_asks = self._validated_levels("ask", asks)
        if new_bids and new_asks:
            best_bid_ticks = max(new_bids)
            best_ask_ticks = min(new_asks)
            if best_bid_ticks >= best_ask_ticks:
                raise BookError(
                    f"snapshot is crossed: best bid {self.to_price(best_bid_ticks)} >= "
                    f"best ask {self.to_price(best_ask_ticks)}"
                )
        self._bid_sizes = new_bids
        self._bid_ticks = SortedList(new_bids)
        self._ask_sizes = new_asks
        self._ask_ticks = SortedList(new_asks)

    def apply_delta(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Set levels (size 0 removes). A level that crosses the other side removes what it crosses.

        The newest information wins: a bid at or above the best ask means those asks are gone
        (we missed their removal), and likewise for an ask at or below the best bid. A delta
        whose own non-zero bids and asks cross each other is contradictory and is rejected.
        """
        bids = _as_sequence(bids)
        asks = _as_sequence(asks)
        min_price = self._min_price

        # Pass 1: validate everything before touching the book.
        top_new_bid = 0.0
        for price, size in bids:
            if not (min_price < price < _INF and 0.0 <= size < _INF):
                raise self._invalid_level("bid", price, size)
            if size > 0.0 and price > top_new_bid:
                top_new_bid = price
        low_new_ask = _INF
        for price, size in asks:
            if not (min_price < price < _INF and 0.0 <= size < _INF):
                raise self._invalid_level("ask", price, size)
            if size > 0.0 and price < low_new_ask:
                low_new_ask = price
        if (
            top_new_bid > 0.0
            and low_new_ask < _INF
            and self.to_ticks(top_new_bid) >= self.to_ticks(low_new_ask)
        ):
            raise BookError(
                f"delta crosses itself: bid {top_new_bid} >= ask {low_new_ask} in one update"
            )

        # Pass 2: mutate. Locals keep attribute lookups out of the per-level loop.
        tick_size = self.tick_size
        bid_sizes = self._bid_sizes
        bid_ticks = self._bid_ticks
        ask_sizes = self._ask_sizes
        ask_ticks = self._ask_ticks

        best_ask = ask_ticks[0] if ask_sizes else None
        for price, size in bids:
            ticks = round(price / tick_size)
            if size > 0.0:
                if ticks not in bid_sizes:
                    bid_ticks.add(ticks)
                bid_sizes[ticks] = size
                if best_ask is not None and ticks >= best_ask:
                    while ask_sizes and ask_ticks[0] <= ticks:
                        del ask_sizes[ask_ticks.pop(0)]
                    best_ask = ask_ticks[0] if ask_sizes else None
            elif ticks in bid_sizes:
                del bid_sizes[ticks]
                bid_ticks.remove(ticks)

        best_bid = bid_ticks[-1] if bid_sizes else None
        for price, size in asks:
            ticks = round(price / tick_size)
            if size > 0.0:
                if ticks not in ask_sizes:
                    ask_ticks.add(ticks)
                ask_sizes[ticks] = size
                if best_bid is not None and ticks <= best_bid:
                    while bid_sizes and bid_ticks[-1] >= ticks:
                        del bid_sizes[bid_ticks.pop()]
                    best_bid = bid_ticks[-1] if bid_sizes else None
            elif ticks in ask_sizes:
                del ask_sizes[ticks]
                ask_ticks.remove(ticks)

    def clear(self) -> None:
        self._bid_sizes.clear()
        self._bid_ticks.clear()
        self._ask_sizes.clear()
        self._ask_ticks.clear()
        self.ts_ns = 0

    def _validated_levels(self, side_name: str, levels: Iterable[Level]) -> dict[int, float]:
        min_price = self._min_price
        tick_size = self.tick_size
        out: dict[int, float] = {}
        for price, size in levels:
            if not (min_price < price < _INF and 0.0 <= size < _INF):
                raise self._invalid_level(side_name, price, size)
            if size > 0.0:
                out[round(price / tick_size)] = size
        return out

    def _invalid_level(self, side_name: str, price: float, size: float) -> BookError:
        """Say which field of which side was wrong; only called once a level failed the check."""
        if not (math.isfinite(price) and price > 0.0):
            return BookError(f"{side_name} level price {price!r} is not a finite positive number")
        if not price > self._min_price:
            return BookError(
                f"{side_name} level price {price!r} rounds to zero ticks of {self.tick_size!r}"
            )
        return BookError(
            f"{side_name} level size {size!r} at price {price!r} is not a finite number >= 0"
        )

    # ---- reads -----------------------------------------------------------------------------

    @property
    def best_bid_ticks(self) -> int | None:
        return self._bid_ticks[-1] if self._bid_sizes else None

    @property
    def best_ask_ticks(self) -> int | None:
        return self._ask_ticks[0] if self._ask_sizes else None

    @property
    def best_bid(self) -> float | None:
        return self.to_price(self._bid_ticks[-1]) if self._bid_sizes else None

    @property
    def best_ask(self) -> float | None:
        return self.to_price(self._ask_ticks[0]) if self._ask_sizes else None

    @property
    def best_bid_size(self) -> float | None:
        return self._bid_sizes[self._bid_ticks[-1]] if self._bid_sizes else None

    @property
    def best_ask_size(self) -> float | None:
        return self._ask_sizes[self._ask_ticks[0]] if self._ask_sizes else None

    @property
    def mid(self) -> float | None:
        if not (self._bid_sizes and self._ask_sizes):
            return None
        ticks_x2 = self._bid_ticks[-1] + self._ask_ticks[0]
        # A mid can sit on a half tick, so it gets one more decimal than a price.
        return round(ticks_x2 * self.tick_size / 2.0, self._decimals + 1)

    @property
    def spread_bps(self) -> float | None:
        if not (self._bid_sizes and self._ask_sizes):
            return None
        bid_ticks: int = self._bid_ticks[-1]
        ask_ticks: int = self._ask_ticks[0]
        # (ask - bid) / mid * 1e4 with the tick size cancelled out: exact inputs, one rounding.
        return (ask_ticks - bid_ticks) * 2e4 / (ask_ticks + bid_ticks)

    def size_at(self, side: Side, price_ticks: int) -> float:
        sizes = self._bid_sizes if side is Side.BUY else self._ask_sizes
        return sizes.get(price_ticks, 0.0)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The best n levels a side as (price, size): bids descending, asks ascending."""
        if n <= 0:
            return (), ()
        to_price = self.to_price
        bid_sizes = self._bid_sizes
        ask_sizes = self._ask_sizes
        best_bid_ticks = self._bid_ticks[-n:]
        best_bid_ticks.reverse()
        top_bids = tuple((to_price(t), bid_sizes[t]) for t in best_bid_ticks)
        top_asks = tuple((to_price(t), ask_sizes[t]) for t in self._ask_ticks[:n])
        return top_bids, top_asks

    def depth(self) -> tuple[int, int]:
        return len(self._bid_sizes), len(self._ask_sizes)
