"""The message gate: malformed or hostile venue events are refused before the core sees them."""

import math
from dataclasses import dataclass

from desk import Desk
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import (
    BookUpdate,
    CancelRejected,
    Fill,
    FundingPayment,
    OrderCanceled,
    Side,
    Trade,
)
from engine.validate import MessageGuard

GOOD_BOOK = BookUpdate(1, ((99_999.9, 1.0),), ((100_000.1, 1.0),))


def guard() -> MessageGuard:
    g = MessageGuard()
    assert g.check(GOOD_BOOK) is None
    return g


def test_good_events_pass():
    g = guard()
    assert g.check(Trade(2, 100_000.0, 0.5, Side.BUY)) is None
    assert g.check(Fill(3, "q1", Side.SELL, 100_010.0, 0.001, -0.025, True)) is None
    assert g.check(OrderCanceled(4, "q1")) is None
    assert g.check(CancelRejected(4, "q1", "busy")) is None
    assert g.check(FundingPayment(5, 0.0001, 100_000.0)) is None


def test_each_kind_of_bad_message_is_named():
    g = guard()
    cases = {
        BookUpdate(1, ((math.nan, 1.0),), ()): "price nan",
        BookUpdate(1, ((99_000.0, -1.0),), ()): "size -1.0",
        BookUpdate(1, ((100_010.0, 1.0),), ((99_990.0, 1.0),)): "crossed",
        BookUpdate(1, (("99999", 1.0),), ()): "'99999'",
        BookUpdate(1, ((1e9, 1.0),), ((1e9 + 1, 1.0),)): "more than 20%",
        Trade(2, 100_000.0, 0.0, Side.BUY): "size 0.0",
        Trade(2, math.inf, 1.0, Side.BUY): "price inf",
        Fill(3, "q1", Side.BUY, 100_000.0, -0.5, 0.0, True): "size -0.5",
        Fill(3, "", Side.BUY, 100_000.0, 0.5, 0.0, True): "no order id",
        Fill(3, "q1", Side.BUY, 100_000.0, 0.5, math.nan, True): "fee nan",
        FundingPayment(5, 3.0, 100_000.0): "rate 3.0",
        Trade(-1, 100_000.0, 1.0, Side.BUY): "timestamp -1",
        "not an event": "unknown event type str",
    }
    for event, words in cases.items():
        reason = g.check(event)
        assert reason is not None and words in reason, (event, reason)


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.floats(allow_nan=True),
    st.integers(-(2**70), 2**70),
    st.lists(st.integers(), max_size=3),
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), junk)
levels = st.lists(st.one_of(st.tuples(numbers, numbers), junk), max_size=6)
events = st.one_of(
    st.builds(BookUpdate, junk | st.integers(0, 10**12), levels, levels, st.booleans()),
    st.builds(Trade, st.integers(0, 10**12), numbers, numbers, st.sampled_from(Side) | junk),
    st.builds(
        Fill,
        st.integers(0, 10**12),
        st.text(max_size=3) | junk,
        st.sampled_from(Side) | junk,
        numbers,
        numbers,
        numbers,
        st.booleans(),
        numbers,
    ),
    st.builds(FundingPayment, st.integers(0, 10**12), numbers, numbers),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(events, min_size=1, max_size=20))
def test_hostile_messages_are_rejected_or_harmless_and_never_raise_out_of_the_engine(batch):
    desk = Desk()
    desk.warm_up()
    g = MessageGuard(last_mid=desk.quoter.book.mid)
    for event in batch:
        reason = g.check(event)
        if reason is not None:
            assert isinstance(reason, str) and reason
            continue
        desk.execute(desk.quoter.on_event(event, desk.now_ns))  # must not raise
        g.accepted_mid(desk.quoter.book.mid)
        book = desk.quoter.book
        if book.best_bid_ticks is not None and book.best_ask_ticks is not None:
            assert book.best_bid_ticks < book.best_ask_ticks


def test_a_market_that_really_moved_is_accepted_after_five_consistent_snapshots():
    g = guard()
    moved = BookUpdate(2, ((149_999.9, 1.0),), ((150_000.1, 1.0),))
    reasons = [g.check(moved) for _ in range(5)]
    assert all(r and "more than 20%" in r for r in reasons[:4])
    assert reasons[4] is None
    assert g.last_mid == 150_000.0


@dataclass(frozen=True)
class Working:
    side: Side
    price: float
    leaves_base: float
    is_hedge: bool = False


def order_guard(**orders: Working) -> MessageGuard:
    g = MessageGuard(
        orders=orders.get, tick_size=0.1, lot_size=0.00001, max_fee_rate=0.0005, last_mid=100_000.0
    )
    return g


def test_fills_are_checked_against_the_orders_we_have_working():
    bid = Working(Side.BUY, 99_990.0, 0.006)
    hedge = Working(Side.SELL, 100_000.0, 0.004, is_hedge=True)
    rebate = -0.006 * 99_990.0 * 0.00025
    good = Fill(3, "b", Side.BUY, 99_990.0, 0.006, rebate, True, 0.0)
    cases = {
        Fill(3, "ghost1", Side.BUY, 99_990.0, 0.05, 0.0, True): "not one of our working orders",
        Fill(3, "b", Side.SELL, 99_990.0, 0.006, rebate, True): "SELL but our order is a BUY",
        Fill(3, "b", Side.BUY, 99_990.0, 1e6, 0.0, True): "more than the 0.006 left",
        Fill(3, "b", Side.BUY, 99_990.0, 1e300, 0.0, True): "size 1e+300",
        Fill(3, "b", Side.BUY, 99_990.0, 0.006, 1e308, True): "fee",
        Fill(3, "b", Side.BUY, 99_990.0, 0.006, 1.0, True): "more than 0.05%",
        Fill(3, "b", Side.BUY, 99_990.0, 0.006, rebate, "no"): "is_maker 'no'",
        Fill(2**70, "b", Side.BUY, 99_990.0, 0.006, rebate, True): "timestamp",
        Fill(3, "b", Side.BUY, 99_980.0, 0.006, rebate, True): "not our quote's price",
        Fill(3, "b", Side.BUY, 99_990.0, 0.006, rebate, False): "taker fill of our post-only",
        Fill(3, "b", Side.BUY, 99_990.0, 0.002, -0.01, True, 0.006): "says 0.006 left",
        Fill(3, "b", Side.BUY, 99_990.0, 0.001, -0.01, True, 0.0): "but 0.006 - 0.001 = 0.005",
        Fill(3, "b", Side.BUY, 99_990.0, 1e-9, 0.0, True, 0.006): "not a whole number of",
        Fill(3, "b", Side.BUY, 99_990.0, 0.0010005, 0.0, True, 0.0049995): "not a whole number",
        Fill(3, "h", Side.SELL, 97_000.0, 0.004, 0.1, False): "3.00% from",
        Fill(3, "h", Side.SELL, 99_990.0, 0.004, 0.1, True): "maker fill of our taker hedge",
    }
    for event, words in cases.items():
        reason = order_guard(b=bid, h=hedge).check(event)
        assert reason is not None and words in reason, (event, reason)
    assert order_guard(b=bid).check(good) is None
    assert order_guard(h=hedge).check(Fill(3, "h", Side.SELL, 99_990.0, 0.004, 0.1, False)) is None


def test_two_fills_in_one_batch_cannot_add_up_to_more_than_the_order():
    g = order_guard(b=Working(Side.BUY, 99_990.0, 0.006))
    first = Fill(3, "b", Side.BUY, 99_990.0, 0.004, 0.0, True, 0.002)
    again = Fill(3, "b", Side.BUY, 99_990.0, 0.004, 0.0, True, 0.0)
    assert g.check(first) is None
    reason = g.check(again)
    assert reason is not None and "more than the 0.002 left" in reason
    g.core_caught_up()  # once the core has booked the first, its leaves are the truth again
    assert g.check(first) is None


def test_a_timestamp_far_from_the_venues_clock_is_refused():
    g = guard()
    day = 86_400 * 10**9
    assert g.check(Trade(5 * day, 100_000.0, 0.1, Side.BUY), now_ns=5 * day + 10) is None
    reason = g.check(Trade(5 * day, 100_000.0, 0.1, Side.BUY), now_ns=7 * day)
    assert reason is not None and "more than a day" in reason
