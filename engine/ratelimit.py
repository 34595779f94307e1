"""The API call budget: calls counted in a sliding window, a warning level, a cancel reserve and
a hard limit.

`room(now)` is how many more calls fit under the hard limit; `room(now, reserve=True)` keeps the
last `reserve` calls of the window back for cancels (see engine.quoter for who may use them).
Calls are stored as (time, count) pairs, so spending and expiring are O(1) amortised whatever
the count.
"""

from __future__ import annotations

from collections import deque

_NS_PER_S = 1_000_000_000


def cancel_reserve(limit: int) -> int:
    """The calls kept back for cancels: max(2, 5% of the limit), never the whole budget."""
    return max(0, min(max(2, limit // 20), limit - 1))


class RateBudget:
    """Counts venue calls in a sliding window of `window_s` seconds; time is passed in."""

    __slots__ = ("_calls", "_used", "_window_ns", "limit", "reserve", "warn_pct")

    def __init__(
        self, limit: int, window_s: float, warn_pct: float = 80.0, reserve: int | None = None
    ) -> None:
        if limit <= 0 or window_s <= 0:
            raise ValueError(
                f"rate budget needs limit > 0 and window_s > 0, got {limit}, {window_s}"
            )
        self.limit = limit
        self.warn_pct = warn_pct
        self.reserve = cancel_reserve(limit) if reserve is None else reserve
        if not 0 <= self.reserve < limit:
            raise ValueError(f"the cancel reserve must be in [0, {limit}), got {self.reserve}")
        self._window_ns = int(window_s * _NS_PER_S)
        self._calls: deque[list[int]] = deque()  # [ts_ns, count], oldest first
        self._used = 0

    def set_limit(self, limit: int, reserve: int | None = None) -> None:
        """A new hard limit (and cancel reserve), from the venue's own accounting; calls
        already spent stay counted."""
        reserve = cancel_reserve(limit) if reserve is None else reserve
        if limit <= 0 or not 0 <= reserve < limit:
            raise ValueError(f"rate budget needs 0 <= reserve < limit, got {reserve}, {limit}")
        self.limit = limit
        self.reserve = reserve

    def _expire(self, now_ns: int) -> None:
        cutoff = now_ns - self._window_ns
        calls = self._calls
        while calls and calls[0][0] <= cutoff:
            self._used -= calls.popleft()[1]

    def spend(self, now_ns: int, calls: int = 1) -> None:
        if calls <= 0:
            return
        self._expire(now_ns)
        last = self._calls[-1] if self._calls else None
        if last is not None and last[0] == now_ns:
            last[1] += calls
        else:
            self._calls.append([now_ns, calls])
        self._used += calls

    def used(self, now_ns: int) -> int:
        self._expire(now_ns)
        return self._used

    def used_pct(self, now_ns: int) -> float:
        return 100.0 * self.used(now_ns) / self.limit

    def room(self, now_ns: int, reserve: bool = False) -> int:
        """Calls that still fit now: under the hard limit, or (`reserve=True`) under the limit
        less the cancel reserve. Negative when cancel-alls went past the limit."""
        return self.limit - (self.reserve if reserve else 0) - self.used(now_ns)

    def can_spend(self, now_ns: int, calls: int = 1) -> bool:
        return self.used(now_ns) + calls <= self.limit

    def free_in_ns(self, now_ns: int, calls: int = 1, reserve: bool = False) -> int:
        """How long until `calls` more fit (0 if they fit now). O(window entries): for
        messages, not for the per-event path."""
        over = calls - self.room(now_ns, reserve)
        if over <= 0:
            return 0
        for ts, count in self._calls:
            over -= count
            if over <= 0:
                return ts + self._window_ns - now_ns
        return self._window_ns  # more calls than the limit allows: never, say a window

    def is_warning(self, now_ns: int) -> bool:
        return self.used_pct(now_ns) >= self.warn_pct
