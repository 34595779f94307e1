"""The replay venue: our orders filled by real trades after the queue ahead of them."""

import pytest

from engine.events import (
    BookUpdate,
    CancelAll,
    CancelOrder,
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
from engine.replay.venue import ReplayModel, ReplayVenue

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


# ---- latency, consumed liquidity, queue models ------------------------------------------------

MS = 1_000_000


def latent_venue(*tape, **model):
    venue = ReplayVenue(
        iter((BOOK, *tape)),
        INSTRUMENT,
        maker_fee_pct=-0.025,
        taker_fee_pct=0.025,
        model=ReplayModel(**model),
    )
    assert venue.step() == [BOOK]
    return venue


def test_an_order_rests_only_once_it_reaches_the_exchange_and_the_core_hears_later():
    # a sell sweeps through 100.0 at 5 ms: our bid sent at 1 ns reaches the exchange at 10 ms
    venue = latent_venue(
        Trade(5 * MS, 99.9, 0.5, Side.SELL), Trade(15 * MS, 99.9, 0.5, Side.SELL),
        entry_latency_ms=10, response_latency_ms=10,
    )  # fmt: skip
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    events = drain(venue)
    accepted = [e for e in events if isinstance(e, OrderAccepted)]
    fills = [e for e in events if isinstance(e, Fill)]
    assert [e.ts_ns for e in accepted] == [1 + 20 * MS]  # rests at 10 ms, heard at 20 ms
    assert [(f.ts_ns, f.size_base) for f in fills] == [(25 * MS, 0.5)]  # the 15 ms print, not 5


def test_a_fill_while_the_cancel_is_on_its_way_is_booked_and_the_cancel_refused():
    venue = latent_venue(Trade(12 * MS, 99.9, 0.5, Side.SELL), entry_latency_ms=5,
                         response_latency_ms=5)  # fmt: skip
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    assert any(isinstance(e, OrderAccepted) for e in _step_until(venue, 11 * MS))
    venue.submit(CancelOrder("b1"), 11 * MS)  # reaches the exchange at 16 ms: too late
    events = drain(venue)
    kinds = [(type(e).__name__, e.ts_ns) for e in events if not isinstance(e, Trade)]
    assert kinds == [("Fill", 17 * MS), ("CancelRejected", 21 * MS)]
    assert venue.position_base == pytest.approx(0.5)


def _step_until(venue, ts_ns):
    events = []
    while venue.next_ts_ns is not None and venue.next_ts_ns <= ts_ns:
        events += venue.step()
    return events


def test_a_trade_that_empties_a_level_leaves_it_empty_for_a_hedge_until_the_book_refills_it():
    refill = BookUpdate(9 * MS, bids=(), asks=((100.1, 1.5),), is_snapshot=False)
    venue = latent_venue(Trade(2 * MS, 100.1, 1.5, Side.BUY), refill)
    _step_until(venue, 2 * MS)  # the buyer took the whole 100.1 ask
    venue.submit(PlaceHedge("h1", Side.BUY, 1.0, "test"), 3 * MS)
    fills = [e for e in _step_until(venue, 3 * MS) if isinstance(e, Fill)]
    assert [(f.price, f.size_base) for f in fills] == [(100.2, 1.0)]  # 100.1 is gone
    _step_until(venue, 9 * MS)  # a depth update puts 1.5 back at 100.1
    venue.submit(PlaceHedge("h2", Side.BUY, 1.0, "test"), 10 * MS)
    fills = [e for e in drain(venue) if isinstance(e, Fill)]
    assert [(f.price, f.size_base) for f in fills] == [(100.1, 1.0)]


def _fill_time(queue, *, ahead_of_us: bool) -> int | None:
    """Our 0.5 bid at 100.0 behind 1.0; 2.0 joins behind us; then the level sheds 2.0 (cancels),
    and sellers print 0.4 at a time at 100.0. When are we first filled?"""
    grow = BookUpdate(2 * MS, bids=((100.0, 3.0),), asks=(), is_snapshot=False)
    shed = BookUpdate(3 * MS, bids=((100.0, 1.0),), asks=(), is_snapshot=False)
    prints = [Trade((4 + i) * MS, 100.0, 0.4, Side.SELL) for i in range(6)]
    tape = (grow, shed, *prints) if not ahead_of_us else (*prints,)
    book = BookUpdate(1, bids=((99.9, 2.0),), asks=((100.1, 1.5),)) if ahead_of_us else BOOK
    venue = ReplayVenue(iter((book, *tape)), INSTRUMENT, maker_fee_pct=0.0, taker_fee_pct=0.0,
                        model=ReplayModel(queue=queue))  # fmt: skip
    venue.step()
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    fills = [e for e in drain(venue) if isinstance(e, Fill)]
    return fills[0].ts_ns if fills else None


def test_the_power_queue_model_fills_between_the_front_of_the_queue_and_the_risk_averse_one():
    front = _fill_time("risk-averse", ahead_of_us=True)  # nobody ahead: the first print
    power = _fill_time("power", ahead_of_us=False)
    averse = _fill_time("risk-averse", ahead_of_us=False)
    assert front is not None and power is not None and averse is not None
    assert front < power < averse


def test_a_quote_under_the_minimum_notional_is_refused_and_counted():
    venue = latent_venue(min_notional_usd=100.0)
    venue.submit(PlaceQuote("b1", Side.BUY, 99.0, 0.5), 1)  # $49.50
    venue.submit(PlaceQuote("b2", Side.BUY, 99.0, 1.5), 1)  # $148.50
    events = drain(venue)
    assert [type(e) for e in events] == [OrderRejected, OrderAccepted]
    assert "minimum notional" in events[0].reason and venue.skipped_min_notional == 1


@pytest.mark.parametrize("fill_through", ["full", "traded"])
def test_a_trade_through_our_price_fills_in_full_or_up_to_its_size(fill_through):
    venue = latent_venue(Trade(2, 99.9, 0.2, Side.SELL), fill_through=fill_through)
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    fills = [e.size_base for e in drain(venue) if isinstance(e, Fill)]
    assert fills == ([0.5] if fill_through == "full" else [pytest.approx(0.2)])


def test_a_fill_carries_the_mid_the_exchange_had_and_whole_lots_under_the_power_model():
    """The core hears of a fill a latency later, when the book may have moved: the fill says
    the mid at the exchange when it happened. A queue estimate is never a fraction of a lot."""
    grow = BookUpdate(2 * MS, bids=((100.0, 3.0),), asks=(), is_snapshot=False)
    shed = BookUpdate(3 * MS, bids=((100.0, 1.0),), asks=(), is_snapshot=False)
    prints = [Trade((4 + i) * MS, 100.0, 0.4, Side.SELL) for i in range(6)]
    moved = BookUpdate(11 * MS, bids=((99.0, 1.0),), asks=((99.5, 1.0),), is_snapshot=True)
    venue = latent_venue(grow, shed, *prints, moved, queue="power", response_latency_ms=10)
    venue.submit(PlaceQuote("b1", Side.BUY, 100.0, 0.5), 1)
    fills = [e for e in drain(venue) if isinstance(e, Fill)]
    assert fills and all(f.venue_mid == pytest.approx(100.05) for f in fills)
    assert all(abs(f.size_base / 0.001 - round(f.size_base / 0.001)) < 1e-9 for f in fills)
