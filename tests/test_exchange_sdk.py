"""The official hyperliquid-python-sdk, unchanged, against the local exchange over real
loopback sockets: reads, orders and their errors, cancels, modify, bulk orders, the dead
man's switch, leverage, agent wallets, nonces and the WebSocket manager; then two accounts
trading with each other and the background flow, with every account's equity explained to
the last micro-dollar by its fills, fees and funding, and the books balancing."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import eth_account
import hyperliquid.exchange
import pytest
from exchange_support import (
    DEPOSIT,
    HOUR_NS,
    funded,
    jump_market_clock,
    new_key,
    wait_for,
)
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import CancelRequest, Cloid, OrderRequest

from engine.exchange.app import ServerThread

ALO: Any = {"limit": {"tif": "Alo"}}
IOC: Any = {"limit": {"tif": "Ioc"}}
GTC: Any = {"limit": {"tif": "Gtc"}}
SZ = 0.001
MAKER = Decimal("0.00015")
TAKER = Decimal("0.00045")


def usdc(value: Decimal) -> Decimal:
    """To the micro-dollar, as USDC amounts are booked (written here, not taken from the server)."""
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


# The SDK's Info() alone costs 40 of the 1200 IP weight a minute; these tests are not about it.
ROOMY = {"ip_weight_per_min": 1_000_000}


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread(**ROOMY) as server:
        yield server


@pytest.fixture(scope="module")
def info(srv: ServerThread) -> Info:
    return Info(srv.url, skip_ws=True)


def book(info: Info) -> tuple[int, int]:
    levels = info.l2_snapshot("BTC")["levels"]
    return int(Decimal(levels[0][0]["px"])), int(Decimal(levels[1][0]["px"]))


def statuses(reply: dict[str, Any]) -> list[Any]:
    assert reply["status"] == "ok", reply
    return list(reply["response"]["data"]["statuses"])


def only(reply: dict[str, Any]) -> Any:
    (status,) = statuses(reply)
    return status


def resting_oid(reply: dict[str, Any]) -> int:
    status = only(reply)
    assert "resting" in status, status
    return int(status["resting"]["oid"])


def open_oids(info: Info, address: str) -> set[int]:
    return {o["oid"] for o in info.open_orders(address)}


# ---- reads -------------------------------------------------------------------------------------


def test_info_reads_meta_book_mids_and_user_state(srv: ServerThread, info: Info) -> None:
    meta = info.meta()
    assert meta["universe"][0]["name"] == "BTC"
    assert meta["universe"][0]["szDecimals"] == 5
    assert info.name_to_asset("BTC") == 0

    snapshot = info.l2_snapshot("BTC")
    assert snapshot["coin"] == "BTC" and isinstance(snapshot["time"], int)
    bids, asks = snapshot["levels"]
    assert bids and asks
    bid_pxs = [Decimal(level["px"]) for level in bids]
    ask_pxs = [Decimal(level["px"]) for level in asks]
    assert bid_pxs == sorted(bid_pxs, reverse=True) and ask_pxs == sorted(ask_pxs)
    assert bid_pxs[0] < ask_pxs[0]
    assert all(isinstance(level["sz"], str) and isinstance(level["n"], int) for level in bids)

    mids = info.all_mids()
    assert set(mids) == {"BTC"} and Decimal(mids["BTC"]) > 0
    meta_again, ctxs = info.meta_and_asset_ctxs()
    assert meta_again["universe"] == meta["universe"] and Decimal(ctxs[0]["markPx"]) > 0

    key = funded(srv)
    state = info.user_state(key.address)
    assert state["assetPositions"] == []
    assert Decimal(state["marginSummary"]["accountValue"]) == DEPOSIT
    assert Decimal(state["withdrawable"]) == DEPOSIT
    stranger = info.user_state(new_key().address)
    assert Decimal(stranger["marginSummary"]["accountValue"]) == 0


# ---- orders ------------------------------------------------------------------------------------


def test_alo_rests_is_listed_and_cancels_by_oid_and_by_cloid(srv: ServerThread, info: Info) -> None:
    key = funded(srv)
    ex = Exchange(key, srv.url)
    bid, _ = book(info)

    oid = resting_oid(ex.order("BTC", True, SZ, bid - 50, ALO))
    listed = info.open_orders(key.address)
    assert [(o["oid"], o["side"], o["limitPx"], o["sz"]) for o in listed] == [
        (oid, "B", f"{bid - 50}.0", "0.001")
    ]
    (front,) = info.frontend_open_orders(key.address)
    assert front["oid"] == oid and front["tif"] == "Alo" and front["orderType"] == "Limit"
    assert front["reduceOnly"] is False and front["origSz"] == "0.001"
    assert info.query_order_by_oid(key.address, oid)["order"]["status"] == "open"

    assert only(ex.cancel("BTC", oid)) == "success"
    assert open_oids(info, key.address) == set()
    assert info.query_order_by_oid(key.address, oid)["order"]["status"] == "canceled"
    again = only(ex.cancel("BTC", oid))
    assert again["error"].startswith("Order was never placed, already canceled, or filled.")

    cloid = Cloid.from_int(0xC10D)
    status = only(ex.order("BTC", False, SZ, book(info)[1] + 50, ALO, cloid=cloid))
    assert status["resting"]["cloid"] == cloid.to_raw()
    by_cloid = info.query_order_by_cloid(key.address, cloid)
    assert by_cloid["status"] == "order"
    assert by_cloid["order"]["order"]["oid"] == status["resting"]["oid"]
    assert by_cloid["order"]["order"]["cloid"] == cloid.to_raw()
    assert info.frontend_open_orders(key.address)[0]["cloid"] == cloid.to_raw()

    assert only(ex.cancel_by_cloid("BTC", cloid)) == "success"
    assert open_oids(info, key.address) == set()
    assert info.query_order_by_cloid(key.address, cloid)["order"]["status"] == "canceled"
    assert "error" in only(ex.cancel_by_cloid("BTC", cloid))
    assert info.query_order_by_oid(key.address, 987654321) == {"status": "unknownOid"}


def test_order_errors_come_per_order_with_hyperliquids_strings(
    srv: ServerThread, info: Info
) -> None:
    key = funded(srv)
    ex = Exchange(key, srv.url)
    bid, ask = book(info)

    crossing = only(ex.order("BTC", True, SZ, ask + 5, ALO))["error"]
    match = re.fullmatch(
        r"Post only order would have immediately matched, bbo was (\d+)\.0@(\d+)\.0\. asset=0",
        crossing,
    )
    assert match, crossing
    assert int(match[1]) < int(match[2])

    off_grid = only(ex.order("BTC", True, SZ, bid - 5.5, ALO))["error"]
    assert off_grid.startswith("Price must be divisible by tick size.")
    too_small = only(ex.order("BTC", True, 0.00005, bid - 5, ALO))["error"]
    assert too_small.startswith("Order must have minimum value of $10.")
    reduce_only = only(ex.order("BTC", False, SZ, ask + 50, ALO, reduce_only=True))["error"]
    assert reduce_only.startswith("Reduce only order would increase position.")
    nothing = only(ex.order("BTC", True, SZ, bid - 100, IOC))["error"]
    assert nothing.startswith("Order could not immediately match against any resting orders.")
    # nothing of it rests
    assert open_oids(info, key.address) == set()

    stranger = new_key()
    refused = Exchange(stranger, srv.url).order("BTC", True, SZ, bid - 50, ALO)
    assert refused == {
        "status": "err",
        "response": f"L1 error: User or API Wallet {stranger.address.lower()} does not exist.",
    }


def test_ioc_that_crosses_fills_and_shows_in_fills_and_state(srv: ServerThread, info: Info) -> None:
    key = funded(srv)
    ex = Exchange(key, srv.url)
    _, ask = book(info)

    filled = only(ex.order("BTC", True, SZ, ask + 50, IOC))["filled"]
    assert Decimal(filled["totalSz"]) == Decimal("0.001")
    avg = Decimal(filled["avgPx"])
    assert avg <= ask + 50
    oid = filled["oid"]
    assert info.query_order_by_oid(key.address, oid)["order"]["status"] == "filled"

    fills = info.user_fills(key.address)
    assert fills and {f["oid"] for f in fills} == {oid}
    assert all(f["side"] == "B" and f["crossed"] is True for f in fills)
    assert sum(Decimal(f["sz"]) for f in fills) == Decimal("0.001")
    for fill in fills:
        assert Decimal(fill["fee"]) == usdc(Decimal(fill["px"]) * Decimal(fill["sz"]) * TAKER)
    assert fills[-1]["dir"] == "Open Long" and fills[-1]["startPosition"] == "0.0"

    state = info.user_state(key.address)
    (position,) = [p["position"] for p in state["assetPositions"]]
    assert position["coin"] == "BTC" and Decimal(position["szi"]) == Decimal("0.001")
    assert Decimal(position["entryPx"]) == avg
    fees = sum(Decimal(f["fee"]) for f in fills)
    paid = sum(Decimal(f["px"]) * Decimal(f["sz"]) for f in fills)
    assert Decimal(state["marginSummary"]["totalRawUsd"]) == DEPOSIT - paid - fees


def test_modify_and_bulk_orders(srv: ServerThread, info: Info) -> None:
    key = funded(srv)
    ex = Exchange(key, srv.url)
    bid, ask = book(info)
    far_bid, far_ask = bid - 200, ask + 200
    orders: list[OrderRequest] = [
        {"coin": "BTC", "is_buy": True, "sz": SZ, "limit_px": far_bid, "order_type": ALO,
         "reduce_only": False},
        {"coin": "BTC", "is_buy": False, "sz": 0.002, "limit_px": far_ask, "order_type": ALO,
         "reduce_only": False},
        {"coin": "BTC", "is_buy": True, "sz": SZ, "limit_px": far_bid + 0.5, "order_type": ALO,
         "reduce_only": False},
    ]  # fmt: skip
    first, second, third = statuses(ex.bulk_orders(orders))
    assert "error" in third and third["error"].startswith("Price must be divisible by tick size.")
    buy_oid, sell_oid = first["resting"]["oid"], second["resting"]["oid"]
    assert open_oids(info, key.address) == {buy_oid, sell_oid}

    modified = only(ex.modify_order(buy_oid, "BTC", True, 0.002, far_bid - 10, ALO))
    new_oid = modified["resting"]["oid"]
    by_oid = {o["oid"]: o for o in info.open_orders(key.address)}
    assert set(by_oid) == {new_oid, sell_oid}
    assert by_oid[new_oid]["limitPx"] == f"{far_bid - 10}.0" and by_oid[new_oid]["sz"] == "0.002"
    stale = only(ex.modify_order(buy_oid, "BTC", True, SZ, far_bid, ALO))
    assert stale == {"error": "Cannot modify canceled or filled order"}

    cancels: list[CancelRequest] = [
        {"coin": "BTC", "oid": new_oid},
        {"coin": "BTC", "oid": sell_oid},
    ]
    assert statuses(ex.bulk_cancel(cancels)) == ["success", "success"]
    assert open_oids(info, key.address) == set()


def test_update_leverage_sets_the_margin_an_order_needs(srv: ServerThread, info: Info) -> None:
    key = funded(srv)
    ex = Exchange(key, srv.url)
    bid, _ = book(info)
    big = 1.5  # ~150,000 USD of BTC on a 100,000 USD account

    assert ex.update_leverage(1, "BTC") == {"status": "ok", "response": {"type": "default"}}
    refused = only(ex.order("BTC", True, big, bid - 1000, ALO))["error"]
    assert refused.startswith("Insufficient margin to place order.")
    assert ex.update_leverage(10, "BTC")["status"] == "ok"
    oid = resting_oid(ex.order("BTC", True, big, bid - 1000, ALO))
    assert only(ex.cancel("BTC", oid)) == "success"
    assert ex.update_leverage(500, "BTC")["status"] == "err"

    _, ask = book(info)
    assert "filled" in only(ex.order("BTC", True, SZ, ask + 50, IOC))
    (position,) = [p["position"] for p in info.user_state(key.address)["assetPositions"]]
    assert position["leverage"] == {"type": "cross", "value": 10}
    assert Decimal(position["marginUsed"]) == usdc(Decimal(position["positionValue"]) / 10)


def test_schedule_cancel_refuses_a_near_time_and_fires_on_the_market_clock() -> None:
    # 20x market clock: the 5 s the switch needs pass in a quarter of a second; times are set
    # 15 s ahead, leaving 10 s of market time (half a second) for the request to arrive
    with ServerThread(speed=20.0, **ROOMY) as srv:
        key = funded(srv)
        info = Info(srv.url, skip_ws=True)
        ex = Exchange(key, srv.url)
        bid, ask = book(info)
        resting = {
            resting_oid(ex.order("BTC", True, SZ, bid - 2000, ALO)),
            resting_oid(ex.order("BTC", False, SZ, ask + 2000, ALO)),
        }

        now = info.l2_snapshot("BTC")["time"]  # the market clock
        early = ex.schedule_cancel(now + 1000)
        assert early["status"] == "err" and "at least 5 seconds" in early["response"]
        assert open_oids(info, key.address) == resting

        now = info.l2_snapshot("BTC")["time"]
        assert ex.schedule_cancel(now + 15_000) == {"status": "ok", "response": {"type": "default"}}
        wait_for(lambda: not open_oids(info, key.address))
        assert info.l2_snapshot("BTC")["time"] >= now + 15_000
        for oid in resting:
            assert info.query_order_by_oid(key.address, oid)["order"]["status"] == "scheduledCancel"

        # cleared before it fires: nothing is cancelled
        oid = resting_oid(ex.order("BTC", True, SZ, bid - 2000, ALO))
        now = info.l2_snapshot("BTC")["time"]
        assert ex.schedule_cancel(now + 15_000)["status"] == "ok"
        assert ex.schedule_cancel(None)["status"] == "ok"
        wait_for(lambda: info.l2_snapshot("BTC")["time"] > now + 16_000)
        assert open_oids(info, key.address) == {oid}


# ---- signers -----------------------------------------------------------------------------------


def test_an_approved_agent_trades_for_its_master(srv: ServerThread, info: Info) -> None:
    master = funded(srv)
    agent_key = new_key()
    bid, _ = book(info)
    before = Exchange(agent_key, srv.url, account_address=master.address)
    refused = before.order("BTC", True, SZ, bid - 50, ALO)
    assert refused["status"] == "err" and "does not exist" in refused["response"]

    approved, secret = Exchange(master, srv.url).approve_agent()
    assert approved == {"status": "ok", "response": {"type": "default"}}
    agent = eth_account.Account.from_key(secret)
    ex = Exchange(agent, srv.url, account_address=master.address)
    oid = resting_oid(ex.order("BTC", True, SZ, bid - 50, ALO))
    assert open_oids(info, master.address) == {oid}
    assert info.open_orders(agent.address) == []
    assert only(ex.cancel("BTC", oid)) == "success"

    # an agent cannot approve agents: it holds no funds of its own
    again, _ = ex.approve_agent()
    assert (
        again["status"] == "err" and "Must deposit before performing actions" in again["response"]
    )


def test_nonces_are_refused_when_reused_or_out_of_window(
    srv: ServerThread, info: Info, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, other = funded(srv), funded(srv)
    ex, ex_other = Exchange(key, srv.url), Exchange(other, srv.url)
    bid, _ = book(info)
    fixed = time.time_ns() // 1_000_000 + 7
    monkeypatch.setattr(hyperliquid.exchange, "get_timestamp_ms", lambda: fixed)

    oid = resting_oid(ex.order("BTC", True, SZ, bid - 60, ALO))
    duplicate = ex.order("BTC", True, SZ, bid - 61, ALO)
    assert duplicate == {"status": "err", "response": f"Invalid nonce: duplicate nonce {fixed}"}
    # nonces belong to the signer: another account may use the same number
    other_oid = resting_oid(ex_other.order("BTC", True, SZ, bid - 60, ALO))

    day_ms = 86_400_000
    monkeypatch.setattr(hyperliquid.exchange, "get_timestamp_ms", lambda: fixed - 3 * day_ms)
    old = ex.order("BTC", True, SZ, bid - 62, ALO)
    assert old["status"] == "err" and old["response"].startswith("Invalid nonce")
    monkeypatch.setattr(hyperliquid.exchange, "get_timestamp_ms", lambda: fixed + 2 * day_ms)
    ahead = ex.order("BTC", True, SZ, bid - 63, ALO)
    assert ahead["status"] == "err" and ahead["response"].startswith("Invalid nonce")
    assert open_oids(info, key.address) == {oid}

    monkeypatch.setattr(hyperliquid.exchange, "get_timestamp_ms", lambda: fixed + 1)
    assert only(ex.cancel("BTC", oid)) == "success"
    monkeypatch.setattr(hyperliquid.exchange, "get_timestamp_ms", lambda: fixed + 2)
    assert only(ex_other.cancel("BTC", other_oid)) == "success"


# ---- the WebSocket manager ---------------------------------------------------------------------


def test_websocket_manager_receives_l2book_and_user_fills(srv: ServerThread) -> None:
    key = funded(srv)
    books: list[Any] = []
    fills: list[Any] = []
    ws_info = Info(srv.url, skip_ws=False)
    try:
        ws_info.subscribe({"type": "l2Book", "coin": "BTC"}, books.append)
        ws_info.subscribe({"type": "userFills", "user": key.address}, fills.append)
        wait_for(lambda: books and fills)
        assert books[0]["channel"] == "l2Book" and books[0]["data"]["coin"] == "BTC"
        bids, asks = books[0]["data"]["levels"]
        assert Decimal(bids[0]["px"]) < Decimal(asks[0]["px"])
        assert fills[0]["data"] == {"isSnapshot": True, "user": key.address.lower(), "fills": []}

        _, ask = book(ws_info)
        oid = only(Exchange(key, srv.url).order("BTC", True, SZ, ask + 50, IOC))["filled"]["oid"]
        pushed = wait_for(lambda: [m for m in fills[1:] if m["data"]["fills"]])
        assert "isSnapshot" not in pushed[0]["data"]
        assert {f["oid"] for m in pushed for f in m["data"]["fills"]} == {oid}
        count = len(books)
        wait_for(lambda: len(books) > count)  # the book keeps coming
    finally:
        ws_info.disconnect_websocket()


# ---- two accounts, the background flow, and the books ------------------------------------------


def cash_flows(fills: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    """(sum of -side*px*sz - fee, sum of side*sz) over fills."""
    cash = size = Decimal(0)
    for fill in fills:
        sign = 1 if fill["side"] == "B" else -1
        px, sz = Decimal(fill["px"]), Decimal(fill["sz"])
        cash += -sign * px * sz - Decimal(fill["fee"])
        size += sign * sz
    return cash, size


def test_two_accounts_trade_with_each_other_and_the_background_and_the_books_balance() -> None:
    with ServerThread(**ROOMY) as srv:
        a, b = funded(srv), funded(srv)
        info = Info(srv.url, skip_ws=True)
        ex_a, ex_b = Exchange(a, srv.url), Exchange(b, srv.url)

        # A rests a sell inside the background's spread; B's IOC at that price can only meet
        # it (unless the background moved in between: then cancel what is left and retry)
        for _ in range(20):
            bid, ask = book(info)
            if ask - bid < 2:
                time.sleep(0.01)
                continue
            px = ask - 1
            oid_a = resting_oid(ex_a.order("BTC", False, SZ, px, ALO))
            taken = only(ex_b.order("BTC", True, SZ, px, IOC)).get("filled", {})
            maker = [f for f in info.user_fills(a.address) if f["oid"] == oid_a]
            taker = [f for f in info.user_fills(b.address) if f["oid"] == taken.get("oid")]
            if len(maker) == len(taker) == 1 and taken["totalSz"] == "0.001":
                break
            ex_a.cancel("BTC", oid_a)
        else:
            pytest.fail("never crossed A's order with B's")
        assert [(f["side"], f["px"], f["sz"], f["crossed"]) for f in maker] == [
            ("A", f"{px}.0", "0.001", False)
        ]
        assert [(f["side"], f["px"], f["sz"], f["crossed"]) for f in taker] == [
            ("B", f"{px}.0", "0.001", True)
        ]
        assert info.query_order_by_oid(a.address, oid_a)["order"]["status"] == "filled"
        assert Decimal(maker[0]["fee"]) == usdc(px * Decimal("0.001") * MAKER)
        # between the two accounts, size and money net out (fees aside)
        (cash_m, size_m), (cash_t, size_t) = cash_flows(maker), cash_flows(taker)
        assert size_m + size_t == 0
        assert cash_m + cash_t == -(Decimal(maker[0]["fee"]) + Decimal(taker[0]["fee"]))

        # both trade with the background: takers now, makers over the next market hour (sizes
        # such that the two positions never cancel out, however the makers fare)
        bid, ask = book(info)
        assert "filled" in only(ex_a.order("BTC", True, 0.002, ask + 100, IOC))
        assert "filled" in only(ex_b.order("BTC", False, 0.004, bid - 100, IOC))
        bid, ask = book(info)
        ex_a.order("BTC", True, SZ, bid - 20, ALO)
        ex_b.order("BTC", False, SZ, ask + 20, GTC)
        jump_market_clock(srv, HOUR_NS / 1e9 + 1)  # funding is paid on the hour
        wait_for(lambda: info.user_funding_history(a.address, 0))
        for ex, key in ((ex_a, a), (ex_b, b)):  # nothing rests: positions hold still from here
            for order in info.open_orders(key.address):
                ex.cancel("BTC", order["oid"])
            assert info.open_orders(key.address) == []

        accounts = [a.address, b.address]
        total_szi = total_fill_size = Decimal(0)
        for address in accounts:
            fills = info.user_fills(address)
            funding = info.user_funding_history(address, 0)
            state = info.user_state(address)
            assert funding, address  # both hold a position through the hour
            paid = sum(Decimal(f["delta"]["usdc"]) for f in funding)
            cash_from_fills, size = cash_flows(fills)
            summary = state["marginSummary"]
            (position,) = [p["position"] for p in state["assetPositions"]]
            szi = Decimal(position["szi"])
            assert szi == size
            assert Decimal(summary["totalRawUsd"]) == DEPOSIT + cash_from_fills + paid
            for f in funding:  # a long pays a positive rate, a short receives it
                assert (Decimal(f["delta"]["usdc"]) < 0) == (Decimal(f["delta"]["szi"]) > 0)
            # equity = cash + szi * mark, the mark being what positionValue was priced at
            mark = Decimal(position["positionValue"]) / abs(szi)
            equity = Decimal(summary["accountValue"])
            assert equity - DEPOSIT == cash_from_fills + paid + szi * mark
            total_szi += szi
            total_fill_size += size

        # the market's own record of each account (lots, kept apart from the ledgers) agrees,
        # and what the accounts hold together is what the background flow gave up
        def engine_positions() -> dict[str, Decimal]:
            market = srv.server.market
            lot = srv.server.exchange.lot
            return {addr: market.account(addr.lower()).position_lots * lot for addr in accounts}

        held = srv.call(engine_positions)
        assert sum(held.values()) == total_szi == total_fill_size
        for address in accounts:
            state = info.user_state(address)
            assert held[address] == Decimal(state["assetPositions"][0]["position"]["szi"])
        # (the background flow, which keeps no account, took -total_szi: A's trade with B nets
        # out above, so every other fill met the background)
        assert total_szi != 0
