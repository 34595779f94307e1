"""The L2 order book: price levels in integer ticks, validated updates, never crossed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from heapq import heapify, heappop, heappush, nlargest, nsmallest

from engine.events import BookUpdate, Level, Side
from engine.grid import decimals_of

_INF = math.inf


class BookError(ValueError):
    """A book update was rejected; the book is exactly as it was before the update."""


def _as_sequence(levels: Iterable[Level]) -> Sequence[Level]:
    # Validation and mutation are two passes, so a one-shot iterator must be materialised;
    # the venues hand us tuples or lists, which pass straight through.
    if isinstance(levels, (tuple, list)):
        return levels
    return tuple(levels)


class Book:
    """An L2 book on a tick grid. Best bid < best ask after every accepted update.

    Each side is a dict from price in ticks to size in base units, plus a heap of its ticks
    (bids negated) from which the best level is read. Removing a level only deletes it from
    the dict; a stale heap entry is dropped when it reaches the top (lazy deletion), and the
    heap is rebuilt when stale entries outnumber live ones. So a level update is a dict store
    and at most one C-level heap push, and the best read is amortised O(1): about three
    times the update rate of a sorted list on the Binance tape, whose ~5,000 levels a side
    change mostly far from the touch. Floats appear only at the edge, through `to_price`.
    """

    __slots__ = (
        "_ask_heap",
        "_ask_sizes",
        "_bid_heap",
        "_bid_sizes",
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
        self._decimals = decimals_of(tick_size)
        # A price that rounds to zero ticks is not a price on this grid.
        self._min_price = tick_size / 2.0
        self._bid_sizes: dict[int, float] = {}
        self._bid_heap: list[int] = []  # negated ticks: the best bid is -heap[0]
        self._ask_sizes: dict[int, float] = {}
        self._ask_heap: list[int] = []  # the best ask is heap[0]

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
        self._bid_heap = [-t for t in new_bids]
        heapify(self._bid_heap)
        self._ask_sizes = new_asks
        self._ask_heap = list(new_asks)
        heapify(self._ask_heap)

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
        bid_heap = self._bid_heap
        ask_sizes = self._ask_sizes

        if bids:
            best_ask = self.best_ask_ticks
            for price, size in bids:
                ticks = round(price / tick_size)
                if size > 0.0:
                    if ticks not in bid_sizes:
                        heappush(bid_heap, -ticks)
                    bid_sizes[ticks] = size
                    if best_ask is not None and ticks >= best_ask:
                        while best_ask is not None and best_ask <= ticks:
                            del ask_sizes[best_ask]
                            best_ask = self.best_ask_ticks
                else:
                    bid_sizes.pop(ticks, None)
            if len(bid_heap) > 2 * len(bid_sizes) + 64:
                self._bid_heap = bid_heap = [-t for t in bid_sizes]
                heapify(bid_heap)

        if asks:
            ask_heap = self._ask_heap
            best_bid = self.best_bid_ticks
            for price, size in asks:
                ticks = round(price / tick_size)
                if size > 0.0:
                    if ticks not in ask_sizes:
                        heappush(ask_heap, ticks)
                    ask_sizes[ticks] = size
                    if best_bid is not None and ticks <= best_bid:
                        while best_bid is not None and best_bid >= ticks:
                            del bid_sizes[best_bid]
                            best_bid = self.best_bid_ticks
                else:
                    ask_sizes.pop(ticks, None)
            if len(ask_heap) > 2 * len(ask_sizes) + 64:
                self._ask_heap = ask_heap = list(ask_sizes)
                heapify(ask_heap)

    def clear(self) -> None:
        self._bid_sizes.clear()
        self._bid_heap.clear()
        self._ask_sizes.clear()
        self._ask_heap.clear()
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
        heap = self._bid_heap
        sizes = self._bid_sizes
        while heap:
            ticks = -heap[0]
            if ticks in sizes:
                return ticks
            heappop(heap)  # a removed level, or a duplicate of one
        return None

    @property
    def best_ask_ticks(self) -> int | None:
        heap = self._ask_heap
        sizes = self._ask_sizes
        while heap:
            ticks = heap[0]
            if ticks in sizes:
                return ticks
            heappop(heap)
        return None

    @property
    def best_bid(self) -> float | None:
        ticks = self.best_bid_ticks
        return None if ticks is None else self.to_price(ticks)

    @property
    def best_ask(self) -> float | None:
        ticks = self.best_ask_ticks
        return None if ticks is None else self.to_price(ticks)

    @property
    def best_bid_size(self) -> float | None:
        ticks = self.best_bid_ticks
        return None if ticks is None else self._bid_sizes[ticks]

    @property
    def best_ask_size(self) -> float | None:
        ticks = self.best_ask_ticks
        return None if ticks is None else self._ask_sizes[ticks]

    @property
    def mid(self) -> float | None:
        bid = self.best_bid_ticks
        ask = self.best_ask_ticks
        if bid is None or ask is None:
            return None
        # A mid can sit on a half tick, so it gets one more decimal than a price.
        return round((bid + ask) * self.tick_size / 2.0, self._decimals + 1)

    @property
    def spread_bps(self) -> float | None:
        bid = self.best_bid_ticks
        ask = self.best_ask_ticks
        if bid is None or ask is None:
            return None
        # (ask - bid) / mid * 1e4 with the tick size cancelled out: exact inputs, one rounding.
        return (ask - bid) * 2e4 / (ask + bid)

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
        top_bids = tuple((to_price(t), bid_sizes[t]) for t in nlargest(n, bid_sizes))
        top_asks = tuple((to_price(t), ask_sizes[t]) for t in nsmallest(n, ask_sizes))
        return top_bids, top_asks

    def depth(self) -> tuple[int, int]:
        return len(self._bid_sizes), len(self._ask_sizes)
