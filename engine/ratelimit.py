"""The API call budget: calls counted in a sliding window, a warning level, and a hard limit."""

from __future__ import annotations

from collections import deque

_NS_PER_S = 1_000_000_000


class RateBudget:
    """Counts venue calls in a sliding window of `window_s` seconds; time is passed in."""

    __slots__ = ("_calls", "_window_ns", "limit", "warn_pct")

    def __init__(self, limit: int, window_s: float, warn_pct: float = 80.0) -> None:
        if limit <= 0 or window_s <= 0:
            raise ValueError(
                f"rate budget needs limit > 0 and window_s > 0, got {limit}, {window_s}"
            )
        self.limit = limit
        self.warn_pct = warn_pct
        self._window_ns = int(window_s * _NS_PER_S)
        self._calls: deque[int] = deque()

    def _expire(self, now_ns: int) -> None:
        cutoff = now_ns - self._window_ns
        calls = self._calls
        while calls and calls[0] <= cutoff:
            calls.popleft()

    def spend(self, now_ns: int, calls: int = 1) -> None:
        self._expire(now_ns)
        self._calls.extend([now_ns] * calls)

    def used(self, now_ns: int) -> int:
        self._expire(now_ns)
        return len(self._calls)

    def used_pct(self, now_ns: int) -> float:
        return 100.0 * self.used(now_ns) / self.limit

    def can_spend(self, now_ns: int, calls: int = 1) -> bool:
        return self.used(now_ns) + calls <= self.limit

    def is_warning(self, now_ns: int) -> bool:
        return self.used_pct(now_ns) >= self.warn_pct
