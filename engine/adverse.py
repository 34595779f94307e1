"""Adverse-selection monitor: the share of our quotes that get filled, and post-fill markouts."""

from __future__ import annotations

from collections import deque

from engine.events import Side

_NS_PER_S = 1_000_000_000
MARKOUT_HORIZONS_S: tuple[int, ...] = (1, 5, 30)


class FillRateMonitor:
    """Fill rate over the last N finished quotes: a quote counts as filled if any of it traded.

    The guide's warning sign is "90%+ of your quotes filling": genuine two-sided flow fills a
    minority of quotes; a quote that almost always fills is being picked off.
    """

    __slots__ = ("_filled", "_outcomes", "min_quotes", "total_filled", "total_quotes")

    def __init__(self, window_quotes: int, min_quotes: int) -> None:
        self._outcomes: deque[bool] = deque(maxlen=window_quotes)
        self._filled = 0
        self.min_quotes = min_quotes
        self.total_quotes = 0
        self.total_filled = 0

    def on_quote_done(self, filled: bool) -> None:
        outcomes = self._outcomes
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            self._filled -= 1
        outcomes.append(filled)
        self.total_quotes += 1
        if filled:
            self._filled += 1
            self.total_filled += 1

    @property
    def quotes(self) -> int:
        return len(self._outcomes)

    @property
    def lifetime_fill_rate(self) -> float | None:
        """Filled share of every quote that has finished since the start."""
        return self.total_filled / self.total_quotes if self.total_quotes else None

    @property
    def fill_rate(self) -> float | None:
        """Filled share of the window; None until `min_quotes` quotes have finished."""
        n = len(self._outcomes)
        return self._filled / n if n >= self.min_quotes else None


class Markouts:
    """Average markout of our fills after 1 s, 5 s and 30 s, in bps, two ways.

    Against the fill price, `side * (mid later - fill price) / fill price`: what the fill was
    worth, the half-spread we earned included. Against the mid at the fill, `side * (mid later
    - mid then) / mid then`: where the market went after we traded, the spread left out, so
    negative means it moved against us (adverse selection) however wide we quoted.
    """

    __slots__ = ("_count", "_pending", "_sum_bps", "_sum_vs_mid_bps", "horizons_s")

    def __init__(self, horizons_s: tuple[int, ...] = MARKOUT_HORIZONS_S) -> None:
        self.horizons_s = horizons_s
        self._pending: list[deque[tuple[int, int, float, float]]] = [deque() for _ in horizons_s]
        self._sum_bps = [0.0] * len(horizons_s)
        self._sum_vs_mid_bps = [0.0] * len(horizons_s)
        self._count = [0] * len(horizons_s)

    def on_fill(self, ts_ns: int, side: Side, price: float, mid: float | None = None) -> None:
        """A fill at `price` when the mid was `mid` (the fill price if there was none)."""
        then = price if mid is None else mid
        for i, horizon_s in enumerate(self.horizons_s):
            self._pending[i].append((ts_ns + horizon_s * _NS_PER_S, int(side), price, then))

    def on_mid(self, mid: float, ts_ns: int) -> None:
        """Score every fill whose horizon has passed against this mid (cheap when none is due)."""
        for i, pending in enumerate(self._pending):
            while pending and pending[0][0] <= ts_ns:
                _, sign, price, then = pending.popleft()
                self._sum_bps[i] += sign * (mid - price) / price * 1e4
                self._sum_vs_mid_bps[i] += sign * (mid - then) / then * 1e4
                self._count[i] += 1

    def mean_bps(self) -> dict[str, float | None]:
        """Keyed '1s', '5s', '30s'; None for a horizon with no scored fill yet."""
        return self._means(self._sum_bps)

    def mean_vs_mid_bps(self) -> dict[str, float | None]:
        """Against the mid at the fill: keyed '1s', '5s', '30s'; None where none is scored."""
        return self._means(self._sum_vs_mid_bps)

    def _means(self, sums: list[float]) -> dict[str, float | None]:
        return {
            f"{h}s": (sums[i] / self._count[i] if self._count[i] else None)
            for i, h in enumerate(self.horizons_s)
        }
