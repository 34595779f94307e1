"""The quoter core against anything a venue could legitimately send it.

A model venue holds what the core has sent it: actions wait in flight and are processed in any
order (a cancel may overtake its placement), placements are accepted or rejected, cancels
succeed or are refused, our resting quotes fill for up to their leaves at their price or
better for us, hedges fill near mid (or are rejected) and cancel their remainder. Each order's
answers reach the core in the order the venue produced them, but answers of different orders
are interleaved arbitrarily and delayed at will. Book snapshots at drifting mids, timer ticks
and operator commands come in between.

After every step: the core has not raised, every float in its snapshot is finite, at most one
quote order per side is working (sent and not confirmed gone), no working bid is at or above a
working ask, what the core says it tracks is what it was not told is gone, and the ledger's
position is the sum of the signed fills fed in.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field

from desk import INSTRUMENT, TICK, S, book_at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import RiskSettings, StrategySettings
from engine.events import (
    Action,
    CancelAll,
    CancelOrder,
    CancelRejected,
    Command,
    Fill,
    Flatten,
    HedgeNow,
    Kill,
    Narrow,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    Resume,
    SetAutoHedge,
    SetPaused,
    Side,
    Widen,
)
from engine.quoter import Quoter

LOT = INSTRUMENT.lot_size

COMMANDS: list[Command] = [
    Kill(),
    Resume(),
    SetPaused(None),
    SetPaused(True),
    SetPaused(False),
    Widen(),
    Narrow(),
    HedgeNow(),
    HedgeNow(fraction=0.3),
    HedgeNow(usd=150.0),
    Flatten(),
    SetAutoHedge(None),
    SetAutoHedge(True),
    SetAutoHedge(False),
]
REASONS = ["post-only would cross", "simulated reject", "insufficient margin"]
STEPS = (
    ["book"] * 4
    + ["timer"] * 2
    + ["process"] * 6
    + ["deliver"] * 7
    + ["fill"] * 3
    + ["command"] * 2
    + ["error"]
)


@dataclass
class _Live:
    side: Side
    price: float
    lots: int


@dataclass
class Venue:
    """What the venue holds and what it has yet to tell the core."""

    in_flight: list[Action] = field(default_factory=list)
    live: dict[str, _Live] = field(default_factory=dict)
    outbox: dict[str, deque[OrderEvent]] = field(default_factory=dict)
    hedges: dict[str, PlaceHedge] = field(default_factory=dict)

    def tell(self, event: OrderEvent) -> None:
        self.outbox.setdefault(event.order_id, deque()).append(event)


class Harness:
    def __init__(self, quoter: Quoter) -> None:
        self.quoter = quoter
        self.venue = Venue()
        self.now = 0
        self.mid = 100_000.0
        self.position = 0.0
        self.working: dict[str, tuple[Side, float, bool]] = {}
        """The core's orders not yet confirmed gone to it: (side, price, is_hedge)."""

    # ---- the core's side -------------------------------------------------------------------

    def take(self, actions: list[Action]) -> None:
        for action in actions:
            self.venue.in_flight.append(action)
            if isinstance(action, PlaceQuote):
                assert action.order_id not in self.working, "order id reused"
                assert action.size_base > 0 and math.isfinite(action.price)
                self.working[action.order_id] = (action.side, action.price, False)
            elif isinstance(action, PlaceHedge):
                assert action.order_id not in self.working, "order id reused"
                assert action.size_base > 0
                self.working[action.order_id] = (action.side, self.mid, True)
                self.venue.hedges[action.order_id] = action

    def deliver(self, event: OrderEvent) -> None:
        if isinstance(event, Fill):
            self.position += int(event.side) * event.size_base
            if event.leaves_base <= 0:
                self.working.pop(event.order_id, None)
            self.take(self.quoter.on_fill(event, self.now))
            return
        if isinstance(event, OrderRejected | OrderCanceled):
            self.working.pop(event.order_id, None)
        self.take(self.quoter.on_order_update(event, self.now))

    # ---- the venue's side ------------------------------------------------------------------

    def process(self, action: Action, data: st.DataObject) -> None:
        venue = self.venue
        if isinstance(action, PlaceQuote):
            if data.draw(st.integers(0, 3)) == 0:
                venue.tell(
                    OrderRejected(self.now, action.order_id, data.draw(st.sampled_from(REASONS)))
                )
            else:
                lots = round(action.size_base / LOT)
                venue.live[action.order_id] = _Live(action.side, action.price, lots)
                venue.tell(OrderAccepted(self.now, action.order_id))
        elif isinstance(action, PlaceHedge):
            if data.draw(st.integers(0, 4)) == 0:
                venue.tell(OrderRejected(self.now, action.order_id, "simulated reject"))
                return
            lots = round(action.size_base / LOT)
            filled = 0
            for _ in range(data.draw(st.integers(0, 2))):
                if filled >= lots:
                    break
                take = data.draw(st.integers(1, lots - filled))
                filled += take
                price = round(self.mid + data.draw(st.integers(-50, 50)) * TICK, 1)
                size = round(take * LOT, 8)
                venue.tell(
                    Fill(self.now, action.order_id, action.side, price, size,
                         size * price * 0.00025, False, round((lots - filled) * LOT, 8))
                )  # fmt: skip
            if filled < lots:
                venue.tell(OrderCanceled(self.now, action.order_id))  # the IOC remainder
        elif isinstance(action, CancelOrder):
            if action.order_id not in venue.live:
                venue.tell(CancelRejected(self.now, action.order_id, "unknown order"))
            elif data.draw(st.integers(0, 3)) == 0:
                venue.tell(CancelRejected(self.now, action.order_id, "simulated cancel failure"))
            else:
                del venue.live[action.order_id]
                venue.tell(OrderCanceled(self.now, action.order_id))
        elif isinstance(action, CancelAll):
            for order_id in list(venue.live):
                del venue.live[order_id]
                venue.tell(OrderCanceled(self.now, order_id))

    def fill_quote(self, order_id: str, data: st.DataObject) -> None:
        order = self.venue.live[order_id]
        take = data.draw(st.integers(1, order.lots))
        better = data.draw(st.integers(0, 3))  # at our price or better for us
        price = round(order.price - int(order.side) * better * TICK, 1)
        order.lots -= take
        if not order.lots:
            del self.venue.live[order_id]
        size = round(take * LOT, 8)
        self.venue.tell(
            Fill(self.now, order_id, order.side, price, size, -size * price * 0.00025, True,
                 round(order.lots * LOT, 8))
        )  # fmt: skip

    # ---- the checks ------------------------------------------------------------------------

    def check(self) -> None:
        quoter = self.quoter
        assert_finite(quoter.snapshot(self.now))
        quotes = [(side, price) for side, price, hedge in self.working.values() if not hedge]
        bids = [p for s, p in quotes if s is Side.BUY]
        asks = [p for s, p in quotes if s is Side.SELL]
        assert len(bids) <= 1 and len(asks) <= 1, f"working quotes: {quotes}"
        if bids and asks:
            assert max(bids) < min(asks), f"our bid {bids} crosses our ask {asks}"
        assert {o.order_id for o in quoter.working_orders()} == set(self.working)
        assert abs(quoter.position_base - self.position) <= 1e-9


def assert_finite(value: object, path: str = "snapshot") -> None:
    if isinstance(value, float):
        assert math.isfinite(value), f"{path} = {value}"
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            assert_finite(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            assert_finite(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_finite(item, f"{path}[{key!r}]")


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    rate_limit=st.sampled_from([6, 20, 1200]),
    loss_pct=st.sampled_from([3.0, 100.0]),
    quote_usd=st.sampled_from([100.0, 900.0]),
    steps=st.integers(10, 120),
)
def test_no_legitimate_venue_behaviour_breaks_the_core(
    data, rate_limit, loss_pct, quote_usd, steps
):
    quoter = Quoter(
        StrategySettings(quote_size_usd=quote_usd),
        RiskSettings(
            rate_limit_calls=rate_limit,
            daily_loss_limit_pct=loss_pct,
            reject_backoff_max_s=2.0,
            reject_streak_s=3.0,
        ),
        INSTRUMENT,
    )
    h = Harness(quoter)
    for _ in range(12):  # warm the volatility estimate up; nothing is answered yet
        h.now += S
        h.take(quoter.on_book(book_at(h.mid, h.now), h.now))
        h.take(quoter.on_timer(h.now))
        h.check()
    for _ in range(steps):
        step = data.draw(st.sampled_from(STEPS))
        venue = h.venue
        if step == "book":
            h.now += data.draw(st.integers(0, 2 * S))
            jump = st.integers(-400, 400) | st.integers(-5000, 5000)  # up to $40, or $500
            h.mid = round(h.mid + data.draw(jump) * TICK, 1)
            half = data.draw(st.integers(1, 4))
            h.take(quoter.on_book(book_at(h.mid, h.now, half_ticks=half), h.now))
        elif step == "timer":
            h.now += data.draw(st.integers(0, 5 * S))
            h.take(quoter.on_timer(h.now))
        elif step == "process" and venue.in_flight:
            index = data.draw(st.integers(0, len(venue.in_flight) - 1))
            h.process(venue.in_flight.pop(index), data)
        elif step == "deliver" and any(venue.outbox.values()):
            order_id = data.draw(st.sampled_from(sorted(k for k, q in venue.outbox.items() if q)))
            h.now += data.draw(st.integers(0, S // 2))
            h.deliver(venue.outbox[order_id].popleft())
        elif step == "fill" and venue.live:
            h.fill_quote(data.draw(st.sampled_from(sorted(venue.live))), data)
        elif step == "command":
            h.take(quoter.on_command(data.draw(st.sampled_from(COMMANDS)), h.now))
        elif step == "error" and data.draw(st.integers(0, 3)) == 0:
            h.take(quoter.on_error("venue timeout", h.now))
        h.check()


def test_a_silent_venue_is_chased_and_its_orders_keep_their_side_until_it_answers():
    from desk import INSTRUMENT, book_at

    from engine.config import RiskSettings, StrategySettings
    from engine.events import CancelOrder, CancelRejected, OrderAccepted, OrderCanceled, PlaceQuote
    from engine.quoter import Quoter

    quoter = Quoter(StrategySettings(), RiskSettings(), INSTRUMENT)
    now = 0
    placed: list[PlaceQuote] = []
    for _ in range(12):
        now += S
        for action in quoter.on_book(book_at(100_000.0, now), now) + quoter.on_timer(now):
            if isinstance(action, PlaceQuote):
                placed.append(action)
    assert len(placed) == 2, "both sides sent, neither answered"
    now += 11 * S  # no accept, no reject: the placements may be lost, or only slow
    actions = quoter.on_book(book_at(100_000.0, now), now) + quoter.on_timer(now)
    cancels = [a for a in actions if isinstance(a, CancelOrder)]
    assert sorted(c.order_id for c in cancels) == sorted(p.order_id for p in placed)
    for p in placed:  # "unknown order" may only mean the placement is still on its way
        quoter.on_order_update(CancelRejected(now, p.order_id, "unknown order"), now)
    sent_later: list = []
    for _ in range(12):  # two minutes of silence: the sides stay held, and it is said loudly
        now += 10 * S
        sent_later += quoter.on_book(book_at(100_000.0, now), now) + quoter.on_timer(now)
    assert not [a for a in sent_later if isinstance(a, PlaceQuote)]
    assert len(quoter.working_orders()) == 2
    silent = [a for a in quoter.alerts if "stay held until it answers" in a.message]
    assert len(silent) == 2 and all(a.severity.value == "CRITICAL" for a in silent)
    # one placement turns up after all: it is ours, unwanted, and cancelled
    late = quoter.on_order_update(OrderAccepted(now, placed[0].order_id), now)
    assert late == [CancelOrder(placed[0].order_id)]
    replaced = quoter.on_order_update(OrderCanceled(now, placed[0].order_id), now)
    assert [a.side for a in replaced if isinstance(a, PlaceQuote)] == [placed[0].side]


def test_a_cancel_with_no_answer_is_sent_again_then_the_kill_switch_takes_over():
    from desk import Desk

    from engine.events import CancelAll, CancelOrder, OrderAccepted, PlaceQuote
    from engine.snapshot import EngineState

    desk = Desk()
    desk.warm_up()
    quoter = desk.quoter
    bid = desk.quote(Side.BUY)
    assert bid is not None
    # from now on the venue goes silent: drive the core by hand
    now = desk.now_ns + 3 * S
    sent = quoter.on_timer(now)  # the refresh cancels both quotes
    assert any(isinstance(a, CancelOrder) and a.order_id == bid.order_id for a in sent)
    resent = []
    for _ in range(6):
        now += 11 * S
        resent += quoter.on_timer(now)
    assert [a for a in resent if isinstance(a, CancelOrder) and a.order_id == bid.order_id]
    assert any(isinstance(a, CancelAll) for a in resent)
    assert quoter.state is EngineState.KILLED
    assert not [a for a in resent if isinstance(a, PlaceQuote | OrderAccepted)]


def test_a_hedge_with_no_answer_blocks_new_hedges_until_the_venue_answers():
    from desk import INSTRUMENT, book_at

    from engine.config import RiskSettings, StrategySettings
    from engine.events import CancelOrder, Fill, Flatten, PlaceHedge
    from engine.quoter import Quoter

    quoter = Quoter(StrategySettings(), RiskSettings(), INSTRUMENT)
    now = S
    quoter.on_book(book_at(100_000.0, now), now)
    quoter.ledger.on_fill(
        side=Side.BUY, price=100_000.0, size_base=0.002, fee_usd=0.0, is_maker=True, mid=None
    )
    hedges = [a for a in quoter.on_command(Flatten(), now) if isinstance(a, PlaceHedge)]
    assert len(hedges) == 1
    hedge = hedges[0]
    for _ in range(13):  # over two minutes of silence
        now += 10 * S
        quoter.on_book(book_at(100_000.0, now), now)
        # an IOC cannot be cancelled: it is alerted, never cancelled, never sent twice
        assert CancelOrder(hedge.order_id) not in quoter.on_timer(now)
        assert not [a for a in quoter.on_command(Flatten(), now) if isinstance(a, PlaceHedge)]
    assert any(f"no answer for hedge {hedge.order_id}" in a.message for a in quoter.alerts)
    assert any("new hedges stay held" in a.message for a in quoter.alerts)
    # the venue answers at last: the hedge filled, and the position is flat
    fee = 0.002 * 99_999.9 * 0.00025
    quoter.on_fill(Fill(now, hedge.order_id, Side.SELL, 99_999.9, 0.002, fee, False, 0.0), now)
    assert quoter.position_base == 0
    assert quoter.working_order(hedge.order_id) is None
