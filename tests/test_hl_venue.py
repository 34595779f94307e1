"""The Hyperliquid venue end to end against the local exchange, over real loopback sockets: the
venue's protocol code and the server's share nothing, so each side checks the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import eth_account
import pytest
from exchange_support import best, buy_at_market, jump_market_clock

from engine.config import Settings, StrategySettings
from engine.events import (
    BookUpdate,
    CancelAll,
    CancelOrder,
    Fill,
    FundingPayment,
    Kill,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    ReplaceQuote,
    Side,
    VenueEvent,
    Widen,
)
from engine.exchange.app import ServerThread
from engine.journal import iter_records, recover
from engine.live import LiveEngine
from engine.snapshot import EngineState
from engine.venues.hyperliquid import venue as venue_module
from engine.venues.hyperliquid import wire
from engine.venues.hyperliquid.signing import Signer
from engine.venues.hyperliquid.venue import HyperliquidVenue, cloid_of
from tui.cli import main


def local_venue(srv: ServerThread, key: Any, **options: Any) -> HyperliquidVenue:
    """The venue on the local exchange, trading for `key`'s account with `key` itself."""
    ws_url = f"ws://127.0.0.1:{srv.port}/ws"
    signer = Signer(key.key.hex())
    return HyperliquidVenue(srv.url, ws_url, signer, key.address, "BTC", mainnet=False, **options)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[ServerThread, HyperliquidVenue]]:
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        venue = local_venue(srv, key)
        await venue.start()
        try:
            yield srv, venue
        finally:
            await venue.close()


async def events_until(
    venue: HyperliquidVenue, done: Callable[[list[VenueEvent]], bool], limit_s: float = 5.0
) -> list[VenueEvent]:
    """Pull events as the shell does until `done(all so far)`."""
    seen: list[VenueEvent] = []
    deadline = asyncio.get_running_loop().time() + limit_s
    while not done(seen):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not seen within {limit_s} s: {seen[-10:]}")
        while venue.next_ts_ns < 1 << 62:
            seen.extend(venue.step())
        await asyncio.sleep(0.01)
    return seen


def touch(venue: HyperliquidVenue, seen: list[VenueEvent]) -> tuple[float, float]:
    book = [e for e in seen if isinstance(e, BookUpdate)][-1]
    return book.bids[0][0], book.asks[0][0]


def server_orders(srv: ServerThread, user: str) -> list[dict[str, object]]:
    """The account's open orders as the server holds them."""

    def read() -> list[dict[str, object]]:
        orders = srv.server.exchange.open_by_user.get(user.lower(), {})
        return [order.frontend() for order in orders.values()]

    return srv.call(read)


async def test_the_instrument_comes_from_meta_and_the_book_from_the_feed(
    setup: tuple[ServerThread, HyperliquidVenue],
) -> None:
    _, venue = setup
    assert (venue.instrument.symbol, venue.instrument.tick_size) == ("BTC", 1.0)
    assert venue.instrument.lot_size == 0.00001
    seen = await events_until(venue, lambda s: sum(isinstance(e, BookUpdate) for e in s) >= 3)
    bid, ask = touch(venue, seen)
    assert 0 < bid < ask


async def test_a_quote_rests_as_alo_with_its_cloid_and_cancels(
    setup: tuple[ServerThread, HyperliquidVenue],
) -> None:
    srv, venue = setup
    seen = await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
    bid, ask = touch(venue, seen)
    venue.submit(PlaceQuote("q1", Side.BUY, bid - 20.4, 0.001), 0)
    venue.submit(PlaceQuote("q2", Side.SELL, ask + 20.4, 0.001), 0)
    venue.submit(PlaceQuote("q3", Side.BUY, bid - 20, 0.00001), 0)  # $1: below the minimum
    seen = await events_until(venue, lambda s: sum(isinstance(e, OrderAccepted) for e in s) == 2)
    (small,) = [e for e in seen if isinstance(e, OrderRejected)]
    assert small.order_id == "q3" and "$10 minimum" in small.reason
    on_server = {o["cloid"]: o for o in server_orders(srv, venue.account)}
    assert set(on_server) == {cloid_of("q1"), cloid_of("q2")}
    assert on_server[cloid_of("q1")]["tif"] == "Alo"
    assert on_server[cloid_of("q1")]["limitPx"] == f"{int(bid - 21)}.0"  # bids round down
    assert on_server[cloid_of("q2")]["limitPx"] == f"{int(ask + 21)}.0"  # asks round up
    venue.submit(CancelOrder("q1"), 0)
    seen = await events_until(venue, lambda s: any(isinstance(e, OrderCanceled) for e in s))
    assert [e.order_id for e in seen if isinstance(e, OrderCanceled)] == ["q1"]
    venue.submit(CancelAll("test"), 0)
    await events_until(venue, lambda s: any(isinstance(e, OrderCanceled) for e in s))
    assert server_orders(srv, venue.account) == []


async def test_a_hedge_fills_as_ioc_and_the_fills_match_the_servers_account(
    setup: tuple[ServerThread, HyperliquidVenue],
) -> None:
    srv, venue = setup
    await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
    venue.submit(PlaceHedge("h1", Side.BUY, 0.002, "test"), 0)
    seen = await events_until(
        venue, lambda s: sum(e.size_base for e in s if isinstance(e, Fill)) >= 0.002 - 1e-12
    )
    fills = [e for e in seen if isinstance(e, Fill)]
    assert all(f.order_id == "h1" and not f.is_maker and f.side is Side.BUY for f in fills)
    assert fills[-1].leaves_base == 0.0
    ledger = srv.call(lambda: srv.server.exchange.ledgers[venue.account])
    assert ledger.szi == Decimal("0.002")
    fees = sum(Decimal(repr(f.fee_usd)) for f in fills)
    assert fees == ledger.fees
    assert not any(isinstance(e, OrderCanceled | OrderRejected) for e in seen)


async def test_a_dropped_feed_pulls_the_quotes_and_comes_back_with_a_fresh_book(
    setup: tuple[ServerThread, HyperliquidVenue],
) -> None:
    srv, venue = setup
    seen = await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
    bid, _ = touch(venue, seen)
    venue.submit(PlaceQuote("q1", Side.BUY, bid - 30, 0.001), 0)
    await events_until(venue, lambda s: any(isinstance(e, OrderAccepted) for e in s))
    srv.call(lambda: srv.server.inject({"fault": "ws_drop"}))
    seen = await events_until(venue, lambda s: any(isinstance(e, OrderCanceled) for e in s))
    assert [e.order_id for e in seen if isinstance(e, OrderCanceled)] == ["q1"]
    assert server_orders(srv, venue.account) == []
    await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
    assert venue.drops == 1 and venue.connected.is_set()


async def test_the_live_engine_quotes_on_the_local_exchange_and_kill_leaves_nothing() -> None:
    """The same engine the console runs, on the Hyperliquid venue: quotes rest on the server
    as ALO orders with our cloids, the kill switch leaves no order there, and the shutdown
    confirms every cancel."""
    key = eth_account.Account.create()
    fast_vol = {"vol_sample_interval_s": 0.2, "vol_min_samples": 3}
    settings = Settings(strategy=StrategySettings(symbol="BTC", **fast_vol))
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        venue = local_venue(srv, key)
        await venue.start()
        engine = LiveEngine(settings, venue=venue)
        engine.start()
        try:
            quoting = await wait_async(lambda: len(server_orders(srv, key.address)) == 2, 15)
            assert quoting, engine.snapshot.status
            orders = server_orders(srv, key.address)
            assert {o["side"] for o in orders} == {"B", "A"}
            assert all(str(o["cloid"]).startswith("0x7064") and o["tif"] == "Alo" for o in orders)
            engine.send(Kill("test"))
            assert await wait_async(lambda: server_orders(srv, key.address) == [], 5)
            assert engine.snapshot.state is EngineState.KILLED
        finally:
            left = await engine.stop()
        assert left == 0 and venue.drops == 0
        assert server_orders(srv, key.address) == []


async def test_a_replacement_the_venue_refuses_still_takes_the_old_quote_away(
    setup: tuple[ServerThread, HyperliquidVenue],
) -> None:
    """A ReplaceQuote whose new quote would cross (post-only): the venue refuses it and keeps
    the old one, so the old one is cancelled the usual way; the core hears both."""
    srv, venue = setup
    seen = await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
    bid, ask = touch(venue, seen)
    venue.submit(PlaceQuote("q1", Side.BUY, bid - 20, 0.001), 0)
    await events_until(venue, lambda s: any(isinstance(e, OrderAccepted) for e in s))
    venue.submit(ReplaceQuote("q1", PlaceQuote("q2", Side.BUY, ask + 50, 0.001)), 0)
    seen = await events_until(
        venue,
        lambda s: (
            any(isinstance(e, OrderCanceled) for e in s)
            and any(isinstance(e, OrderRejected) for e in s)
        ),
    )
    (rejected,) = [e for e in seen if isinstance(e, OrderRejected)]
    assert rejected.order_id == "q2" and "Post only" in rejected.reason
    assert [e.order_id for e in seen if isinstance(e, OrderCanceled)] == ["q1"]
    assert server_orders(srv, venue.account) == []


async def test_a_requote_is_one_batch_modify_and_the_old_quotes_are_gone() -> None:
    """Widening the spread requotes both sides at once: one batchModify (two address requests,
    where a cancel and a placement would be four), the old orders cancelled on the server, the
    new ones resting with their own cloids, and the core's orders the server's."""
    async with quoting_engine() as (srv, key, engine):
        user = key.address.lower()
        venue = engine.market
        assert await wait_async(lambda: len(server_orders(srv, key.address)) == 2, 15)
        await asyncio.sleep(0.3)  # both accepted
        before = {int(o["oid"]) for o in server_orders(srv, key.address)}
        used_before = srv.call(lambda: srv.server.exchange.requests_used[user])
        asked: list[str] = []
        info = venue._info

        async def counted(body: dict[str, Any]) -> bytes:
            asked.append(body["type"])
            return await info(body)

        venue._info = counted
        engine.send(Widen())

        def replaced() -> bool:
            now = {int(o["oid"]) for o in server_orders(srv, key.address)}
            return len(now) == 2 and not now & before

        assert await wait_async(replaced, 5)
        used = srv.call(lambda: srv.server.exchange.requests_used[user]) - used_before
        gone = srv.call(lambda: [srv.server.exchange.orders[oid].status for oid in before])
        assert gone == ["canceled", "canceled"]
        assert used == 2
        assert await wait_async(
            lambda: (
                sorted(o[0] for o in venue.resting_orders())
                == sorted(o.order_id for o in engine.quoter.working_orders())
            ),
            5,
        )
        cloids = {str(o["cloid"]) for o in server_orders(srv, key.address)}
        assert cloids == {cloid_of(o[0]) for o in venue.resting_orders()}
        assert engine.quoter.state is EngineState.QUOTING
        await asyncio.sleep(1.5)  # past the wait for the old orders' updates
        assert "orderStatus" not in asked  # their orderUpdates said how much filled


async def test_the_core_rate_budget_counts_all_the_weight_the_venue_charges() -> None:
    """The reads, the dead man's switch and the core's own orders: the core's rate budget (the
    header's API figure) never shows less than the local exchange has charged this IP."""
    async with quoting_engine() as (srv, key, engine):
        assert await wait_async(lambda: len(server_orders(srv, key.address)) == 2, 15)
        await asyncio.sleep(1.0)

        def charged() -> float:
            per_min = srv.server.settings.ip_weight_per_min
            bucket = srv.server.buckets["127.0.0.1"]
            refill = (time.monotonic() - bucket.stamp) * per_min / 60
            return per_min - min(per_min, bucket.level + refill)

        server_used = srv.call(charged)
        ours = engine.quoter.budget.used(engine.sim_now_ns())
        # the bucket refills 20 a second: what is left of the start-up reads (84) and since
        assert server_used > 10
        assert ours >= server_used
        assert ours >= 84  # meta, userFees, userRateLimit, openOrders: 20 each; 2 each else
        assert engine.snapshot.api_calls_limit == 1_200


async def test_a_low_address_budget_limits_the_core_and_says_so() -> None:
    """An account with few address requests left (userRateLimit): the core's limit shrinks to
    them, an alert says so, and no order is refused by the venue for the address budget."""

    def nearly_spent(srv: ServerThread, key: Any) -> None:
        def spend() -> None:
            user = key.address.lower()
            exchange = srv.server.exchange
            exchange.requests_used[user] = exchange.rate_cap(user) - 5

        srv.call(spend)

    async with quoting_engine(nearly_spent) as (_srv, _key, engine):
        alerts = lambda: " | ".join(a.message for a in engine.quoter.alerts)  # noqa: E731
        assert await wait_async(lambda: "venue address budget low" in alerts(), 10)
        assert engine.snapshot.api_calls_limit < 1_200
        # the switch, two quotes, a refresh: the few requests run out, quotes are held
        assert await wait_async(lambda: "quotes held back" in alerts(), 20)
        assert "Too many cumulative requests" not in alerts()


async def wait_async(condition: Callable[[], bool], limit_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + limit_s
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


def local_env(srv: ServerThread, key: Any) -> dict[str, str]:
    """The settings of a desk trading `key`'s account on the local exchange, as environment
    variables (an operator's config file says the same), with a short volatility warm-up."""
    return {
        "PERPDESK_VENUE__NAME": "hyperliquid",
        "PERPDESK_VENUE__NETWORK": "local",
        "PERPDESK_VENUE__API_URL": srv.url,
        "PERPDESK_VENUE__ACCOUNT_ADDRESS": key.address,
        "PERPDESK_VENUE__SECRET_KEY": key.key.hex(),
        "PERPDESK_STRATEGY__SYMBOL": "BTC",
        "PERPDESK_STRATEGY__VOL_SAMPLE_INTERVAL_S": "0.2",
        "PERPDESK_STRATEGY__VOL_MIN_SAMPLES": "3",
    }


@contextlib.asynccontextmanager
async def quoting_engine(
    prepare: Callable[[ServerThread, Any], None] | None = None,
) -> AsyncIterator[tuple[ServerThread, Any, LiveEngine]]:
    """A local exchange with a funded key (`prepare(server, key)` runs before the venue
    connects), and the live engine on it through the venue, stopped on the way out."""
    key = eth_account.Account.create()
    settings = Settings(strategy=StrategySettings(symbol="BTC", vol_sample_interval_s=0.2,
                                                  vol_min_samples=3))  # fmt: skip
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        if prepare is not None:
            prepare(srv, key)
        venue = local_venue(srv, key)
        await venue.start()
        engine = LiveEngine(settings, venue=venue)
        engine.start()
        try:
            yield srv, key, engine
        finally:
            await engine.stop()


def headless(srv: ServerThread, key: Any, state_dir: Path, **env: str) -> subprocess.Popen[str]:
    """`perpdesk --headless` on the local exchange as a separate process, with `key`."""
    settings = {"PYTHONUNBUFFERED": "1", **local_env(srv, key)}
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--headless", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **settings, **env},
    )


def until_quoting(srv: ServerThread, key: Any, proc: subprocess.Popen[str]) -> list[Any]:
    """Wait for a bid and an ask of ours on the server; return them."""
    deadline = time.monotonic() + 20
    while len(server_orders(srv, key.address)) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    orders = server_orders(srv, key.address)
    assert {o["side"] for o in orders} == {"B", "A"}, orders
    return orders


def quote_and_stop(srv: ServerThread, key: Any, state_dir: Path) -> None:
    """A headless session that quotes, then stops on SIGTERM with every order cancelled."""
    proc = headless(srv, key, state_dir)
    try:
        until_quoting(srv, key, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_headless_on_the_local_exchange_quotes_journals_and_leaves_nothing_on_a_signal(
    tmp_path: Path, stop: int
) -> None:
    """`perpdesk --headless` with `[venue] name = "hyperliquid"`, `network = "local"`: quotes
    rest on the server; SIGTERM, SIGHUP (the SSH window closed) or SIGINT cancels them all, the
    dead man's switch is cleared, and the journal records the exit."""
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        proc = headless(srv, key, tmp_path)
        try:
            until_quoting(srv, key, proc)
            schedule = srv.call(lambda: srv.server.exchange.schedules[key.address.lower()].at_ms)
            assert schedule is not None  # the dead man's switch is armed
        finally:
            proc.send_signal(stop)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert server_orders(srv, key.address) == []
        assert srv.call(lambda: srv.server.exchange.schedules[key.address.lower()].at_ms) is None
        assert out.splitlines()[0] == "perpdesk headless: hyperliquid BTC"
        assert "0 resting orders left at the venue" in out
        assert key.key.hex()[2:] not in out + err
    status = subprocess.run(
        [sys.executable, "-m", "tui.cli", "status", "--state-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, env={**os.environ}, check=True,
    )  # fmt: skip
    assert json.loads(status.stdout)["last_exit"] == "signal"


def test_after_kill_9_the_switch_cancels_and_a_restart_clears_what_was_left(
    tmp_path: Path,
) -> None:
    """kill -9 leaves the quotes; the dead man's switch cancels them at the venue when it
    fires. A restart before that finds them by their cloid prefix and cancels them first; the
    journal and the venue agree, nothing booked twice."""
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        proc = headless(srv, key, tmp_path, PERPDESK_VENUE__DEAD_MANS_SWITCH_S="10")
        left = until_quoting(srv, key, proc)
        proc.kill()
        proc.communicate(timeout=10)
        assert len(server_orders(srv, key.address)) == 2  # nobody cancelled them
        srv.call(lambda: srv.server.skip_ahead(11))  # the switch's time comes
        assert server_orders(srv, key.address) == []
        statuses = srv.call(
            lambda: [srv.server.exchange.orders[int(o["oid"])].status for o in left]
        )
        assert statuses == ["scheduledCancel", "scheduledCancel"]

        proc = headless(srv, key, tmp_path)  # restart: quotes again, once, from the journal
        try:
            first = until_quoting(srv, key, proc)
            proc.kill()  # killed again: these two stay, for the next start to find
            proc.communicate(timeout=10)
            proc = headless(srv, key, tmp_path)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                oids = {o["oid"] for o in server_orders(srv, key.address)}
                if len(oids) == 2 and not oids & {o["oid"] for o in first}:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(server_orders(srv, key.address))
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert server_orders(srv, key.address) == []
        gone = srv.call(lambda: [srv.server.exchange.orders[int(o["oid"])].status for o in first])
        assert gone == ["canceled", "canceled"]  # by the restart, before it quoted


def test_fills_made_while_perpdesk_was_down_are_booked_at_restart_once_each(
    tmp_path: Path,
) -> None:
    """kill -9 while quoting, then a seller sweeps through our bid before the dead man's
    switch fires: the restart fetches that fill from the venue (userFillsByTime) and books it
    by its trade id, once, through a second restart too; the journal's position is the
    venue's without any adoption at mid."""
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        proc = headless(srv, key, tmp_path, PERPDESK_VENUE__DEAD_MANS_SWITCH_S="60")
        until_quoting(srv, key, proc)
        proc.kill()
        proc.communicate(timeout=10)

        def sweep() -> None:
            srv.server.exchange.market.inject_taker(Side.SELL, 8.0, srv.server.market_ns())
            srv.server.advance()

        srv.call(sweep)
        missed = info_json(srv, {"type": "userFills", "user": key.address})
        assert missed and {f["side"] for f in missed} == {"B"}, missed
        missed_tids = {str(f["tid"]) for f in missed}

        for _ in range(2):  # the second restart must not book them again
            quote_and_stop(srv, key, tmp_path)
        journal = list(iter_records(tmp_path))
        booked = [json.loads(r[4]).get("trade_id") for r in journal if r[3] == "fill"]
        assert sorted(t for t in booked if t in missed_tids) == sorted(missed_tids)
        assert not [r for r in journal if r[3] == "reconcile"]  # nothing adopted at mid
        alerts = [json.loads(r[4])["message"] for r in journal if r[3] == "alert"]
        assert any("filled while perpdesk was down" in a for a in alerts), alerts
        state = info_json(srv, {"type": "clearinghouseState", "user": key.address})
        szi = sum(float(p["position"]["szi"]) for p in state["assetPositions"])
        funding = info_json(srv, {"type": "userFunding", "user": key.address, "startTime": 0})
        venue_funding = sum(Decimal(f["delta"]["usdc"]) for f in funding)
        # cash: what the fills cost and paid in fees, to the micro-dollar, on both sides
        venue_cash = Decimal(state["marginSummary"]["totalRawUsd"]) - DEPOSIT - venue_funding
    ledger = recover(tmp_path, time.time_ns()).ledger
    ours = ledger.cash - ledger.funding
    assert abs(Decimal(ours.numerator) / Decimal(ours.denominator) - venue_cash) < Decimal("1e-6")
    report = subprocess.run(
        [sys.executable, "-m", "tui.cli", "status", "--state-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(report.stdout)["position_base"] == pytest.approx(szi, abs=1e-9)
    assert szi != 0


async def test_a_missed_fill_is_booked_once_whether_the_feed_or_the_fetch_sees_it_first() -> None:
    """Start-up's race: an earlier session's order fills after this session's venue started but
    before its catch-up ran, so the feed hands the fill over as one of an unknown order. The
    catch-up books it with its order and drops the feed's copy; the position counts it once;
    a trade id the journal already holds is never booked again."""
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        earlier = local_venue(srv, key, dead_mans_switch_s=0)
        restarted = local_venue(srv, key, dead_mans_switch_s=0)
        await restarted.start()  # nothing of ours rests yet: nothing to clear
        await earlier.start()
        try:
            since_ms = time.time_ns() // 1_000_000 - 60_000
            bid, _ = best(srv)
            earlier.submit(PlaceQuote("s1-ab-q1", Side.BUY, float(bid - 5), 0.001), 0)
            await events_until(earlier, lambda s: any(isinstance(e, OrderAccepted) for e in s))

            def sweep() -> None:
                srv.server.exchange.market.inject_taker(Side.SELL, 8.0, srv.server.market_ns())
                srv.server.advance()

            srv.call(sweep)
            queued = await events_until(  # the feed's copy: a fill of an order it does not know
                restarted, lambda s: any(isinstance(e, Fill) for e in s)
            )
            strays = [e for e in queued if isinstance(e, Fill)]
            assert [e.order_id.startswith("hl-oid-") for e in strays] == [True] * len(strays)
            # put them back as the shell would find them at its first step (not yet handed over)
            restarted._inbox.append((restarted.clock(), strays))
            position = restarted.position_base
            assert position == pytest.approx(sum(e.size_base for e in strays))

            booked = await restarted.missed_fills(["s1-ab-q1"], since_ms, set())
            assert [(f.order_id, f.trade_id) for f in booked] == [
                ("s1-ab-q1", e.trade_id) for e in strays
            ]
            assert restarted.position_base == position  # counted once
            left: list[VenueEvent] = []
            while restarted.next_ts_ns < 1 << 62:
                left.extend(restarted.step())
            assert not [e for e in left if isinstance(e, Fill)]
            journaled = {f.trade_id for f in booked}
            assert await restarted.missed_fills(["s1-ab-q1"], since_ms, journaled) == []
        finally:
            await earlier.close()
            await restarted.close()


def test_a_second_perpdesk_on_the_same_state_dir_is_refused_before_touching_the_venue(
    tmp_path: Path,
) -> None:
    """The state directory is locked before the venue is connected: a second session on it is
    one line, exit 2, and the running one's quotes and dead man's switch are untouched."""
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        first = headless(srv, key, tmp_path)
        try:
            quotes = until_quoting(srv, key, first)
            user = key.address.lower()
            first.send_signal(signal.SIGSTOP)  # the running session holds still meanwhile
            try:
                time.sleep(0.3)  # its last requests land
                quotes = server_orders(srv, key.address)
                served = srv.call(lambda: srv.server.requests)
                second = headless(srv, key, tmp_path)
                _, err = second.communicate(timeout=30)
                assert srv.call(lambda: srv.server.requests) == served  # not one request
            finally:
                first.send_signal(signal.SIGCONT)
            assert second.returncode == 2
            assert err.startswith(f"perpdesk: state directory {tmp_path} is in use")
            assert err.count("\n") == 1
            still = {o["oid"] for o in server_orders(srv, key.address)}
            assert still == {o["oid"] for o in quotes}  # its quotes untouched
            assert srv.call(lambda: srv.server.exchange.schedules[user].at_ms) is not None
        finally:
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=30)
        assert first.returncode == 0


def test_funding_paid_while_perpdesk_was_down_is_booked_at_restart_once(tmp_path: Path) -> None:
    """perpdesk stops with a position; an hour passes and the venue pays funding on it. The next
    start books that payment (userFunding), exactly, once: a second restart does not again."""
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        buy_at_market(srv, key, "0.01")  # a position the desk adopts at its first start
        for restart in range(3):
            quote_and_stop(srv, key, tmp_path)
            if restart == 0:  # stopped, holding the position: the venue's hour goes by
                jump_market_clock(srv, 3_600)
        paid = info_json(srv, {"type": "userFunding", "user": key.address, "startTime": 0})
    assert paid, "the venue paid no funding"
    journal = [json.loads(r[4]) for r in iter_records(tmp_path) if r[3] == "funding"]
    booked = sorted(int(f["venue_ms"]) for f in journal)
    assert booked == sorted(int(p["time"]) for p in paid)  # each payment once
    ledger = recover(tmp_path, time.time_ns()).ledger
    venue_funding = sum(Decimal(p["delta"]["usdc"]) for p in paid)
    ours = Decimal(ledger.funding.numerator) / Decimal(ledger.funding.denominator)
    assert abs(ours - venue_funding) < Decimal("1e-6")


DEPOSIT = Decimal(100_000)


def info_json(srv: ServerThread, body: dict[str, Any]) -> Any:
    import httpx

    reply = httpx.post(srv.url + "/info", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_an_order_answered_late_is_resolved_by_its_cloid_not_sent_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer is lost (the client gives up before the server answers): after the order's
    signed expiry the venue asks by cloid and finds it resting; a 502 before the server did
    anything is found not placed; a 429 is a plain refusal. Nothing is resent or doubled."""
    monkeypatch.setattr(venue_module, "ORDER_TTL_MS", 1_000)
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        venue = local_venue(srv, key, timeout_s=0.15)
        await venue.start()
        try:
            seen = await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
            bid, _ = touch(venue, seen)
            srv.call(lambda: srv.server.inject({"fault": "latency", "ms": 400}))
            venue.submit(PlaceQuote("late", Side.BUY, bid - 30, 0.001), 0)
            await asyncio.sleep(0.6)  # the client gave up at 0.15 s; the server took it at 0.4
            srv.call(lambda: srv.server.inject({"fault": "latency", "ms": 0}))
            seen = await events_until(
                venue, lambda s: any(isinstance(e, OrderAccepted | OrderRejected) for e in s)
            )
            assert [e for e in seen if isinstance(e, OrderAccepted)] == [
                OrderAccepted(seen[-1].ts_ns, "late")  # type: ignore[union-attr]
            ]
            assert [o["cloid"] for o in server_orders(srv, key.address)] == [cloid_of("late")]

            srv.call(lambda: srv.server.inject({"fault": "http5xx", "count": 1}))
            venue.submit(PlaceQuote("lost", Side.BUY, bid - 31, 0.001), 0)
            seen = await events_until(venue, lambda s: any(isinstance(e, OrderRejected) for e in s))
            (lost,) = [e for e in seen if isinstance(e, OrderRejected)]
            assert lost.order_id == "lost" and "not placed" in lost.reason

            srv.call(lambda: srv.server.inject({"fault": "http429", "count": 1}))
            venue.submit(PlaceQuote("limited", Side.BUY, bid - 32, 0.001), 0)
            seen = await events_until(venue, lambda s: any(isinstance(e, OrderRejected) for e in s))
            (limited,) = [e for e in seen if isinstance(e, OrderRejected)]
            assert limited.order_id == "limited" and "429" in limited.reason
            assert [o["cloid"] for o in server_orders(srv, key.address)] == [cloid_of("late")]
        finally:
            await venue.close()


async def test_while_the_feed_is_down_quotes_wait_and_a_hedge_fill_comes_from_the_snapshot(
    setup: tuple[ServerThread, HyperliquidVenue],
) -> None:
    """A hedge sent over REST while the WebSocket is down fills at the venue; its fill reaches
    the core from the userFills snapshot of the reconnect, once. A quote is not sent on the
    old book meanwhile."""
    srv, venue = setup
    await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
    srv.call(lambda: srv.server.inject({"fault": "ws_drop"}))
    await wait_async(lambda: not venue.connected.is_set(), 5)
    venue.submit(PlaceQuote("q-down", Side.BUY, 90_000.0, 0.001), 0)
    venue.submit(PlaceHedge("h-down", Side.BUY, 0.002, "test"), 0)
    seen = await events_until(
        venue, lambda s: sum(e.size_base for e in s if isinstance(e, Fill)) >= 0.002 - 1e-12, 10
    )
    (refused,) = [e for e in seen if isinstance(e, OrderRejected)]
    assert refused.order_id == "q-down" and "feed down" in refused.reason
    fills = [e for e in seen if isinstance(e, Fill)]
    assert {f.order_id for f in fills} == {"h-down"}
    assert sum(Decimal(repr(f.size_base)) for f in fills) == Decimal("0.002")  # not twice
    ledger = srv.call(lambda: srv.server.exchange.ledgers[venue.account])
    assert Decimal(repr(venue.position_base)) == ledger.szi == Decimal("0.002")


def frames_venue() -> HyperliquidVenue:
    """A venue fed frames by hand, to put replies and pushes in the orders sockets allow."""
    key = eth_account.Account.create()
    venue = HyperliquidVenue("http://127.0.0.1:9", "ws://127.0.0.1:9/ws", Signer(key.key.hex()),
                             key.address, "BTC", mainnet=False)  # fmt: skip
    venue._fresh = True
    return venue


def drain(venue: HyperliquidVenue) -> list[VenueEvent]:
    out: list[VenueEvent] = []
    while venue.next_ts_ns < 1 << 62:
        out += venue.step()
    return out


def update_frame(cloid: str, oid: int, status: str, sz: str, orig: str) -> str:
    order = {"coin": "BTC", "side": "B", "limitPx": "99000.0", "sz": sz, "oid": oid,
             "timestamp": 1, "origSz": orig, "cloid": cloid}  # fmt: skip
    return json.dumps(
        {
            "channel": "orderUpdates",
            "data": [{"order": order, "status": status, "statusTimestamp": 1}],
        }
    )


def fill_frame(cloid: str, oid: int, tid: int, sz: str) -> str:
    fill = {"coin": "BTC", "px": "99000.0", "sz": sz, "side": "B", "time": 1,
            "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "hash": "0x0",
            "oid": oid, "crossed": False, "fee": "0.01", "tid": tid, "cloid": cloid}  # fmt: skip
    return json.dumps({"channel": "userFills", "data": {"user": "0x", "fills": [fill]}})


def test_a_cancel_racing_a_fill_reports_the_fill_before_the_order_is_gone() -> None:
    venue = frames_venue()
    ours = venue._track("q1", Side.BUY, Decimal(99000), Decimal("0.002"), False)
    venue._known(ours, 11)
    # the venue cancelled it after 0.001 filled; the orderUpdate comes before the fill
    venue._on_frame(update_frame(ours.cloid, 11, "canceled", "0.001", "0.002"))
    assert drain(venue) == []
    venue._on_frame(fill_frame(ours.cloid, 11, 501, "0.001"))
    events = drain(venue)
    assert [type(e).__name__ for e in events] == ["Fill", "OrderCanceled"]
    venue._on_frame(fill_frame(ours.cloid, 11, 501, "0.001"))  # the same fill again
    assert drain(venue) == []


def test_a_post_only_reject_pushed_before_the_reply_is_a_reject_once() -> None:
    venue = frames_venue()
    ours = venue._track("q2", Side.BUY, Decimal(99000), Decimal("0.001"), False)
    venue._on_frame(update_frame(ours.cloid, 12, "badAloPxRejected", "0.001", "0.001"))
    reply = wire.ExchangeReply(
        True, "order", statuses=[wire.StatusError("Post only order would have immediately matched")]
    )
    venue._emit(venue._order_outcomes([ours], reply))
    events = drain(venue)
    assert [type(e).__name__ for e in events] == ["OrderRejected"]


async def test_the_dead_mans_switch_outlives_a_5xx_and_is_left_armed_if_orders_may_remain() -> None:
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        venue = local_venue(srv, key, dead_mans_switch_s=10.0)
        await venue.start()
        schedule = lambda: srv.call(  # noqa: E731
            lambda: srv.server.exchange.schedules[venue.account].at_ms
        )
        try:
            assert await wait_async(lambda: venue.switch == "armed", 5)
            first = schedule()
            srv.call(lambda: srv.server.inject({"fault": "http5xx", "count": 2}))
            assert await wait_async(lambda: (schedule() or 0) > first, 10)  # re-armed after it
            assert venue.switch == "armed"
            seen = await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
            bid, _ = touch(venue, seen)
            venue.submit(PlaceQuote("kept", Side.BUY, bid - 40, 0.001), 0)
            await events_until(venue, lambda s: any(isinstance(e, OrderAccepted) for e in s))
        finally:
            await venue.close()  # closed with an order still resting: the switch stays armed
        assert server_orders(srv, key.address) != []
        assert schedule() is not None
        srv.call(lambda: srv.server.skip_ahead(7))
        assert server_orders(srv, key.address) == []


def test_an_unreachable_venue_is_one_line_and_journals_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = eth_account.Account.create()
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {
        "PERPDESK_VENUE__NAME": "hyperliquid",
        "PERPDESK_VENUE__NETWORK": "local",
        "PERPDESK_VENUE__API_URL": f"http://127.0.0.1:{port}",
        "PERPDESK_VENUE__ACCOUNT_ADDRESS": key.address,
        "PERPDESK_VENUE__SECRET_KEY": key.key.hex(),
        "PERPDESK_STRATEGY__SYMBOL": "BTC",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for screen in ([], ["--headless"]):  # the console and headless alike
        assert main([*screen, "--state-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(
            f"perpdesk: local at http://127.0.0.1:{port}: cannot read the BTC market"
        )
        assert err.count("\n") == 1 and key.key.hex()[2:] not in err
        assert not (tmp_path / "journal.sqlite").exists()


async def test_an_order_off_the_book_waits_for_its_update_before_asking_the_venue() -> None:
    """A cancel or a replacement answered "success" says nothing of fills: the orderUpdate that
    follows does. orderStatus is asked only if that update does not come within a second (each
    ask weighs 2 of the 1,200 a minute: one per cancelled quote would outweigh the quoting)."""
    venue = frames_venue()
    ours = venue._track("q1", Side.BUY, Decimal(99000), Decimal("0.002"), False)
    venue._known(ours, 11)
    assert venue._ended(ours, None) == []  # the cancel's reply
    await asyncio.sleep(0.1)
    venue._on_frame(update_frame(ours.cloid, 11, "canceled", "0.002", "0.002"))
    assert [type(e).__name__ for e in drain(venue)] == ["OrderCanceled"]
    await asyncio.sleep(1.2)
    assert not [e for e in venue.errors if "orderStatus" in e]  # never asked (nothing listens)
    assert drain(venue) == []
    await venue.http.aclose()


def test_a_funding_hour_that_paid_nothing_is_no_event_and_a_payment_is_one() -> None:
    """A zero rate (or no position) pays nothing: no event (a mark of 0 would be refused by the
    gate, which stops the engine); a real payment is one FundingPayment at the venue's time."""
    venue = frames_venue()

    def funding(usdc: str, rate: str) -> str:
        payment = {"time": 1737921600000, "coin": "BTC", "usdc": usdc, "szi": "0.1",
                   "fundingRate": rate}  # fmt: skip
        return json.dumps({"channel": "user", "data": {"funding": payment}})

    venue._on_frame(funding("0.0", "0.0"))
    assert drain(venue) == []
    venue._on_frame(funding("-0.1313", "0.0000125"))
    (paid,) = drain(venue)
    assert isinstance(paid, FundingPayment) and paid.ts_ns == 1737921600000 * 1_000_000
    assert -0.1 * paid.mark_price * paid.rate == pytest.approx(-0.1313)


async def test_a_kill_and_a_requote_in_one_batch_leave_nothing_resting(
    setup: tuple[ServerThread, HyperliquidVenue],
) -> None:
    """The kill's cancel-all and a refresh's replacement reach the sender together: the
    cancel-all goes first, and the successor of a quote it took away is not placed."""
    srv, venue = setup
    seen = await events_until(venue, lambda s: any(isinstance(e, BookUpdate) for e in s))
    bid, _ = touch(venue, seen)
    venue.submit(PlaceQuote("q1", Side.BUY, bid - 20, 0.001), 0)
    await events_until(venue, lambda s: any(isinstance(e, OrderAccepted) for e in s))
    venue.submit(CancelAll("kill"), 0)  # both queued before the sender wakes: one batch
    venue.submit(ReplaceQuote("q1", PlaceQuote("q2", Side.BUY, bid - 10, 0.001)), 0)
    seen = await events_until(
        venue,
        lambda s: (
            any(isinstance(e, OrderCanceled) for e in s)
            and any(isinstance(e, OrderRejected) for e in s)
        ),
    )
    assert [e.order_id for e in seen if isinstance(e, OrderRejected)] == ["q2"]
    assert [e.order_id for e in seen if isinstance(e, OrderCanceled)] == ["q1"]
    await asyncio.sleep(0.3)
    assert server_orders(srv, venue.account) == []


async def test_funding_paid_while_running_is_booked_once_though_start_up_asks_too() -> None:
    """A restart on the hour: the payment comes on the feed and in userFunding. Whichever
    comes first, it is handed over once."""
    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        buy_at_market(srv, key, "0.01")
        venue = local_venue(srv, key, dead_mans_switch_s=0)
        await venue.start()
        try:
            await asyncio.sleep(0.5)  # every subscription taken (the book's comes first)
            jump_market_clock(srv, 3_600)  # the hour: the venue pays, and pushes it
            seen = await events_until(
                venue, lambda s: any(isinstance(e, FundingPayment) for e in s)
            )
            queued = [e for e in seen if isinstance(e, FundingPayment)]
            venue._inbox.append((venue.clock(), list(queued)))  # not yet handed to the core
            assert await venue.missed_funding(0, set()) == []  # the feed's copy stands
            left = drain(venue)
            assert [e for e in left if isinstance(e, FundingPayment)] == queued
            # and the other way round: an hour the start-up booked is not handed over again
            hour = queued[0].ts_ns // 3_600_000_000_000
            venue._paid_hours = {hour}
            payment = {"time": queued[0].ts_ns // 1_000_000, "coin": "BTC", "usdc": "-0.1",
                       "szi": "0.01", "fundingRate": "0.0001"}  # fmt: skip
            venue._on_frame(json.dumps({"channel": "user", "data": {"funding": payment}}))
            assert [e for e in drain(venue) if isinstance(e, FundingPayment)] == []
        finally:
            await venue.close()
