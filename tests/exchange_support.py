"""Helpers for the tests that talk to the local exchange over real loopback sockets: funded
keys, signed bodies built by the official SDK (never by the server's own code), a polling
wait, fault injection, and reading the market clock."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import eth_account
import httpx
from eth_account.signers.local import LocalAccount
from hyperliquid.utils.signing import sign_l1_action

from engine.exchange.app import ServerThread

T = TypeVar("T")
DEPOSIT = Decimal(100_000)
ASSET = 0
HOUR_NS = 3_600_000_000_000
_nonces = itertools.count(time.time_ns() // 1_000_000)


def new_key() -> LocalAccount:
    return eth_account.Account.create()


def funded(srv: ServerThread, usd: Decimal = DEPOSIT) -> LocalAccount:
    """A fresh key whose account is opened on the running server with `usd`."""
    key = new_key()
    srv.call(lambda: srv.server.exchange.fund(key.address, usd))
    return key


def wait_for(condition: Callable[[], T], limit_s: float = 10.0, step_s: float = 0.01) -> T:
    """Poll until `condition()` is truthy and return it; fail the test past `limit_s`."""
    deadline = time.monotonic() + limit_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {limit_s} s")
        time.sleep(step_s)


def next_nonce() -> int:
    """Millisecond nonces that never repeat within this test run."""
    return max(next(_nonces), time.time_ns() // 1_000_000)


def signed(key: LocalAccount, action: dict[str, Any], nonce: int | None = None) -> dict[str, Any]:
    """An /exchange body for an L1 action, signed by the SDK for testnet (the server's default)."""
    nonce = next_nonce() if nonce is None else nonce
    signature = sign_l1_action(key, action, None, nonce, None, False)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }


def order_action(is_buy: bool, px: Decimal | str, sz: str, tif: str = "Alo") -> dict[str, Any]:
    wire = {
        "a": ASSET,
        "b": is_buy,
        "p": str(px),
        "s": sz,
        "r": False,
        "t": {"limit": {"tif": tif}},
    }
    return {"type": "order", "orders": [wire], "grouping": "na"}


def post(srv: ServerThread, path: str, body: Any) -> httpx.Response:
    return httpx.post(srv.url + path, json=body, timeout=10)


def info(srv: ServerThread, body: dict[str, Any]) -> Any:
    reply = post(srv, "/info", body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def best(srv: ServerThread) -> tuple[Decimal, Decimal]:
    """Best bid and ask as the server shows them now."""
    levels = info(srv, {"type": "l2Book", "coin": "BTC"})["levels"]
    return Decimal(levels[0][0]["px"]), Decimal(levels[1][0]["px"])


def inject(srv: ServerThread, fault: str, **spec: Any) -> str:
    """Inject a fault through the control endpoint; check the server says so in its log."""
    reply = post(srv, "/_perpdesk/fault", {"fault": fault, **spec})
    assert reply.status_code == 200, reply.text
    said = reply.json()["injected"]
    assert isinstance(said, str) and said
    assert f"fault: {said}" in srv.lines
    return said


def jump_market_clock(srv: ServerThread, seconds: float) -> None:
    """Move the server's market clock `seconds` ahead at once (the market runs through them on
    the next advance, background flow and funding included): an hour without waiting one."""

    srv.call(lambda: srv.server.skip_ahead(seconds))


def buy_at_market(srv: ServerThread, key: Any, size: str) -> None:
    """The account buys `size` BTC with an IOC of its own (not the console's)."""
    _, ask = best(srv)
    reply = post(srv, "/exchange", signed(key, order_action(True, ask + 200, size, "Ioc")))
    assert reply.status_code == 200 and "filled" in reply.text, reply.text
