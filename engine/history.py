"""The session's history for charts: net P&L, inventory and the spread terms, bounded by merging.

The live shell records one sample a second of sim time. Samples fall into time buckets of
`bucket_s` seconds, counted from the session's start; when there are more than `capacity`
buckets, neighbours are merged pairwise and the width doubles, so however long the session,
it keeps between `capacity / 2` and `capacity` buckets (1,024 by default: 128 s buckets after
24 h; never fewer than 512, two and a half per column of a 200-column chart). A bucket keeps
what a chart needs without lying: the last value and the min and max for net P&L and
inventory (a spike is never averaged away) and the mean of each spread term (a level).

Buckets are frozen: recording a sample replaces the last one, so a `HistoryView` (what the
console reads) is a cheap tuple copy that nothing changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.spread import SpreadBreakdown

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SpreadMeans:
    """The mean of each spread term over a bucket's samples that had a spread, in bps of mid."""

    samples: int
    base_bps: float
    vol_premium_bps: float
    inventory_premium_bps: float
    manual_widen_bps: float
    other_widen_bps: float
    """Adverse-selection and circuit-breaker widening."""
    total_bps: float
    """The quoted spread (capped), so not always the sum of the terms."""

    @classmethod
    def of(cls, spread: SpreadBreakdown) -> SpreadMeans:
        return cls(
            samples=1,
            base_bps=spread.base_bps,
            vol_premium_bps=spread.vol_premium_bps,
            inventory_premium_bps=spread.inventory_premium_bps,
            manual_widen_bps=spread.manual_widen_bps,
            other_widen_bps=spread.adverse_widen_bps + spread.breaker_widen_bps,
            total_bps=spread.total_bps,
        )

    def merged(self, later: SpreadMeans) -> SpreadMeans:
        n_a, n_b = self.samples, later.samples
        n = n_a + n_b

        def mean(a: float, b: float) -> float:
            return (a * n_a + b * n_b) / n

        return SpreadMeans(
            samples=n,
            base_bps=mean(self.base_bps, later.base_bps),
            vol_premium_bps=mean(self.vol_premium_bps, later.vol_premium_bps),
            inventory_premium_bps=mean(self.inventory_premium_bps, later.inventory_premium_bps),
            manual_widen_bps=mean(self.manual_widen_bps, later.manual_widen_bps),
            other_widen_bps=mean(self.other_widen_bps, later.other_widen_bps),
            total_bps=mean(self.total_bps, later.total_bps),
        )


def _merged_spread(a: SpreadMeans | None, b: SpreadMeans | None) -> SpreadMeans | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.merged(b)


@dataclass(frozen=True, slots=True)
class HistoryBucket:
    """The samples of `bucket_s` seconds of the session from `start_s` (session seconds)."""

    start_s: float
    samples: int
    net_pnl_usd: float
    """The last sample's net P&L."""
    net_pnl_min_usd: float
    net_pnl_max_usd: float
    inventory_usd: float
    """The last sample's signed inventory."""
    inventory_min_usd: float
    inventory_max_usd: float
    spread: SpreadMeans | None
    """None when no sample in the bucket had a spread (no two-sided book)."""

    def merged(self, later: HistoryBucket) -> HistoryBucket:
        """This bucket and the one after it as one bucket (starting where this one does)."""
        return HistoryBucket(
            start_s=self.start_s,
            samples=self.samples + later.samples,
            net_pnl_usd=later.net_pnl_usd,
            net_pnl_min_usd=min(self.net_pnl_min_usd, later.net_pnl_min_usd),
            net_pnl_max_usd=max(self.net_pnl_max_usd, later.net_pnl_max_usd),
            inventory_usd=later.inventory_usd,
            inventory_min_usd=min(self.inventory_min_usd, later.inventory_min_usd),
            inventory_max_usd=max(self.inventory_max_usd, later.inventory_max_usd),
            spread=_merged_spread(self.spread, later.spread),
        )


@dataclass(frozen=True, slots=True)
class HistoryView:
    """What the console reads: the buckets as they were at `version`; never changes."""

    buckets: tuple[HistoryBucket, ...]
    """Oldest first; a time with no sample (a stall) has no bucket."""
    bucket_s: float
    """The width of every bucket, in session seconds."""
    span_s: float
    """Session time covered: from the session's start to the last sample."""
    version: int
    """Samples recorded so far; it changes exactly when the history does."""

    @property
    def empty(self) -> bool:
        return not self.buckets


class SessionHistory:
    """A bounded, downsampled store of the session's samples; time is passed in, never read."""

    def __init__(self, start_ns: int, *, bucket_s: float = 1.0, capacity: int = 1_024) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError(f"history capacity must be an even number >= 2, not {capacity}")
        self.start_ns = start_ns
        """Sim time of the session's start: session second 0."""
        self.capacity = capacity
        self._bucket_ns = round(bucket_s * _NS_PER_S)
        self._buckets: list[HistoryBucket] = []
        self._indices: list[int] = []
        """Each bucket's start in bucket widths (kept exact: `start_s` is for readers)."""
        self._span_ns = 0
        self.version = 0
        """Samples recorded so far: a reader copies only when it changed."""
        self._view = HistoryView(buckets=(), bucket_s=self.bucket_s, span_s=0.0, version=0)

    @property
    def bucket_s(self) -> float:
        return self._bucket_ns / _NS_PER_S

    @property
    def span_s(self) -> float:
        return self._span_ns / _NS_PER_S

    @property
    def buckets(self) -> tuple[HistoryBucket, ...]:
        return self.view().buckets

    def record(
        self,
        ts_ns: int,
        net_pnl_usd: float,
        inventory_usd: float,
        spread: SpreadBreakdown | None,
    ) -> None:
        """One sample at sim time `ts_ns` (not before the previous one)."""
        offset_ns = max(ts_ns - self.start_ns, self._span_ns)
        index = offset_ns // self._bucket_ns
        buckets, indices = self._buckets, self._indices
        sample = HistoryBucket(
            index * self._bucket_ns / _NS_PER_S,
            1,
            net_pnl_usd,
            net_pnl_usd,
            net_pnl_usd,
            inventory_usd,
            inventory_usd,
            inventory_usd,
            None if spread is None else SpreadMeans.of(spread),
        )
        if indices and indices[-1] == index:  # into the open bucket
            buckets[-1] = buckets[-1].merged(sample)
        else:
            buckets.append(sample)
            indices.append(index)
            while len(self._buckets) > self.capacity:  # samples far apart: maybe more than once
                self._halve()
        self._span_ns = offset_ns
        self.version += 1

    def _halve(self) -> None:
        """Merge neighbours pairwise (by time, so a gap never joins unrelated buckets) and
        double the width."""
        width_ns = self._bucket_ns * 2
        buckets: list[HistoryBucket] = []
        indices: list[int] = []
        for bucket, old_index in zip(self._buckets, self._indices, strict=True):
            index = old_index // 2
            if indices and indices[-1] == index:
                buckets[-1] = buckets[-1].merged(bucket)
            else:
                buckets.append(replace(bucket, start_s=index * width_ns / _NS_PER_S))
                indices.append(index)
        self._buckets, self._indices = buckets, indices
        self._bucket_ns = width_ns

    def view(self) -> HistoryView:
        """The history as it is now; the same object until the next sample."""
        if self._view.version != self.version:
            self._view = HistoryView(
                buckets=tuple(self._buckets),
                bucket_s=self.bucket_s,
                span_s=self.span_s,
                version=self.version,
            )
        return self._view
