"""The crowd's resting liquidity: a background book around the fair price, redrawn every interval.

Shape, per side, best first (the defaults in brackets):

- the touch sits on the tick just outside the fair price, plus 0..`touch_extra_ticks_max`
  extra ticks [spread 1-4 ticks, ~2 on average: $0.20 at $100k];
- `dense_levels` levels on consecutive ticks from the touch [5];
- then levels on an absolute lattice every `level_spacing_ticks` [30 ticks = $3 = 0.3 bps],
  so a deep level keeps its price (and our queue position behind it) while the mid wanders;
- level k's mean size is `touch_size_base * (1 + depth_growth_per_level * k) * depth_mult`,
  drawn uniformly within +-`book_size_jitter` of it [0.05 BTC at the touch, 0.34 BTC at level
  19; ~$184k within 2.5 bps of the fair price and ~$384k over 20 levels (4.4 bps) a side];
- each interval only a `book_resize_share` of the levels get new sizes [4 of 20]; a regime
  change redraws them all at its depth.

Sizes are int lots, prices int ticks. Takers and hedges eat levels in place (`bid_lots`,
`ask_lots`); what they eat stays gone until the next refresh redraws the book.
"""

from __future__ import annotations

import math
import random

from engine.grid import decimals_of
from engine.sim.params import SimParams

_JITTER_BITS = 6
_JITTER_STEPS = 1 << _JITTER_BITS


class BackgroundBook:
    """Background bid and ask levels as parallel lists of int ticks and int lots, best first."""

    __slots__ = (
        "_active",
        "_ask_shape",
        "_ask_shape_base",
        "_bid_shape",
        "_bid_shape_base",
        "_dense",
        "_depth_mult",
        "_extra_max",
        "_levels",
        "_lot_size",
        "_params",
        "_resized_per_refresh",
        "_rng",
        "_spacing",
        "_tables",
        "_tick_size",
        "ask_lots",
        "ask_sizes_base",
        "ask_ticks",
        "bid_lots",
        "bid_sizes_base",
        "bid_ticks",
        "top_ask_ticks",
        "top_bid_ticks",
    )

    def __init__(self, params: SimParams, rng: random.Random) -> None:
        self._params = params
        self._rng = rng
        self._tick_size = params.tick_size
        self._lot_size = params.lot_size
        self._levels = params.book_levels
        self._dense = min(params.dense_levels, params.book_levels)
        self._spacing = params.level_spacing_ticks
        self._extra_max = params.touch_extra_ticks_max
        self._resized_per_refresh = round(params.book_resize_share * params.book_levels)
        self._tables: dict[float, list[tuple[list[int], list[float]]]] = {}
        self._active: list[tuple[list[int], list[float]]] = []
        self._depth_mult = math.nan
        self._bid_shape: list[int] = []
        self._ask_shape: list[int] = []
        self._bid_shape_base: list[float] = []
        self._ask_shape_base: list[float] = []
        self.bid_sizes_base: list[float] = []
        self.ask_sizes_base: list[float] = []
        self.bid_ticks: list[int] = []
        self.bid_lots: list[int] = []
        self.ask_ticks: list[int] = []
        self.ask_lots: list[int] = []
        self.top_bid_ticks = 0
        self.top_ask_ticks = 0

    def refresh(self, fair_usd: float, depth_mult: float) -> None:
        """Redraw both sides around `fair_usd`; never crossed (bid < fair < ask, on ticks)."""
        rng = self._rng
        fair_ticks = fair_usd / self._tick_size
        top_bid = math.ceil(fair_ticks) - 1
        top_ask = math.floor(fair_ticks) + 1
        extra = self._extra_max
        if extra:
            top_bid -= int(rng.random() * (extra + 1))
            top_ask += int(rng.random() * (extra + 1))
        dense, spacing, levels = self._dense, self._spacing, self._levels
        deep = levels - dense
        self.top_bid_ticks = top_bid
        self.top_ask_ticks = top_ask
        bid_ticks = list(range(top_bid, top_bid - dense, -1))
        ask_ticks = list(range(top_ask, top_ask + dense))
        if deep > 0:
            # the deep lattice starts strictly beyond the last dense level
            first_deep_bid = (top_bid - dense) // spacing * spacing
            first_deep_ask = -(-(top_ask + dense) // spacing) * spacing
            bid_ticks += range(first_deep_bid, first_deep_bid - spacing * deep, -spacing)
            ask_ticks += range(first_deep_ask, first_deep_ask + spacing * deep, spacing)
        self.bid_ticks = bid_ticks
        self.ask_ticks = ask_ticks
        if depth_mult != self._depth_mult:
            self._redraw_all(depth_mult)
        else:
            self._redraw_some(self._bid_shape, self._bid_shape_base)
            self._redraw_some(self._ask_shape, self._ask_shape_base)
        self.bid_lots = self._bid_shape.copy()
        self.ask_lots = self._ask_shape.copy()
        self.bid_sizes_base = self._bid_shape_base
        self.ask_sizes_base = self._ask_shape_base

    def _redraw_all(self, depth_mult: float) -> None:
        """A new regime: every level gets a fresh size at the new depth."""
        self._depth_mult = depth_mult
        tables = self._tables.get(depth_mult) or self._build_tables(depth_mult)
        self._active = tables
        draw = self._rng.getrandbits
        for shape, shape_base in (
            (self._bid_shape, self._bid_shape_base),
            (self._ask_shape, self._ask_shape_base),
        ):
            shape.clear()
            shape_base.clear()
            for lots_row, base_row in tables:
                index = draw(_JITTER_BITS)
                shape.append(lots_row[index])
                shape_base.append(base_row[index])

    def _redraw_some(self, shape: list[int], shape_base: list[float]) -> None:
        """Between redraws most of the book stays put: a few levels change size each interval."""
        rng = self._rng
        tables = self._active
        levels = self._levels
        for _ in range(self._resized_per_refresh):
            level = int(rng.random() * levels)
            lots_row, base_row = tables[level]
            index = rng.getrandbits(_JITTER_BITS)
            shape[level] = lots_row[index]
            shape_base[level] = base_row[index]

    def lots_at(self, is_bid: bool, ticks: int) -> int:
        """Background size (lots) resting at `ticks` on one side; 0 where there is no level."""
        index, exact = self.position(is_bid, ticks)
        if not exact:
            return 0
        return self.bid_lots[index] if is_bid else self.ask_lots[index]

    def best_bid_ticks(self) -> int | None:
        for ticks, lots in zip(self.bid_ticks, self.bid_lots, strict=True):
            if lots:
                return ticks
        return None

    def best_ask_ticks(self) -> int | None:
        for ticks, lots in zip(self.ask_ticks, self.ask_lots, strict=True):
            if lots:
                return ticks
        return None

    def position(self, is_bid: bool, ticks: int) -> tuple[int, bool]:
        """Where `ticks` sits in one side's level list, from the book's known shape (O(1)):
        (index of the level there or of the first worse level, whether a level is there)."""
        dense, spacing = self._dense, self._spacing
        depth = self.top_bid_ticks - ticks if is_bid else ticks - self.top_ask_ticks
        if depth < 0:
            return 0, False
        if depth < dense:
            return depth, True
        level_ticks = self.bid_ticks if is_bid else self.ask_ticks
        n = len(level_ticks)
        if n <= dense:
            return n, False
        beyond = level_ticks[dense] - ticks if is_bid else ticks - level_ticks[dense]
        if beyond < 0:
            return dense, False
        index = dense + beyond // spacing
        if beyond % spacing:
            return min(index + 1, n), False
        return (index, True) if index < n else (n, False)

    def _build_tables(self, depth_mult: float) -> list[tuple[list[int], list[float]]]:
        """Per level, `_JITTER_STEPS` equally likely sizes (quantiles of the uniform), in lots
        and as the float the venue prints."""
        p = self._params
        lot_size = self._lot_size
        decimals = decimals_of(lot_size)
        tables: list[tuple[list[int], list[float]]] = []
        for level in range(self._levels):
            mean_base = p.touch_size_base * (1.0 + p.depth_growth_per_level * level) * depth_mult
            lots_row: list[int] = []
            for step in range(_JITTER_STEPS):
                u = (step + 0.5) / _JITTER_STEPS * 2.0 - 1.0
                size_base = mean_base * (1.0 + p.book_size_jitter * u)
                lots_row.append(max(1, round(size_base / lot_size)))
            tables.append((lots_row, [round(n * lot_size, decimals) for n in lots_row]))
        self._tables[depth_mult] = tables
        return tables
