"""The exact state a journal folds to: the ledger as "num/den" text, and the fold itself."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

from engine.events import Side
from engine.journal.records import _MAX_TS, SCHEMA_VERSION, _number, _parse, _show
from engine.pnl import PnlLedger

_NS_PER_DAY = 86_400 * 1_000_000_000


def _frac_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _frac(value: object) -> Fraction:
    if not isinstance(value, str) or len(value) > 10_000:
        raise ValueError(f"not a fraction: {_show(value)}")
    return Fraction(value)


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {_show(value)}")
    return float(value)


_LEDGER_TERMS = ("cash", "position", "spread", "rebates", "inventory", "hedge", "funding")
_LEDGER_FLOATS = ("fees_paid_usd", "maker_volume_usd", "taker_volume_usd")


def ledger_state(ledger: PnlLedger) -> dict[str, Any]:
    """The ledger's exact state: rationals as "num/den" text, float totals as floats."""
    state: dict[str, Any] = {name: _frac_text(getattr(ledger, name)) for name in _LEDGER_TERMS}
    state["mark"] = None if ledger._mark is None else _frac_text(ledger._mark)
    for name in _LEDGER_FLOATS:
        state[name] = getattr(ledger, name)
    state["fills"] = ledger.fills
    return state


def ledger_from_state(state: dict[str, Any]) -> PnlLedger:
    """The ledger `ledger_state` described, exactly; ValueError/TypeError/KeyError if the state
    is not one."""
    ledger = PnlLedger()
    for name in _LEDGER_TERMS:
        setattr(ledger, name, _frac(state[name]))
    ledger._mark = None if state["mark"] is None else _frac(state["mark"])
    for name in _LEDGER_FLOATS:
        setattr(ledger, name, _finite(state[name]))
    fills = state["fills"]
    if isinstance(fills, bool) or not isinstance(fills, int) or fills < 0:
        raise ValueError(f"fills {_show(fills)} is not a count")
    ledger.fills = fills
    ledger._refresh_floats()
    return ledger


class _Fold:
    """Every record folded in order: the account, the risk state and two day baselines.

    `max_day_base` is the net P&L just before the first record whose ts is on or after the
    start of the UTC day of the latest ts seen (`max_ts`), which is what a checkpoint needs to
    answer "today's baseline" for a `now` on that day. `day_start`/`base` are the same for the
    day of the `now` a recovery was asked for."""

    __slots__ = (
        "base",
        "base_taken",
        "day_start",
        "kill_reason",
        "killed",
        "last_mid",
        "ledger",
        "max_day_base",
        "max_ts",
        "open_orders",
    )

    def __init__(self) -> None:
        self.ledger = PnlLedger()
        self.last_mid: float | None = None
        self.killed = False
        self.kill_reason = ""
        self.open_orders: dict[str, int] = {}
        self.max_ts: int | None = None
        self.max_day_base = 0.0
        self.day_start: int | None = None
        self.base = 0.0
        self.base_taken = False

    def apply(self, session: int, ts: int, kind: str, data: dict[str, Any] | None) -> None:
        ledger = self.ledger
        if not self.base_taken and self.day_start is not None and ts >= self.day_start:
            self.base = ledger.net_usd_at(self.last_mid)
            self.base_taken = True
        max_ts = self.max_ts
        if max_ts is None or ts > max_ts:
            if max_ts is None or ts // _NS_PER_DAY != max_ts // _NS_PER_DAY:
                self.max_day_base = ledger.net_usd_at(self.last_mid)
            self.max_ts = ts
        if data is None:
            return
        if kind == "mark":
            self.last_mid = data["mid"]
            ledger.mark(data["mid"])
        elif kind == "fill":
            ledger.on_fill(
                side=Side(data["side"]),
                price=data["price"],
                size_base=data["size_base"],
                fee_usd=data["fee_usd"],
                is_maker=data["is_maker"],
                mid=data["mid"],
            )
            if data["leaves_base"] <= 0:
                self.open_orders.pop(data["order_id"], None)
        elif kind == "funding":
            ledger.on_funding(rate=data["rate"], mark_price=data["mark_price"])
        elif kind == "reconcile":  # the venue's position adopted at mid: no fee, no P&L jump
            self.last_mid = data["mid"]
            ledger.reconcile(data["position_base"], data["mid"])
        elif kind == "order_sent":
            self.open_orders[data["order_id"]] = session
        elif kind == "order_done":
            self.open_orders.pop(data["order_id"], None)
        elif kind == "cancel_all_done":
            self.open_orders.clear()
        elif kind == "state":
            self.killed = data["state"] == "KILLED"
            self.kill_reason = (data.get("reason") or "") if self.killed else ""

    def to_json(self) -> str:
        state = {
            "version": SCHEMA_VERSION,
            "ledger": ledger_state(self.ledger),
            "last_mid": self.last_mid,
            "killed": self.killed,
            "kill_reason": self.kill_reason,
            "open_orders": [[order_id, s] for order_id, s in self.open_orders.items()],
            "max_ts": self.max_ts,
            "day": None if self.max_ts is None else self.max_ts // _NS_PER_DAY,
            "day_base": self.max_day_base,
        }
        return json.dumps(state, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: object) -> _Fold | None:
        """The fold a checkpoint stored, or None if it is not a valid one."""
        try:
            state, problem = _parse(text)
            if state is None or problem or state.get("version") != SCHEMA_VERSION:
                return None
            fold = cls()
            fold.ledger = ledger_from_state(state["ledger"])
            last_mid = state["last_mid"]
            if last_mid is not None and _number(state, "last_mid", 0, 1e9):
                return None
            fold.last_mid = last_mid
            killed, reason = state["killed"], state["kill_reason"]
            if not isinstance(killed, bool) or not isinstance(reason, str):
                return None
            fold.killed, fold.kill_reason = killed, reason
            for order_id, session in state["open_orders"]:
                if not isinstance(order_id, str) or type(session) is not int:
                    return None
                fold.open_orders[order_id] = session
            max_ts = state["max_ts"]
            if type(max_ts) is not int or not 0 <= max_ts <= _MAX_TS:
                return None
            if state["day"] != max_ts // _NS_PER_DAY:
                return None
            fold.max_ts = max_ts
            fold.max_day_base = _finite(state["day_base"])
            return fold
        except (ValueError, TypeError, KeyError, ZeroDivisionError, OverflowError):
            return None
