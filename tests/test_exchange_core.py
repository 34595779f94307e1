"""The local exchange's books, driven with requests signed by the official SDK (no sockets):
exact accounting under random trading, nonces, agents, the dead man's switch, the address
rate limit, and what survives a restart."""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import eth_account
import pytest
from hyperliquid.utils.signing import sign_agent, sign_l1_action

from engine.exchange import core
from engine.exchange.core import Exchange
from engine.exchange.persist import StateError, load_state, save_state
from engine.sim import SimMarket, SimParams

S = 1_000_000_000
T0_MS = 1_800_000_000_000
DEPOSIT = Decimal(100_000)


class Desk:
    """An Exchange on its own market, a wall clock we set, and keys that sign like the SDK."""

    def __init__(self, **params: Any) -> None:
        market_params = dict(
            seed=3,
            symbol="BTC",
            start_ns=T0_MS * 1_000_000,
            tick_size=1.0,
            lot_size=0.00001,
            level_spacing_ticks=3,
            funding_enabled=True,
        )
        market_params.update(params)
        self.market = SimMarket(SimParams(**market_params).with_fees("hyperliquid-base"))
        self.wall = T0_MS
        self.ex = Exchange(self.market, wall_ms=lambda: self.wall)
        self.ex.advance(self.market.now_ns)
        self._nonce = itertools.count(T0_MS)

    def account(self, usd: Decimal = DEPOSIT) -> Any:
        wallet = eth_account.Account.create()
        self.ex.fund(wallet.address, usd)
        return wallet

    def send(self, wallet: Any, action: dict[str, Any], nonce: int | None = None) -> Any:
        nonce = next(self._nonce) if nonce is None else nonce
        signature = sign_l1_action(wallet, action, None, nonce, None, False)
        body = {"action": action, "nonce": nonce, "signature": signature,
                "vaultAddress": None, "expiresAfter": None}  # fmt: skip
        return self.ex.exchange(body)

    def order(self, wallet: Any, is_buy: bool, px: int, sz: str, tif: str, **extra: Any) -> Any:
        wire = {"a": 0, "b": is_buy, "p": str(px), "s": sz, "r": extra.pop("r", False),
                "t": {"limit": {"tif": tif}}}  # fmt: skip
        wire.update(extra)
        reply = self.send(wallet, {"type": "order", "orders": [wire], "grouping": "na"})
        return reply["response"]["data"]["statuses"][0]

    def touch(self) -> tuple[int, int]:
        bid, ask = self.market.best_ticks()
        assert bid is not None and ask is not None
        return bid, ask

    def info(self, **body: Any) -> Any:
        return self.ex.info(body)[0]


def test_every_accounts_equity_moves_exactly_by_its_fills_fees_and_funding() -> None:
    """Three accounts trade at random with each other and the crowd for 3 simulated hours of
    hourly funding; their books are read back through /info, as a client would."""
    desk = Desk(funding_rate_per_hour=0.0005)
    wallets = [desk.account() for _ in range(3)]
    rng = random.Random(11)
    for _ in range(240):
        wallet = rng.choice(wallets)
        bid, ask = desk.touch()
        is_buy = rng.random() < 0.5
        roll = rng.random()
        size = rng.choice(["0.001", "0.002", "0.01"])
        if roll < 0.5:
            px = bid - rng.randint(0, 3) if is_buy else ask + rng.randint(0, 3)
            desk.order(wallet, is_buy, px, size, "Alo")
        elif roll < 0.7:
            desk.order(wallet, is_buy, ask + 5 if is_buy else bid - 5, size, "Ioc")
        elif roll < 0.8:
            desk.order(wallet, is_buy, ask + 1 if is_buy else bid - 1, size, "Gtc")
        else:
            mine = desk.info(type="openOrders", user=wallet.address)
            if mine:
                oid = rng.choice(mine)["oid"]
                desk.send(wallet, {"type": "cancel", "cancels": [{"a": 0, "o": oid}]})
        desk.ex.advance(desk.market.now_ns + int(rng.expovariate(1 / 60) * S))
    assert desk.market.now_ns > (T0_MS * 1_000_000) + 3 * 3600 * S  # three fundings at least
    mark = desk.ex.mark_px()
    for wallet in wallets:
        user = wallet.address.lower()
        fills = desk.info(type="userFills", user=user)
        fundings = desk.info(type="userFunding", user=user, startTime=0)
        state = desk.info(type="clearinghouseState", user=user)
        flows = sum(
            (-(Decimal(f["px"]) * Decimal(f["sz"])) * (1 if f["side"] == "B" else -1)
             - Decimal(f["fee"]) for f in fills),
            Decimal(0),
        )  # fmt: skip
        funding = sum((Decimal(f["delta"]["usdc"]) for f in fundings), Decimal(0))
        position = sum(
            (Decimal(f["sz"]) * (1 if f["side"] == "B" else -1) for f in fills), Decimal(0)
        )
        assert fills and fundings, "every account traded and paid or received funding"
        assert Decimal(state["marginSummary"]["totalRawUsd"]) == DEPOSIT + flows + funding
        szi = Decimal(state["assetPositions"][0]["position"]["szi"]) if position else Decimal(0)
        assert szi == position
        ledger = desk.ex.ledgers[user]
        assert ledger.equity(mark) - DEPOSIT == flows + funding + position * mark
        # the market's own float bookkeeping agrees on the position
        assert abs(desk.market.account(user).position_base - float(position)) < 1e-9


def test_a_trade_between_two_accounts_books_equal_and_opposite_fills() -> None:
    desk = Desk(taker_rate_per_s=0.0)
    maker, taker = desk.account(), desk.account()
    bid, ask = desk.touch()
    assert ask - bid >= 2, "the crowd leaves room inside the spread"
    resting = desk.order(maker, False, ask - 1, "0.003", "Alo")
    filled = desk.order(taker, True, ask - 1, "0.003", "Ioc")
    assert filled["filled"]["totalSz"] == "0.003" and filled["filled"]["avgPx"] == f"{ask - 1}.0"
    (m,) = desk.info(type="userFills", user=maker.address)
    (t,) = desk.info(type="userFills", user=taker.address)
    assert (m["side"], m["crossed"], m["oid"]) == ("A", False, resting["resting"]["oid"])
    assert (t["side"], t["crossed"]) == ("B", True)
    assert m["px"] == t["px"] and m["sz"] == t["sz"]
    assert Decimal(m["fee"]) == Decimal(m["px"]) * Decimal("0.003") * Decimal("0.00015")
    positions = [desk.ex.ledgers[w.address.lower()].szi for w in (maker, taker)]
    assert positions == [Decimal("-0.003"), Decimal("0.003")] and sum(positions) == 0


def test_order_rules_give_hyperliquids_own_errors() -> None:
    desk = Desk()
    wallet = desk.account(Decimal(1_000))
    bid, ask = desk.touch()
    assert desk.order(wallet, True, bid, "0.00001", "Alo") == {
        "error": "Order must have minimum value of $10. asset=0"
    }
    assert desk.order(wallet, True, bid, "0.000001", "Alo") == {"error": "Order has invalid size."}
    assert desk.order(wallet, True, ask, "0.001", "Alo")["error"].startswith(
        f"Post only order would have immediately matched, bbo was {bid}.0@{ask}.0."
    )
    assert desk.order(wallet, True, bid, "0.5", "Alo") == {
        "error": "Insufficient margin to place order. asset=0"
    }
    assert desk.order(wallet, False, ask, "0.001", "Alo", r=True) == {
        "error": "Reduce only order would increase position. asset=0"
    }
    assert desk.order(wallet, True, bid - 85000, "0.001", "Alo")["error"].startswith(
        "Order price cannot be more than 80% away"
    )
    off_grid = desk.send(wallet, {"type": "order", "orders": [
        {"a": 0, "b": True, "p": f"{bid - 1}.5", "s": "0.001", "r": False,
         "t": {"limit": {"tif": "Alo"}}}], "grouping": "na"})  # fmt: skip
    assert off_grid["response"]["data"]["statuses"] == [
        {"error": "Price must be divisible by tick size. asset=0"}
    ]
    ioc = desk.order(wallet, True, bid - 100, "0.001", "Ioc")
    assert ioc == {"error": "Order could not immediately match against any resting orders. asset=0"}


def test_nonces_are_kept_per_signer_and_refused_when_reused_stale_or_far_ahead() -> None:
    desk = Desk()
    wallet = desk.account()
    noop = {"type": "noop"}
    assert desk.send(wallet, noop, nonce=T0_MS)["status"] == "ok"
    assert desk.send(wallet, noop, nonce=T0_MS) == {
        "status": "err",
        "response": f"Invalid nonce: duplicate nonce {T0_MS}",
    }
    old = desk.send(wallet, noop, nonce=T0_MS - 3 * 86_400_000)["response"]
    ahead = desk.send(wallet, noop, nonce=T0_MS + 2 * 86_400_000)["response"]
    assert old.startswith("Invalid nonce:") and "too old" in old
    assert ahead.startswith("Invalid nonce:") and "too far ahead" in ahead
    for n in range(1, 101):  # fill the 100 kept nonces above the first
        assert desk.send(wallet, noop, nonce=T0_MS + n)["status"] == "ok"
    low = desk.send(wallet, noop, nonce=T0_MS - 5)["response"]  # unused, but below all kept
    assert low.startswith("Invalid nonce:") and "lowest kept" in low
    other = desk.account()
    assert desk.send(other, noop, nonce=T0_MS)["status"] == "ok"  # another signer's own set


def test_an_unknown_signer_is_refused_and_an_approved_agent_trades_for_its_master() -> None:
    desk = Desk()
    master = desk.account()
    agent = eth_account.Account.create()
    refused = desk.send(agent, {"type": "noop"})
    assert refused == {
        "status": "err",
        "response": f"L1 error: User or API Wallet {agent.address.lower()} does not exist.",
    }
    nonce = T0_MS + 10_000
    approve = {"type": "approveAgent", "hyperliquidChain": "Testnet",
               "signatureChainId": "0x66eee", "agentAddress": agent.address,
               "agentName": "desk1", "nonce": nonce}  # fmt: skip
    signature = sign_agent(master, approve, False)
    reply = desk.ex.exchange({"action": approve, "nonce": nonce, "signature": signature,
                              "vaultAddress": None, "expiresAfter": None})  # fmt: skip
    assert reply == {"status": "ok", "response": {"type": "default"}}
    bid, _ = desk.touch()
    status = desk.order(agent, True, bid - 2, "0.001", "Alo")
    assert "resting" in status
    (order,) = desk.info(type="openOrders", user=master.address)
    assert order["oid"] == status["resting"]["oid"]
    agents = desk.info(type="extraAgents", user=master.address)
    assert agents == [{"name": "desk1", "address": agent.address.lower(), "validUntil": None}]


def test_the_dead_mans_switch_cancels_open_orders_when_it_fires() -> None:
    desk = Desk(taker_rate_per_s=0.0, regime_override="flat")
    wallet = desk.account()
    bid, ask = desk.touch()
    desk.order(wallet, True, bid - 30, "0.001", "Alo")
    desk.order(wallet, False, ask + 30, "0.001", "Alo")
    now = desk.ex.now_ms()
    early = desk.send(wallet, {"type": "scheduleCancel", "time": now + 4_000})
    assert early["status"] == "err" and "at least 5 seconds" in early["response"]
    assert desk.send(wallet, {"type": "scheduleCancel", "time": now + 6_000})["status"] == "ok"
    desk.ex.advance(desk.market.now_ns + 5 * S)
    assert len(desk.info(type="openOrders", user=wallet.address)) == 2
    desk.ex.bus.clear()
    desk.ex.advance(desk.market.now_ns + 2 * S)
    assert desk.info(type="openOrders", user=wallet.address) == []
    statuses = [d["status"] for c, _, d in desk.ex.bus if c == "orderUpdates"]
    assert statuses == ["scheduledCancel", "scheduledCancel"]
    assert any(c == "user" and "nonUserCancel" in d for c, _, d in desk.ex.bus)


def test_the_address_budget_refuses_actions_past_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "RATE_BASE", 3)
    desk = Desk()
    wallet = desk.account()
    for _ in range(3):
        assert desk.send(wallet, {"type": "noop"})["status"] == "ok"
    refused = desk.send(wallet, {"type": "noop"})["response"]
    assert refused.startswith("Too many cumulative requests sent (4 > 3)")
    limits = desk.info(type="userRateLimit", user=wallet.address)
    assert limits["nRequestsUsed"] == 3 and limits["nRequestsCap"] == 3


def test_accounts_orders_nonces_and_agents_survive_a_restart(tmp_path: Path) -> None:
    desk = Desk(taker_rate_per_s=0.0)
    wallet = desk.account()
    bid, ask = desk.touch()
    desk.order(wallet, True, ask + 5, "0.002", "Ioc")
    resting = desk.order(wallet, True, bid - 4, "0.001", "Alo", c="0x" + "ab" * 16)
    used_nonce = T0_MS + 77
    desk.send(wallet, {"type": "noop"}, nonce=used_nonce)
    before = {kind: desk.info(type=kind, user=wallet.address)
              for kind in ("clearinghouseState", "openOrders", "userFills")}  # fmt: skip
    path = tmp_path / "exchange-state.json"
    save_state(desk.ex, path)
    assert path.stat().st_mode & 0o777 == 0o600

    again = Desk(taker_rate_per_s=0.0)
    again._nonce = itertools.count(T0_MS + 1_000)
    note = load_state(again.ex, path)
    assert "1 account(s), 1 open order(s) back on the book" in note
    after_orders = again.info(type="openOrders", user=wallet.address)
    assert after_orders == before["openOrders"]
    assert again.info(type="userFills", user=wallet.address) == before["userFills"]
    ledger = again.ex.ledgers[wallet.address.lower()]
    assert ledger.szi == Decimal("0.002") and ledger.cash == desk.ex.ledgers[ledger.address].cash
    assert again.send(wallet, {"type": "noop"}, nonce=used_nonce)["response"].startswith(
        "Invalid nonce: duplicate nonce"
    )
    by_cloid = again.info(type="orderStatus", user=wallet.address, oid="0x" + "ab" * 16)
    assert by_cloid["order"]["order"]["oid"] == resting["resting"]["oid"]
    cancel = {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": "0x" + "ab" * 16}]}
    assert again.send(wallet, cancel)["response"]["data"]["statuses"] == ["success"]


def test_a_resting_reduce_only_order_is_cancelled_once_it_would_no_longer_reduce() -> None:
    desk = Desk(taker_rate_per_s=0.0, regime_override="flat")
    wallet = desk.account()
    bid, ask = desk.touch()
    desk.order(wallet, True, ask + 5, "0.002", "Ioc")  # long 0.002
    first = desk.order(wallet, False, ask + 30, "0.002", "Alo", r=True)
    second = desk.order(wallet, False, ask + 31, "0.002", "Alo", r=True)
    assert "resting" in first and "resting" in second
    desk.ex.bus.clear()
    desk.order(wallet, False, bid - 5, "0.002", "Ioc")  # flat again
    assert desk.info(type="openOrders", user=wallet.address) == []
    statuses = [d["status"] for c, _, d in desk.ex.bus if c == "orderUpdates"]
    assert statuses.count("reduceOnlyCanceled") == 2
    assert desk.ex.ledgers[wallet.address.lower()].szi == 0


def test_an_api_wallet_of_one_account_cannot_be_taken_by_another() -> None:
    desk = Desk()
    alice, mallory = desk.account(), desk.account()
    agent = eth_account.Account.create()
    for master, nonce in ((alice, T0_MS + 1), (mallory, T0_MS + 2)):
        approve = {"type": "approveAgent", "hyperliquidChain": "Testnet",
                   "signatureChainId": "0x66eee", "agentAddress": agent.address,
                   "agentName": "bot", "nonce": nonce}  # fmt: skip
        reply = desk.ex.exchange({"action": approve, "nonce": nonce,
                                  "signature": sign_agent(master, approve, False),
                                  "vaultAddress": None, "expiresAfter": None})  # fmt: skip
    assert reply["status"] == "err" and "already an API wallet" in reply["response"]
    bid, _ = desk.touch()
    assert "resting" in desk.order(agent, True, bid - 3, "0.001", "Alo")
    assert len(desk.info(type="openOrders", user=alice.address)) == 1
    assert desk.info(type="openOrders", user=mallory.address) == []


def test_modify_keeps_its_cloid_and_refuses_before_touching_the_old_order() -> None:
    desk = Desk(taker_rate_per_s=0.0, regime_override="flat")
    wallet = desk.account()
    bid, ask = desk.touch()
    cloid = "0x" + "11" * 16
    placed = desk.order(wallet, True, bid - 5, "0.001", "Alo", c=cloid)
    oid = placed["resting"]["oid"]

    def modify(px: int, tif: str) -> Any:
        wire = {"a": 0, "b": True, "p": str(px), "s": "0.001", "r": False,
                "t": {"limit": {"tif": tif}}, "c": cloid}  # fmt: skip
        action = {"type": "batchModify", "modifies": [{"oid": cloid, "order": wire}]}
        return desk.send(wallet, action)["response"]["data"]["statuses"][0]

    moved = modify(bid - 7, "Alo")
    assert moved["resting"]["cloid"] == cloid and moved["resting"]["oid"] != oid
    crossing = modify(ask + 2, "Gtc")
    assert crossing["error"].startswith("Post only order would have immediately matched")
    ioc = modify(ask + 2, "Ioc")
    assert "error" in ioc
    (still,) = desk.info(type="openOrders", user=wallet.address)
    assert still["oid"] == moved["resting"]["oid"] and still["limitPx"] == f"{bid - 7}.0"
    assert desk.ex.ledgers[wallet.address.lower()].szi == 0


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("p", "1000000000000000000000000000000", "Order has invalid price."),
        ("p", "1E+30", "Order has invalid price."),
        ("s", "1E+999999", "Order has invalid size."),
        ("p", "NaN", "Order has invalid price."),
        ("s", "-0.001", "Order has invalid size."),
    ],
)
def test_absurd_numbers_are_an_orders_error_not_a_crash(field: str, value: str, error: str) -> None:
    desk = Desk()
    wallet = desk.account()
    bid, _ = desk.touch()
    status = desk.order(wallet, True, bid - 3, "0.001", "Alo", **{field: value})
    assert status == {"error": error}


def test_finished_orders_are_kept_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "DONE_KEPT", 5)
    desk = Desk(taker_rate_per_s=0.0, regime_override="flat")
    wallet = desk.account()
    bid, _ = desk.touch()
    oids = []
    for n in range(8):
        placed = desk.order(wallet, True, bid - 5, "0.001", "Alo", c=f"0x{n:032x}")
        oid = placed["resting"]["oid"]
        desk.send(wallet, {"type": "cancel", "cancels": [{"a": 0, "o": oid}]})
        oids.append(oid)
    assert len(desk.ex.orders) == 5
    old = desk.info(type="orderStatus", user=wallet.address, oid=oids[0])
    recent = desk.info(type="orderStatus", user=wallet.address, oid=f"0x{7:032x}")
    assert old == {"status": "unknownOid"}
    assert recent["order"]["status"] == "canceled" and recent["order"]["order"]["oid"] == oids[7]


def test_a_state_file_with_a_broken_order_is_one_clear_error(tmp_path: Path) -> None:
    desk = Desk(taker_rate_per_s=0.0)
    wallet = desk.account()
    bid, _ = desk.touch()
    desk.order(wallet, True, bid - 5, "0.001", "Alo")
    path = tmp_path / "exchange-state.json"
    save_state(desk.ex, path)
    state = json.loads(path.read_text())
    state["orders"][0]["limit_px"] = "abc"
    path.write_text(json.dumps(state))
    with pytest.raises(StateError, match=r"exchange-state.json: cannot be read back"):
        load_state(Desk().ex, path)
