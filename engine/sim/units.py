"""Integer ticks and lots to the floats a venue prints, cached so the hot path never rounds."""

from __future__ import annotations

from engine.grid import decimals_of

# Bounded: sizes in lots take many distinct values (every taker's size, every leaves), and an
# unbounded cache grew a long session's memory without end. A miss costs one round().
_MAX_CACHED = 16_384


class GridFloats(dict[int, float]):
    """`cache[n]` is `n * step` rounded to the step's decimals: 999957 ticks -> 99995.7, not
    99995.70000000001. Internally prices are int ticks and sizes int lots; floats appear only
    at the edge (events), so two equal prices are always the same float."""

    __slots__ = ("_decimals", "_step")

    def __init__(self, step: float) -> None:
        super().__init__()
        self._step = step
        self._decimals = decimals_of(step)

    def __missing__(self, n: int) -> float:
        if len(self) >= _MAX_CACHED:
            self.clear()
        value = round(n * self._step, self._decimals)
        self[n] = value
        return value
