"""Number formats the operator reads all day: fixed widths, units, signs that line up."""

from __future__ import annotations

import time

_UNITS = frozenset({"s", "ms", "m", "h", "bps", "%", "%/h", "samples", "calls", "USD"})
"""Words that are the unit of the number before them: never parted from it."""


def price(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def size(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def signed_size(value: float, decimals: int) -> str:
    return f"{value:+.{decimals}f}"


def usd(value: float, decimals: int = 2) -> str:
    text = f"{abs(value):,.{decimals}f}"
    return f"-${text}" if value < 0 else f"${text}"


def signed_usd(value: float, decimals: int = 2) -> str:
    text = f"{abs(value):,.{decimals}f}"
    if value < 0 and text.strip("0.,"):
        return f"-${text}"
    return f"+${text}"


def bps(value: float | None, decimals: int = 2) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def signed_bps(value: float | None, decimals: int = 2) -> str:
    return "n/a" if value is None else f"{value:+.{decimals}f}"


def age(age_s: float) -> str:
    """At most 5 cells: `12.3s`, `123s`, `12.3m`, `12.3h`, `123h`."""
    if age_s < 99.95:
        return f"{age_s:.1f}s"
    if age_s < 999.5:
        return f"{age_s:.0f}s"
    minutes = age_s / 60
    if minutes < 99.95:
        return f"{minutes:.1f}m"
    hours = age_s / 3600
    if hours < 99.95:
        return f"{hours:.1f}h"
    return f"{min(hours, 9999):.0f}h"


def clock(unix_s: float) -> str:
    """HH:MM:SS in UTC: the desk's clock, whatever the box's time zone."""
    return time.strftime("%H:%M:%S", time.gmtime(unix_s))


def fit(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis, or padded to it."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + "…" if width > 1 else text[:width]
    return text.ljust(width)


def fit_words(text: str, width: int) -> str:
    """`text` in at most `width` cells: whole if it fits, else cut after a word with an
    ellipsis, never inside a number nor between a number and its unit; "" for no room."""
    if len(text) <= width:
        return text
    if width < 2:
        return ""
    room = width - 1
    words = text.split(" ")
    best = ""
    for n in range(1, len(words)):
        if words[n] in _UNITS:
            continue  # the next word is the unit of this number: cut before the number
        head = " ".join(words[:n]).rstrip(";,:(·-— ")
        if len(head) > room:
            break
        if not head[-1:].isdigit():  # "limit 1,000…" would read as a number cut short
            best = head
    return best + "…" if best else "…"
