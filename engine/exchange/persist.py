"""What survives a restart of the local exchange: accounts, open orders, fills, agents, nonces.

One JSON file in the state dir, written atomically (temp file, fsync, rename), private to the
user. The market itself (prices, the background book) starts afresh from the seed; open orders
are put back on the book behind the crowd, and one that would now cross is cancelled (status
"canceled", as a venue's restart would) and said so.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.events import CancelOrder, OrderAccepted, Side
from engine.exchange.core import Agent, Exchange, Order, Schedule, Signer
from engine.exchange.ledger import Ledger
from engine.sim.market import LimitOrder

VERSION = 1
_LEDGER_DECIMALS = (
    "deposited",
    "cash",
    "szi",
    "entry_px",
    "volume",
    "fees",
    "funding",
    "funding_since_open",
    "funding_since_change",
)


def save_state(ex: Exchange, path: Path) -> None:
    ledgers = []
    for ledger in ex.ledgers.values():
        item: dict[str, Any] = {
            "address": ledger.address,
            "leverage": ledger.leverage,
            "is_cross": ledger.is_cross,
        }
        for name in _LEDGER_DECIMALS:
            item[name] = str(getattr(ledger, name))
        item["fills"] = list(ledger.fills)
        item["fundings"] = list(ledger.fundings)
        ledgers.append(item)
    orders = [
        {
            "oid": o.oid,
            "user": o.user,
            "is_buy": o.is_buy,
            "limit_px": str(o.limit_px),
            "orig_sz": str(o.orig_sz),
            "sz": str(o.sz),
            "timestamp": o.timestamp,
            "tif": o.tif,
            "reduce_only": o.reduce_only,
            "cloid": o.cloid,
            "filled": str(o.filled),
            "notional": str(o.notional),
        }
        for user_orders in ex.open_by_user.values()
        for o in user_orders.values()
    ]
    state = {
        "version": VERSION,
        "next_oid": ex.next_oid,
        "next_tid": ex.next_tid,
        "fills_count": ex.fills_count,
        "ledgers": ledgers,
        "orders": orders,
        "agents": [[a, g.master, g.name, g.valid_until] for a, g in ex.agents.items()],
        "nonces": {s: st.nonces for s, st in ex.signers.items()},
        "requests_used": ex.requests_used,
        "schedules": {u: [s.at_ms, s.day, s.triggers] for u, s in ex.schedules.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class StateError(ValueError):
    """The state file cannot be read back: one line naming the file and what is wrong."""


def load_state(ex: Exchange, path: Path) -> str:
    """Restore `ex` from `path`; returns one line saying what came back."""
    try:
        state = json.loads(path.read_text())
        if state.get("version") != VERSION:
            raise StateError(f"{path}: version {state.get('version')!r}, expected {VERSION}")
        _restore(ex, state)
        back, dropped = _replace_orders(ex, state["orders"])
    except (OSError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"{path}: cannot be read back ({type(exc).__name__}: {exc})") from None
    note = f"state: {len(ex.ledgers)} account(s), {back} open order(s) back on the book from {path}"
    if dropped:
        note += f"; {dropped} cancelled because they would now cross the book"
    return note


def _restore(ex: Exchange, state: dict[str, Any]) -> None:
    ex.next_oid = int(state["next_oid"])
    ex.next_tid = int(state["next_tid"])
    ex.fills_count = int(state["fills_count"])
    for item in state["ledgers"]:
        ledger = Ledger(item["address"], Decimal(item["deposited"]))
        for name in _LEDGER_DECIMALS:
            setattr(ledger, name, Decimal(item[name]))
        ledger.leverage = int(item["leverage"])
        ledger.is_cross = bool(item["is_cross"])
        ledger.fills.extend(item["fills"])
        ledger.fundings.extend(item["fundings"])
        ex.ledgers[ledger.address] = ledger
        # the market's own (float) record of the position follows the ledger's
        account = ex.market.account(ledger.address)
        account.position_lots = int(ledger.szi / ex.lot)
        account.position_base = float(ledger.szi)
    for address, master, name, valid_until in state["agents"]:
        ex.agents[address] = Agent(master, name, valid_until)
    for signer, nonces in state["nonces"].items():
        ex.signers[signer] = Signer(sorted(int(n) for n in nonces))
    ex.requests_used.update({u: int(n) for u, n in state["requests_used"].items()})
    for user, (at_ms, day, triggers) in state["schedules"].items():
        ex.schedules[user] = Schedule(at_ms, day, triggers)


def _replace_orders(ex: Exchange, orders: list[dict[str, Any]]) -> tuple[int, int]:
    back = dropped = 0
    for item in orders:
        if item["user"] not in ex.ledgers:
            raise StateError(f"order {item['oid']} belongs to {item['user']}, who has no account")
        if item["tif"] not in ("Alo", "Gtc"):
            raise StateError(f"order {item['oid']}: time in force {item['tif']!r} cannot rest")
        order = Order(
            int(item["oid"]),
            item["user"],
            bool(item["is_buy"]),
            Decimal(item["limit_px"]),
            Decimal(item["orig_sz"]),
            Decimal(item["sz"]),
            int(item["timestamp"]),
            item["tif"],
            bool(item["reduce_only"]),
            item["cloid"],
            filled=Decimal(item["filled"]),
            notional=Decimal(item["notional"]),
        )
        ex.orders[order.oid] = order
        ex.open_by_user.setdefault(order.user, {})[order.oid] = order
        if order.cloid is not None:
            ex.cloids[(order.user, order.cloid)] = order.oid
        side = Side.BUY if order.is_buy else Side.SELL
        ticks = int(order.limit_px / ex.tick)
        lots = int(order.sz / ex.lot)
        ex.market.execute(LimitOrder(str(order.oid), side, ticks, lots, "Alo"), order.user)
        accepted = any(
            isinstance(e, OrderAccepted) and e.order_id == str(order.oid)
            for _, e, _ in ex.market.outbox
        )
        ex.market.outbox.clear()
        if accepted:
            back += 1
        else:
            dropped += 1
            ex.market.execute(CancelOrder(str(order.oid)), order.user)
            ex.market.outbox.clear()
            ex._close(order, "canceled", ex.market.now_ns)
    ex.bus.clear()
    return back, dropped
