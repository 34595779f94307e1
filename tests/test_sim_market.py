"""The embedded exchange's order handling, matching and account, on a book a trader can draw.

The exact market: fair price pinned at $100,000, no background takers, every level 1.0 BTC.
Bids 99,999.9 .. 99,999.5 one tick apart, then 99,999.0, 99,996.0, ... every $3;
asks 100,000.1 .. 100,000.5, then 100,002.0, 100,005.0, ...
"""

from __future__ import annotations

import dataclasses

import pytest

from engine.events import (
    Action,
    BookUpdate,
    CancelAll,
    CancelOrder,
    CancelRejected,
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
from engine.sim import SimMarket, SimParams, fee_schedule

S = 1_000_000_000
BUY, SELL = Side.BUY, Side.SELL

EXACT = SimParams(
    regime_override="flat",
    taker_rate_per_s=0.0,
    book_size_jitter=0.0,
    touch_extra_ticks_max=0,
    touch_size_base=1.0,
    depth_growth_per_level=0.0,
)


def exact_market(**overrides: object) -> SimMarket:
    market = SimMarket(dataclasses.replace(EXACT, **overrides))  # type: ignore[arg-type]
    market.step()  # the first book, at t=0
    return market


def act(market: SimMarket, action: Action) -> list[VenueEvent]:
    """Submit now and process it (no latency): the venue's answer to that one action."""
    market.submit(action, market.now_ns)
    return market.step()


def take(market: SimMarket, side: Side, size_base: float) -> list[VenueEvent]:
    """Someone else's market order, now."""
    market.inject_taker(side, size_base, market.now_ns)
    return market.step()


def fills(events: list[VenueEvent]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def trades(events: list[VenueEvent]) -> list[Trade]:
    return [e for e in events if isinstance(e, Trade)]


def next_book(market: SimMarket) -> BookUpdate:
    while True:
        for event in market.step():
            if isinstance(event, BookUpdate):
                return event


# ---- the exact book ------------------------------------------------------------------------------


def test_the_exact_book_is_the_one_drawn_in_the_docstring() -> None:
    market = SimMarket(EXACT)
    (book,) = market.step()
    assert isinstance(book, BookUpdate) and book.is_snapshot and book.ts_ns == 0
    assert book.bids[:7] == (
        (99_999.9, 1.0), (99_999.8, 1.0), (99_999.7, 1.0), (99_999.6, 1.0), (99_999.5, 1.0),
        (99_999.0, 1.0), (99_996.0, 1.0),
    )  # fmt: skip
    assert book.asks[:7] == (
        (100_000.1, 1.0), (100_000.2, 1.0), (100_000.3, 1.0), (100_000.4, 1.0), (100_000.5, 1.0),
        (100_002.0, 1.0), (100_005.0, 1.0),
    )  # fmt: skip
    assert len(book.bids) == len(book.asks) == 20
    assert market.instrument.symbol == "BTC-PERP"
    assert market.fair_mid == 100_000.0


# ---- quotes: post-only, queue position, partial fills --------------------------------------------


def test_a_bid_joins_the_back_of_the_queue_behind_the_displayed_size() -> None:
    market = exact_market()
    assert act(market, PlaceQuote("b1", BUY, 99_999.9, 0.5)) == [OrderAccepted(0, "b1")]
    assert market.queue_ahead_base("b1") == 1.0

    first = take(market, SELL, 0.6)  # eats 0.6 of the 1.0 BTC ahead of us
    assert fills(first) == []
    assert trades(first) == [Trade(0, 99_999.9, 0.6, SELL)]
    assert market.queue_ahead_base("b1") == pytest.approx(0.4)

    second = take(market, SELL, 0.6)  # the last 0.4 ahead of us, then 0.2 of ours
    assert fills(second) == [
        Fill(0, "b1", BUY, 99_999.9, 0.2, 0.2 * 99_999.9 * -0.025 / 100, True, leaves_base=0.3)
    ]
    assert trades(second) == [Trade(0, 99_999.9, 0.6, SELL)]
    assert market.resting_orders() == [("b1", BUY, 99_999.9, 0.3)]
    assert market.position_base == 0.2


def test_our_queue_place_holds_when_the_level_refills_behind_us() -> None:
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_999.9, 0.5))
    take(market, SELL, 0.6)  # 0.4 left ahead of us
    next_book(market)  # the level is redrawn at 1.0 BTC: the new 0.6 is behind us
    assert market.queue_ahead_base("b1") == pytest.approx(0.4)
    events = take(market, SELL, 1.0)  # 0.4 ahead, our 0.5, then 0.1 of those behind us
    assert [(f.size_base, f.leaves_base) for f in fills(events)] == [(0.5, 0.0)]
    assert trades(events) == [Trade(market.now_ns, 99_999.9, 1.0, SELL)]


def test_a_quote_between_levels_has_nobody_ahead_but_the_better_levels_trade_first() -> None:
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_999.2, 0.5))  # between 99,999.5 and 99,999.0
    assert market.queue_ahead_base("b1") == 0.0
    events = take(market, SELL, 5.3)  # five 1.0 BTC levels, then 0.3 of ours
    assert [(t.price, t.size_base) for t in trades(events)] == [
        (99_999.9, 1.0), (99_999.8, 1.0), (99_999.7, 1.0), (99_999.6, 1.0), (99_999.5, 1.0),
        (99_999.2, 0.3),
    ]  # fmt: skip
    (fill,) = fills(events)
    assert (fill.price, fill.size_base, fill.leaves_base) == (99_999.2, 0.3, 0.2)
    assert fill.is_maker


def test_an_ask_fills_in_full_then_the_taker_carries_on_to_the_next_level() -> None:
    market = exact_market()
    act(market, PlaceQuote("a1", SELL, 100_000.1, 0.25))
    events = take(market, BUY, 1.5)  # 1.0 ahead of us, our 0.25, then 0.25 one tick up
    (fill,) = fills(events)
    assert (fill.side, fill.price, fill.size_base, fill.leaves_base) == (SELL, 100_000.1, 0.25, 0.0)
    assert trades(events) == [Trade(0, 100_000.1, 1.25, BUY), Trade(0, 100_000.2, 0.25, BUY)]
    assert market.resting_orders() == []
    assert market.position_base == -0.25


def test_two_of_our_quotes_at_one_price_fill_in_time_order() -> None:
    market = exact_market()
    act(market, PlaceQuote("early", BUY, 99_999.4, 0.1))
    act(market, PlaceQuote("late", BUY, 99_999.4, 0.1))
    events = take(market, SELL, 5.15)  # five levels in front, then 0.15 at 99,999.4
    assert [(f.order_id, f.size_base, f.leaves_base) for f in fills(events)] == [
        ("early", 0.1, 0.0),
        ("late", 0.05, 0.05),
    ]


def test_our_quotes_show_in_the_published_book() -> None:
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_999.9, 0.5))  # on a level: adds to it
    act(market, PlaceQuote("a1", SELL, 100_001.0, 0.25))  # between levels: a level of its own
    book = next_book(market)
    assert book.bids[0] == (99_999.9, 1.5)
    assert book.asks[4:7] == ((100_000.5, 1.0), (100_001.0, 0.25), (100_002.0, 1.0))
    assert len(book.asks) == 20


def test_post_only_quotes_that_would_cross_are_rejected() -> None:
    market = exact_market()
    assert act(market, PlaceQuote("b1", BUY, 100_000.1, 0.01)) == [
        OrderRejected(0, "b1", "post-only would cross")
    ]
    assert act(market, PlaceQuote("a1", SELL, 99_999.0, 0.01)) == [
        OrderRejected(0, "a1", "post-only would cross")
    ]
    # inside the spread is fine, and then our own ask is the touch a bid must not cross
    assert act(market, PlaceQuote("a2", SELL, 100_000.0, 0.01)) == [OrderAccepted(0, "a2")]
    assert act(market, PlaceQuote("b2", BUY, 100_000.0, 0.01)) == [
        OrderRejected(0, "b2", "post-only would cross")
    ]
    assert market.resting_orders() == [("a2", SELL, 100_000.0, 0.01)]


def test_malformed_quotes_are_rejected_with_the_reason() -> None:
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_990.0, 0.01))
    (duplicate,) = act(market, PlaceQuote("b1", BUY, 99_980.0, 0.01))
    (off_grid,) = act(market, PlaceQuote("b2", BUY, 99_990.05, 0.01))
    (too_small,) = act(market, PlaceQuote("b3", BUY, 99_990.0, 0.000001))
    assert isinstance(duplicate, OrderRejected) and duplicate.reason == "duplicate order id"
    assert isinstance(off_grid, OrderRejected) and "tick grid" in off_grid.reason
    assert isinstance(too_small, OrderRejected) and "below one lot" in too_small.reason


def test_simulated_rejects_hit_quotes_at_the_reject_rate() -> None:
    market = exact_market(reject_rate=1.0)
    assert act(market, PlaceQuote("b1", BUY, 99_990.0, 0.01)) == [
        OrderRejected(0, "b1", "simulated reject")
    ]
    market = exact_market(reject_rate=0.3)
    events = [act(market, PlaceQuote(f"b{i}", BUY, 99_990.0, 0.01))[0] for i in range(1000)]
    rejected = sum(isinstance(e, OrderRejected) for e in events)
    assert 240 < rejected < 360


# ---- cancels ----------------------------------------------------------------------------------


def test_cancel_removes_the_quote_and_an_unknown_id_is_rejected() -> None:
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_999.9, 0.5))
    assert act(market, CancelOrder("b1")) == [OrderCanceled(0, "b1")]
    assert market.resting_orders() == []
    assert act(market, CancelOrder("b1")) == [CancelRejected(0, "b1", "unknown order")]
    assert fills(take(market, SELL, 2.0)) == []


def test_cancel_all_cancels_every_resting_quote_in_order() -> None:
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_999.0, 0.01))
    act(market, PlaceQuote("a1", SELL, 100_001.0, 0.01))
    act(market, PlaceQuote("b2", BUY, 99_998.0, 0.01))
    assert act(market, CancelAll("test")) == [
        OrderCanceled(0, "b1"),
        OrderCanceled(0, "a1"),
        OrderCanceled(0, "b2"),
    ]
    assert market.resting_orders() == []
    assert act(market, CancelAll("nothing left")) == []


# ---- hedges -----------------------------------------------------------------------------------


def test_a_hedge_walks_the_levels_and_pays_the_taker_fee_on_each() -> None:
    market = exact_market()
    events = act(market, PlaceHedge("h1", BUY, 2.5, "test"))
    taker_fee = 0.025 / 100
    assert fills(events) == [
        Fill(0, "h1", BUY, 100_000.1, 1.0, 1.0 * 100_000.1 * taker_fee, False, leaves_base=1.5),
        Fill(0, "h1", BUY, 100_000.2, 1.0, 1.0 * 100_000.2 * taker_fee, False, leaves_base=0.5),
        Fill(0, "h1", BUY, 100_000.3, 0.5, 0.5 * 100_000.3 * taker_fee, False, leaves_base=0.0),
    ]
    assert [t.aggressor for t in trades(events)] == [BUY, BUY, BUY]
    assert not any(isinstance(e, OrderCanceled) for e in events)
    assert market.position_base == 2.5


def test_a_500_dollar_hedge_at_guide_fees_pays_12_and_a_half_cents() -> None:
    market = exact_market()
    (fill,) = fills(act(market, PlaceHedge("h1", BUY, 0.005, "test")))
    assert fill.price * fill.size_base == pytest.approx(500.0, abs=0.001)
    assert fill.fee_usd == pytest.approx(0.125, abs=1e-6)


def test_a_hedge_bigger_than_the_book_fills_what_is_shown_and_cancels_the_rest() -> None:
    market = exact_market()
    events = act(market, PlaceHedge("h1", SELL, 25.0, "flatten"))
    assert len(fills(events)) == 20  # twenty 1.0 BTC bid levels
    assert fills(events)[-1].leaves_base == 5.0
    assert events[-1] == OrderCanceled(0, "h1")
    assert market.position_base == -20.0


def test_what_a_hedge_eats_stays_gone_until_the_next_book_refresh() -> None:
    market = exact_market()
    act(market, PlaceHedge("h1", BUY, 2.5, "test"))
    (again,) = fills(act(market, PlaceHedge("h2", BUY, 0.5, "test")))
    assert again.price == 100_000.3  # the half level the first hedge left
    next_book(market)
    (after,) = fills(act(market, PlaceHedge("h3", BUY, 0.5, "test")))
    assert after.price == 100_000.1  # the book refilled


def test_a_hedge_does_not_trade_with_our_own_quote() -> None:
    market = exact_market()
    act(market, PlaceQuote("a1", SELL, 100_000.1, 0.5))
    events = act(market, PlaceHedge("h1", BUY, 1.5, "test"))
    assert [(f.order_id, f.price, f.size_base) for f in fills(events)] == [
        ("h1", 100_000.1, 1.0),
        ("h1", 100_000.2, 0.5),
    ]
    assert market.resting_orders() == [("a1", SELL, 100_000.1, 0.5)]
    assert market.queue_ahead_base("a1") == 0.0  # the hedge ate the size that was ahead of it


# ---- fees and the account ------------------------------------------------------------------------


def test_fee_schedules_by_name() -> None:
    assert fee_schedule("guide") == (-0.025, 0.025)
    assert fee_schedule("hyperliquid-base") == (0.015, 0.045)
    with pytest.raises(ValueError, match="'binance-vip9'"):
        fee_schedule("binance-vip9")
    params = SimParams().with_fees("hyperliquid-base")
    assert (params.maker_fee_pct, params.taker_fee_pct) == (0.015, 0.045)


def test_a_maker_fill_at_guide_fees_credits_a_0_025_percent_rebate() -> None:
    market = exact_market()
    act(market, PlaceQuote("a1", SELL, 100_000.1, 0.01))
    (fill,) = fills(take(market, BUY, 1.01))
    assert fill.fee_usd == pytest.approx(-0.01 * 100_000.1 * 0.00025)  # -$0.25: received
    assert market.cash_usd == pytest.approx(1_000.001 + 0.2500025)
    assert market.position_base == -0.01


def test_a_maker_fill_at_hyperliquid_base_fees_pays_0_015_percent() -> None:
    market = exact_market(maker_fee_pct=0.015, taker_fee_pct=0.045)
    act(market, PlaceQuote("a1", SELL, 100_000.1, 0.01))
    (fill,) = fills(take(market, BUY, 1.01))
    assert fill.fee_usd == pytest.approx(0.01 * 100_000.1 * 0.00015)


def test_cash_and_position_after_a_sequence_of_fills_match_the_hand_computation() -> None:
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_999.9, 0.5))
    take(market, SELL, 1.2)  # 1.0 ahead of us, then 0.2 of ours at 99,999.9
    take(market, SELL, 0.3)  # the queue ahead is gone: 0.3 of ours
    act(market, PlaceHedge("h1", SELL, 0.5, "flatten"))  # 99,999.9 is eaten: 0.5 at 99,999.8
    # bought 0.5 at 99,999.9 with a rebate of 0.025 %, sold 0.5 at 99,999.8 paying 0.025 %
    rebate_usd = 0.5 * 99_999.9 * 0.00025  # 12.4999875
    taker_fee_usd = 0.5 * 99_999.8 * 0.00025  # 12.499975
    assert market.position_base == 0.0
    assert market.cash_usd == pytest.approx(-0.05 + rebate_usd - taker_fee_usd, abs=1e-9)
    assert market.cash_usd == pytest.approx(-0.0499875, abs=1e-9)
    assert market.equity_usd(100_000.0) == market.cash_usd


def test_equity_marks_the_position_to_the_given_price() -> None:
    market = exact_market(taker_fee_pct=0.0)
    act(market, PlaceHedge("h1", BUY, 1.0, "test"))  # 1.0 at 100,000.1
    assert market.cash_usd == pytest.approx(-100_000.1)
    assert market.equity_usd(100_010.0) == pytest.approx(9.9)


# ---- funding, latency -------------------------------------------------------------------------


def test_funding_is_paid_by_a_long_and_received_by_a_short_every_hour() -> None:
    for side, sign in ((BUY, -1), (SELL, 1)):
        market = exact_market(
            funding_enabled=True,
            funding_rate_per_hour=0.0001,
            taker_fee_pct=0.0,
            book_interval_s=10.0,
        )
        act(market, PlaceHedge("h1", side, 0.1, "test"))
        cash_before = market.cash_usd
        payments: list[FundingPayment] = []
        while market.next_ts_ns <= 3600 * S:
            payments += [e for e in market.step() if isinstance(e, FundingPayment)]
        assert payments == [FundingPayment(3600 * S, 0.0001, 100_000.0)]
        # 0.1 BTC * $100,000 * 0.01 % = $1.00
        assert market.cash_usd - cash_before == pytest.approx(sign * 1.0)


def test_funding_is_off_by_default() -> None:
    market = SimMarket(dataclasses.replace(EXACT, book_interval_s=60.0))
    while market.next_ts_ns <= 7200 * S:
        assert not any(isinstance(e, FundingPayment) for e in market.step())


def test_latency_delays_our_actions_but_not_other_peoples_takers() -> None:
    market = exact_market(latency_ms=50.0)
    market.submit(PlaceQuote("b1", BUY, 99_999.9, 0.5), 0)
    market.inject_taker(SELL, 0.5, 0)
    first = market.step()
    assert first == [Trade(0, 99_999.9, 0.5, SELL)]  # the taker came before our quote arrived
    assert market.next_ts_ns == 50_000_000
    assert market.step() == [OrderAccepted(50_000_000, "b1")]
    assert market.queue_ahead_base("b1") == 0.5  # the level the taker left: 0.5 BTC


def test_an_action_submitted_in_the_past_takes_effect_now() -> None:
    market = exact_market()
    next_book(market)
    now = market.now_ns
    assert act(market, CancelOrder("nope")) == [CancelRejected(now, "nope", "unknown order")]
    market.submit(CancelAll("late"), 0)
    assert market.next_ts_ns == now


def test_an_injected_taker_below_one_lot_is_a_clear_error() -> None:
    market = exact_market()
    with pytest.raises(ValueError, match="below one lot"):
        market.inject_taker(BUY, 0.000001, 0)


def test_a_market_can_open_with_an_account_and_a_wall_clock_start():
    start_ns = 1_764_000_000 * 1_000_000_000
    market = SimMarket(
        SimParams(seed=1, start_ns=start_ns, start_position_base=0.012, start_cash_usd=-1_150.5)
    )
    assert market.position_base == 0.012
    assert market.cash_usd == -1_150.5
    events = [e for _ in range(50) for e in market.step()]
    assert min(e.ts_ns for e in events) >= start_ns
    assert market.equity_usd(100_000.0) == pytest.approx(-1_150.5 + 1_200.0)


def test_the_book_a_walk_leaves_goes_out_before_the_fills_it_caused() -> None:
    """A seller sweeps through our bid at 99,999.7: the prints of the better levels, then the
    book as the sweep left it (no bid at or above our price), then our fill, then the rest of
    the prints; a refill priced off that book does not cross it."""
    market = exact_market()
    act(market, PlaceQuote("b1", BUY, 99_999.7, 0.5))
    events = take(market, SELL, 4.0)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Trade", "Trade", "BookUpdate", "Fill", "Trade", "Trade"]
    book = next(e for e in events if isinstance(e, BookUpdate))
    assert book.bids[0][0] < 99_999.7  # the walk went through our price
    (fill,) = fills(events)
    assert fill.order_id == "b1" and fill.leaves_base == 0
    refill_at = book.asks[0][0] - 0.1  # the best bid a post-only refill may take now
    assert isinstance(act(market, PlaceQuote("b2", BUY, refill_at, 0.5))[0], OrderAccepted)
