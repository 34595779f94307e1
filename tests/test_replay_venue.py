"""The replay venue: our orders filled by real trades after the queue ahead of them."""

import pytest

from engine.events import (
    BookUpdate,
    CancelAll,
    Fill,
    Instrument,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    Side,
    Trade,
)
from engine.replay.venue import ReplayVenue

INSTRUMENT = Instrument("BTCUSDT", tick_size=0.1, lot_size=0.001)
BOOK = BookUpdate(1, bids=((100.0, 1.0), (99.9, 2.0)), asks=((100.1, 1.5), (100.2, 3.0)))


def venue_with(*tape):
    venue = ReplayVenue(iter((BOOK, *tape)), INSTRUMENT, maker_fee_pct=-0.025, taker_fee_pct=0.025)
    assert venue.step() == [BOOK]
    return venue


def drain(venue):
    events = []
    while venue.next_ts_ns is not None:
        events += venue.step()
    return events


def test_a_bid_waits_behind_the_displayed_size_then_fills_partially():
    venue = venue_with(Trade(2, 100.0, 0.6, Side.SELL), Trade(3, 100.0, 0.6, Side.SELL))
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    events = drain(venue)
    fills = [e for e in events if isinstance(e, Fill)]
    assert isinstance(events[0], OrderAccepted)
    # 1.0 ahead: the first 0.6 leaves 0.4 ahead, the second 0.6 eats it and fills us 0.2
    assert [(f.ts_ns, f.size_base, f.leaves_base) for f in fills] == [
        (3, pytest.approx(0.2), pytest.approx(0.3))
    ]
    assert fills[0].is_maker and fills[0].fee_usd == pytest.approx(-0.2 * 100.0 * 0.00025)


def test_a_trade_through_our_price_fills_us_completely():
    venue = venue_with(Trade(2, 99.9, 0.01, Side.SELL))
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    fills = [e for e in drain(venue) if isinstance(e, Fill)]
    assert [(f.price, f.size_base, f.leaves_base) for f in fills] == [(100.0, 0.5, 0.0)]
    assert venue.position_base == pytest.approx(0.5)


def test_buyers_do_not_fill_our_bid_and_the_queue_ahead_never_exceeds_the_book():
    shrink = BookUpdate(2, bids=((100.0, 0.2),), asks=(), is_snapshot=False)
    venue = venue_with(Trade(2, 100.1, 5.0, Side.BUY), shrink, Trade(3, 100.0, 0.3, Side.SELL))
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    fills = [e for e in drain(venue) if isinstance(e, Fill)]
    # the level shrank to 0.2 displayed: only 0.2 can be ahead of us, so 0.1 of 0.3 is ours
    assert [f.size_base for f in fills] == [pytest.approx(0.1)]


def test_post_only_quotes_that_would_cross_are_rejected():
    venue = venue_with()
    venue.submit(PlaceQuote("b1", Side.BUY, 100.1, 0.5), 1)
    venue.submit(PlaceQuote("a1", Side.SELL, 100.0, 0.5), 1)
    events = drain(venue)
    assert [type(e) for e in events] == [OrderRejected, OrderRejected]
    assert all("post-only" in e.reason for e in events)


def test_a_hedge_walks_the_book_and_pays_the_taker_fee():
    venue = venue_with()
    venue.submit(PlaceHedge("h1", Side.BUY, 2.0, "test"), 1)
    fills = [e for e in drain(venue) if isinstance(e, Fill)]
    assert [(f.price, f.size_base) for f in fills] == [(100.1, 1.5), (100.2, pytest.approx(0.5))]
    assert not any(f.is_maker for f in fills)
    assert fills[0].fee_usd == pytest.approx(1.5 * 100.1 * 0.00025)
    assert fills[-1].leaves_base == 0.0


def test_cancel_all_confirms_every_resting_order():
    venue = venue_with()
    venue.submit(PlaceQuote("b1", Side.BUY, 99.0, 0.5), 1)
    venue.submit(PlaceQuote("a1", Side.SELL, 101.0, 0.5), 1)
    drain(venue)
    venue.submit(CancelAll("test"), 2)
    assert {e.order_id for e in drain(venue) if isinstance(e, OrderCanceled)} == {"b1", "a1"}
    assert venue.resting_orders() == []
