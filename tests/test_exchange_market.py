"""The embedded market with several accounts: one book, price-time priority across accounts,
self-trade prevention, limit orders with a time in force, and private events routed to their
account. The single-account market (the console's) must not change by a single event.

The exact market of test_sim_market: fair price pinned at $100,000, no background takers,
every level 1.0 BTC; bids 99,999.9 .. 99,999.5, asks 100,000.1 .. 100,000.5, then every $3.
"""

from __future__ import annotations

import hashlib
import random

from test_sim_market import exact_market

from engine.events import (
    BookUpdate,
    CancelAll,
    CancelOrder,
    Fill,
    FundingPayment,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    Side,
    Trade,
    VenueEvent,
)
from engine.sim import SimMarket, SimParams
from engine.sim.market import LimitOrder

BUY, SELL = Side.BUY, Side.SELL
A, B = "0xaaaa", "0xbbbb"
S = 1_000_000_000


def private(market: SimMarket, account: str) -> list[tuple[VenueEvent, str]]:
    """Drain `account`'s private events (and only its) from the outbox."""
    mine = [(e, note) for who, e, note in market.outbox if who == account]
    market.outbox[:] = [item for item in market.outbox if item[0] != account]
    return mine


def limit(order_id: str, side: Side, price: float, size: float, tif: str) -> LimitOrder:
    return LimitOrder(order_id, side, round(price / 0.1), round(size / 0.00001), tif)


def test_the_single_account_stream_is_unchanged_by_the_multi_account_market() -> None:
    """A scripted session with every fault on (latency, rejects, refused cancels, spikes, feed
    gaps, funding), quotes, cancels, hedges, cancel-alls and injected takers: the digest of
    every event was taken with the market as it was before it had accounts, and taken again
    when the book that moves through a quote began to go out before the fill it causes (the
    stream was checked to be the old one plus those books, and nothing else)."""
    params = SimParams(seed=2, latency_ms=5, reject_rate=0.1, cancel_fail_rate=0.2,
                       funding_enabled=True, latency_spike_rate=0.05,
                       feed_gap_rate_per_hour=30)  # fmt: skip
    market = SimMarket(params)
    rng = random.Random(2)
    digest = hashlib.sha256()
    oid = 0
    live: list[str] = []
    mid = params.start_price_usd
    while market.next_ts_ns < 2 * 3600 * S:
        for e in market.step():
            text = repr(e)
            if isinstance(e, Fill):  # pinned before fills had a trade id and a venue mid
                assert e.trade_id == "" and e.venue_mid is None
                text = text.replace(", trade_id='', venue_mid=None", "")
            digest.update(text.encode())
            if isinstance(e, BookUpdate) and e.bids and e.asks:
                mid = (e.bids[0][0] + e.asks[0][0]) / 2
            done = isinstance(e, OrderCanceled | OrderRejected) or (
                isinstance(e, Fill) and e.leaves_base == 0
            )
            if done and e.order_id in live:  # type: ignore[union-attr]
                live.remove(e.order_id)  # type: ignore[union-attr]
        r = rng.random()
        if r < 0.02:
            oid += 1
            side = BUY if rng.random() < 0.5 else SELL
            off = rng.randint(-3, 30) * 0.1
            px = round(round((mid - side * off) / 0.1) * 0.1, 1)
            size = rng.choice([0.001, 0.002, 0.0005])
            market.submit(PlaceQuote(f"q{oid}", side, px, size), market.now_ns)
            live.append(f"q{oid}")
        elif r < 0.03 and live:
            market.submit(CancelOrder(rng.choice(live)), market.now_ns)
        elif r < 0.032:
            oid += 1
            side = BUY if rng.random() < 0.5 else SELL
            market.submit(PlaceHedge(f"h{oid}", side, rng.choice([0.01, 0.5, 3.0]), "t"),
                          market.now_ns)  # fmt: skip
        elif r < 0.0325:
            market.submit(CancelAll("t"), market.now_ns)
        elif r < 0.033:
            market.inject_taker(BUY if rng.random() < 0.5 else SELL, 0.7, market.now_ns)
    digest.update(repr((market.cash_usd, market.position_base, market.resting_orders())).encode())
    assert digest.hexdigest() == "7a18755ea8b001199bd23a78b2ea58d010183cbd942115bd41b19aa700a5ad90"
    assert market.outbox == []


def test_orders_of_two_accounts_at_one_price_fill_in_time_order_behind_the_crowd() -> None:
    market = exact_market()
    market.execute(limit("a1", BUY, 99_999.9, 0.5, "Alo"), A)
    market.execute(limit("b1", BUY, 99_999.9, 0.5, "Alo"), B)
    assert [e for e, _ in private(market, A)] == [OrderAccepted(0, "a1")]
    assert [e for e, _ in private(market, B)] == [OrderAccepted(0, "b1")]
    market.inject_taker(SELL, 1.7, market.now_ns)  # 1.0 of crowd ahead, then a1, then 0.2 of b1
    market.step()
    a_fills = [e for e, _ in private(market, A)]
    b_fills = [e for e, _ in private(market, B)]
    assert [(f.order_id, f.size_base, f.is_maker) for f in a_fills] == [("a1", 0.5, True)]
    assert [(f.order_id, f.size_base, f.leaves_base) for f in b_fills] == [("b1", 0.2, 0.3)]
    assert market.account(A).position_base == 0.5
    assert market.account(B).position_base == 0.2
    assert market.position_base == 0.0  # the console's own account is untouched


def test_an_ioc_of_one_account_takes_another_accounts_quote_before_the_crowd() -> None:
    market = exact_market()
    market.execute(limit("a1", SELL, 100_000.0, 0.3, "Alo"), A)  # inside the spread
    public = market.execute(limit("b1", BUY, 100_000.1, 0.5, "Ioc"), B)
    accepted, maker = [e for e, _ in private(market, A)]
    assert accepted == OrderAccepted(0, "a1")
    b_events = [e for e, _ in private(market, B)]
    assert isinstance(maker, Fill) and maker.is_maker and maker.size_base == 0.3
    assert [(f.price, f.size_base, f.is_maker) for f in b_events if isinstance(f, Fill)] == [
        (100_000.0, 0.3, False),
        (100_000.1, 0.2, False),
    ]
    assert [(t.price, t.size_base, t.aggressor) for t in public if isinstance(t, Trade)] == [
        (100_000.0, 0.3, BUY),
        (100_000.1, 0.2, BUY),
    ]
    assert market.account(A).position_base == -0.3
    assert market.account(B).position_base == 0.5


def test_an_ioc_that_reaches_its_own_resting_order_cancels_it_and_trades_past_it() -> None:
    """Hyperliquid's self-trade prevention: the resting order is cancelled, with no fee."""
    market = exact_market()
    market.execute(limit("a-ask", SELL, 100_000.0, 0.3, "Alo"), A)
    market.execute(limit("a-far", SELL, 100_002.0, 0.3, "Alo"), A)
    market.execute(limit("a-buy", BUY, 100_000.1, 0.4, "Ioc"), A)
    events = private(market, A)
    fills = [e for e, _ in events if isinstance(e, Fill)]
    assert [(f.price, f.size_base) for f in fills] == [(100_000.1, 0.4)]  # only the crowd
    assert (OrderCanceled(0, "a-ask"), "selfTrade") in events
    assert [o[0] for o in market.resting_orders(A)] == ["a-far"]  # beyond the limit: kept


def test_the_consoles_hedge_still_skips_its_own_quotes_and_leaves_them_resting() -> None:
    market = exact_market()
    market.submit(PlaceQuote("q1", SELL, 100_000.0, 0.3), market.now_ns)
    market.step()
    market.submit(PlaceHedge("h1", BUY, 0.4, "test"), market.now_ns)
    events = market.step()
    assert [(f.order_id, f.price) for f in events if isinstance(f, Fill)] == [("h1", 100_000.1)]
    assert [o[0] for o in market.resting_orders()] == ["q1"]


def test_a_gtc_takes_what_crosses_and_rests_the_rest_at_its_price() -> None:
    market = exact_market()
    market.execute(limit("g1", BUY, 100_000.2, 2.5, "Gtc"), A)
    events = [e for e, _ in private(market, A)]
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.price, f.size_base) for f in fills] == [(100_000.1, 1.0), (100_000.2, 1.0)]
    assert events[-1] == OrderAccepted(0, "g1")
    assert market.resting_orders(A) == [("g1", BUY, 100_000.2, 0.5)]
    assert market.best_ticks()[0] == 1_000_002  # our bid is now the best bid


def test_an_ioc_that_cannot_trade_is_cancelled_and_an_alo_that_would_cross_is_refused() -> None:
    market = exact_market()
    market.execute(limit("i1", BUY, 99_999.0, 0.1, "Ioc"), A)
    market.execute(limit("p1", BUY, 100_000.1, 0.1, "Alo"), A)
    events = [e for e, _ in private(market, A)]
    assert events == [OrderCanceled(0, "i1"), OrderRejected(0, "p1", "post-only would cross")]


def test_a_cancel_or_cancel_all_touches_only_the_accounts_own_orders() -> None:
    market = exact_market()
    market.execute(limit("a1", BUY, 99_999.0, 0.1, "Alo"), A)
    market.execute(limit("b1", BUY, 99_998.0, 0.1, "Alo"), B)
    market.execute(CancelOrder("b1"), A)  # not A's order
    market.execute(CancelAll("a leaves"), A)
    a_events = [e for e, _ in private(market, A)]
    assert a_events[-2].order_id == "b1" and a_events[-1] == OrderCanceled(0, "a1")  # type: ignore[union-attr]
    assert [o[0] for o in market.resting_orders(B)] == ["b1"]


def test_the_venue_can_cancel_every_accounts_orders_at_once() -> None:
    market = exact_market()
    market.execute(limit("a1", BUY, 99_999.0, 0.1, "Alo"), A)
    market.execute(limit("b1", SELL, 100_001.0, 0.1, "Alo"), B)
    market.outbox.clear()
    gone = market.cancel_everything("upgrade")
    assert sorted(gone) == [(A, "a1"), (B, "b1")]
    assert sorted((who, e.order_id, n) for who, e, n in market.outbox) == [  # type: ignore[union-attr]
        (A, "a1", "upgrade"),
        (B, "b1", "upgrade"),
    ]
    assert market.book_levels(1)[0][0][2] == 1  # only the crowd is left at the best bid


def test_the_combined_book_counts_orders_per_level() -> None:
    market = exact_market()
    market.execute(limit("a1", BUY, 99_999.9, 0.5, "Alo"), A)
    market.execute(limit("b1", BUY, 99_999.9, 0.25, "Alo"), B)
    market.execute(limit("b2", BUY, 99_999.95 - 0.05, 0.1, "Alo"), B)
    bids, asks = market.book_levels(2)
    assert bids[0] == (999_999, round(1.85 / 0.00001), 4)  # crowd + a1 + b1 + b2
    assert asks[0] == (1_000_001, round(1.0 / 0.00001), 1)


def test_funding_reaches_every_account_with_a_position() -> None:
    market = exact_market(funding_enabled=True, funding_rate_per_hour=0.0001)
    market.execute(limit("b1", BUY, 100_000.1, 1.0, "Ioc"), B)
    market.outbox.clear()
    cash = market.account(B).cash_usd
    events = market.advance_to(3600 * S)
    assert any(isinstance(e, FundingPayment) for e in events)
    assert [who for who, e, _ in market.outbox if isinstance(e, FundingPayment)] == [B]
    assert market.account(B).cash_usd == cash - 1.0 * 100_000.0 * 0.0001


def test_self_trade_prevention_cancels_only_the_own_orders_the_walk_reaches() -> None:
    """At one price: B's order is ahead of A's; A's buy takes the crowd and part of B's, so it
    never reaches A's own ask, which stays. A deeper own ask the walk does reach is cancelled."""
    market = exact_market()
    market.execute(limit("b1", SELL, 100_000.1, 1.0, "Alo"), B)
    market.execute(limit("a1", SELL, 100_000.1, 0.5, "Alo"), A)
    market.execute(limit("a2", SELL, 100_000.2, 0.5, "Alo"), A)
    market.outbox.clear()
    market.execute(limit("a-buy", BUY, 100_000.1, 1.5, "Ioc"), A)
    events = private(market, A)
    assert not any(isinstance(e, OrderCanceled) and e.order_id == "a1" for e, _ in events)
    assert [o[0] for o in market.resting_orders(A)] == ["a1", "a2"]
    assert market.resting_orders(B) == [("b1", SELL, 100_000.1, 0.5)]
    market.execute(limit("a-sweep", BUY, 100_000.2, 4.0, "Gtc"), A)
    events = private(market, A)
    cancelled = [e.order_id for e, note in events if note == "selfTrade"]  # type: ignore[union-attr]
    assert cancelled == ["a1", "a2"]
    bid, ask = market.best_ticks()
    assert bid is not None and ask is not None and bid < ask  # never crossed against itself
