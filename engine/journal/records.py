"""Journal records: their kinds, which kinds are durable, and the checks a record must pass."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

SCHEMA_VERSION = 1
DURABLE = frozenset(
    {"fill", "state", "funding", "order_sent", "order_done", "cancel_all_done", "reconcile"}
)
"""Kinds `append` waits for (bounded by `stall_s`): a restart cannot do without them."""
_MAX_TS = 2**62


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _g(bound: float) -> str:
    return f"{bound:g}".replace("e+0", "e").replace("e+", "e")


def _number(
    data: dict[str, Any],
    name: str,
    lo: float,
    hi: float,
    *,
    lo_closed: bool = False,
    hi_closed: bool = False,
    nullable: bool = False,
    optional: bool = False,
) -> str | None:
    """A problem with `data[name]` as a finite number in the interval, or None."""
    if name not in data:
        return None if optional else f"{name} is missing"
    v = data[name]
    if v is None and nullable:
        return None
    interval = f"{'[' if lo_closed else '('}{_g(lo)}, {_g(hi)}{']' if hi_closed else ')'}"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"{name} {_show(v)} is not a number in {interval}"
    if isinstance(v, float) and not math.isfinite(v):
        return f"{name} {_show(v)} is not a number in {interval}"
    above = v >= lo if lo_closed else v > lo
    below = v <= hi if hi_closed else v < hi
    if not (above and below):
        return f"{name} {_show(v)} is not a number in {interval}"
    return None


def _text(data: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    if name not in data:
        return None if optional else f"{name} is missing"
    v = data[name]
    if not isinstance(v, str) and not (optional and v is None):
        return f"{name} {_show(v)} is not text"
    return None


def _side(data: dict[str, Any], *, optional: bool = False) -> str | None:
    if "side" not in data:
        return None if optional else "side is missing"
    v = data["side"]
    if isinstance(v, bool) or not isinstance(v, int) or v not in (1, -1):
        return f"side {_show(v)} is not 1 (buy) or -1 (sell)"
    return None


def _check_fill(d: dict[str, Any]) -> str | None:
    if "is_maker" not in d:
        maker = "is_maker is missing"
    elif not isinstance(d["is_maker"], bool):
        maker = f"is_maker {_show(d['is_maker'])} is not true or false"
    else:
        maker = None
    return (
        _text(d, "order_id")
        or _side(d)
        or _number(d, "price", 0, 1e9)
        or _number(d, "size_base", 0, 1e6)
        or _number(d, "fee_usd", -1e7, 1e7)
        or maker
        or _number(d, "leaves_base", 0, 1e6, lo_closed=True)
        or _number(d, "mid", 0, 1e9, nullable=True)
        or _text(d, "trade_id", optional=True)
    )


def _check_order_sent(d: dict[str, Any]) -> str | None:
    return (
        _text(d, "order_id")
        or _side(d, optional=True)
        or _number(d, "price", 0, 1e9, optional=True, nullable=True)
        or _number(d, "size_base", 0, 1e6, optional=True, nullable=True)
    )


_CHECKS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "fill": _check_fill,
    "mark": lambda d: _number(d, "mid", 0, 1e9),
    "funding": lambda d: (
        _number(d, "rate", -0.05, 0.05, lo_closed=True, hi_closed=True)
        or _number(d, "mark_price", 0, 1e9)
        or _number(d, "venue_ms", 0, 1e14, lo_closed=True, optional=True)
    ),
    "order_sent": _check_order_sent,
    "order_done": lambda d: _text(d, "order_id"),
    "cancel_sent": lambda d: _text(d, "order_id"),
    "cancel_refused": lambda d: _text(d, "order_id"),
    "cancel_all_sent": lambda d: _text(d, "reason", optional=True),
    "cancel_all_done": lambda d: None,
    "reconcile": lambda d: (
        _number(d, "position_base", -1e6, 1e6, lo_closed=True, hi_closed=True)
        or _number(d, "mid", 0, 1e9)
    ),
    "state": lambda d: _text(d, "state") or _text(d, "reason", optional=True),
    "alert": lambda d: _text(d, "severity") or _text(d, "control") or _text(d, "message"),
    "command": lambda d: _text(d, "command"),
}
KNOWN_KINDS = frozenset(_CHECKS)


def check_record(kind: str, ts_ns: object, data: object) -> str | None:
    """What is wrong with a record of a known kind, in a few words; None if it can be folded.
    Unknown kinds pass (a newer perpdesk may write kinds this one does not know)."""
    if isinstance(ts_ns, bool) or not isinstance(ts_ns, int) or not 0 <= ts_ns <= _MAX_TS:
        return f"ts_ns {_show(ts_ns)} is not an integer in [0, 2**62]"
    check = _CHECKS.get(kind)
    if check is None:
        return None
    if not isinstance(data, dict):
        return f"data {_show(data)} is not a JSON object"
    return check(data)


def _parse(text: object) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(text, str | bytes):
        return None, f"data {_show(text)} is not JSON text"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"data is not JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"data {_show(data)} is not a JSON object"
    return data, None
