"""Block-character bars with eighth-of-a-cell resolution, for depth bars, gauges and charts."""

from __future__ import annotations

LEFT_EIGHTHS = " ▏▎▍▌▋▊▉█"
"""Index k: a cell filled k/8 from the left."""
LOWER_EIGHTHS = " ▁▂▃▄▅▆▇█"
"""Index k: a cell filled k/8 from the bottom."""


def hbar(fraction: float, width: int) -> str:
    """A left-aligned bar `fraction` (0..1) of `width` cells long, to the eighth of a cell."""
    if width <= 0:
        return ""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full
    if part and full < width:
        text += LEFT_EIGHTHS[part]
    return text.ljust(width)
