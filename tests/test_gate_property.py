"""The gate and the core together, under arbitrary venue event sequences (hypothesis).

Whatever a venue sends, honest or hostile, in any order: the core never raises, never holds a
non-finite number, never has more than one working quote per side, never quotes across its own
orders, and its position is exactly the sum of the fills the gate let through.
"""

from __future__ import annotations

import math
from fractions import Fraction

from desk import INSTRUMENT, book_at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import RiskSettings, StrategySettings
from engine.events import (
    BookUpdate,
    CancelRejected,
    Fill,
    Flatten,
    FundingPayment,
    HedgeNow,
    Kill,
    Narrow,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    Resume,
    SetAutoHedge,
    SetPaused,
    Side,
    Trade,
    Widen,
)
from engine.quoter import Quoter
from engine.validate import MessageGuard

S = 1_000_000_000
junk_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.none(),
    st.text(max_size=3),
    st.booleans(),
)
COMMANDS = [Kill(), Resume(), SetPaused(), Widen(), Narrow(), HedgeNow(), Flatten(), SetAutoHedge()]


def finite_numbers(obj: object, path: str = "snapshot") -> list[str]:
    """Paths of every non-finite float inside a (nested) frozen dataclass."""
    bad: list[str] = []
    if isinstance(obj, float):
        if not math.isfinite(obj):
            bad.append(path)
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            bad += finite_numbers(item, f"{path}[{i}]")
    elif hasattr(obj, "__slots__") and not isinstance(obj, str | int):
        for name in obj.__slots__:
            bad += finite_numbers(getattr(obj, name, None), f"{path}.{name}")
    return bad


def check_invariants(quoter: Quoter, accepted_position: Fraction, now_ns: int) -> None:
    quotes = [o for o in quoter.working_orders() if not o.is_hedge]
    bids = [o.price for o in quotes if o.side is Side.BUY]
    asks = [o.price for o in quotes if o.side is Side.SELL]
    assert len(bids) <= 1 and len(asks) <= 1, (bids, asks)
    if bids and asks:
        assert max(bids) < min(asks), (bids, asks)
    assert quoter.ledger.position == accepted_position
    assert not finite_numbers(quoter.snapshot(now_ns))


def an_event(data: st.DataObject, quoter: Quoter, now_ns: int, mid: float) -> object:
    """One venue event: honest answers about our orders, plausible market data, or junk."""
    orders = quoter.working_orders()
    kind = data.draw(
        st.sampled_from(
            ["book", "book", "trade", "fill", "fill", "ack", "cancel", "reject", "refuse",
             "funding", "phantom", "junk"]
        )
    )  # fmt: skip
    if kind == "book":
        return book_at(mid, now_ns, half_ticks=data.draw(st.integers(1, 5)))
    if kind == "trade":
        return Trade(
            now_ns, mid, data.draw(st.floats(0.0001, 5.0)), data.draw(st.sampled_from(Side))
        )
    if kind == "funding":
        return FundingPayment(now_ns, data.draw(st.floats(-0.001, 0.001)), mid)
    if kind == "junk":
        levels = st.tuples(st.tuples(junk_number, junk_number))
        ids = st.text(max_size=4) | st.integers()
        junk_fill = st.builds(
            Fill,
            st.integers(-5, 2**70),
            ids,
            st.sampled_from(Side) | junk_number,
            junk_number,
            junk_number,
            junk_number,
            junk_number,
            junk_number,
        )
        return data.draw(
            st.one_of(
                st.builds(BookUpdate, st.integers(0, 10**12), levels, levels),
                junk_fill,
                st.builds(OrderCanceled, st.integers(0, 10**12), ids),
            )
        )
    if kind == "phantom" or not orders:
        return Fill(now_ns, "ghost", Side.BUY, mid, 0.01, 0.0, True, 0.0)
    order = data.draw(st.sampled_from(orders))
    if kind == "fill":
        share = data.draw(st.sampled_from([0.25, 0.5, 1.0, 1.5, 1e6]))
        size = round(order.leaves_base * share, 5) or INSTRUMENT.lot_size
        leaves = max(0.0, round(order.leaves_base - size, 5))
        price = order.price if not order.is_hedge else mid
        price = data.draw(st.sampled_from([price, price, price * 1.3, math.nan]))
        fee = data.draw(st.sampled_from([size * price * 0.00025, -size * price * 0.00025, 1e308]))
        return Fill(
            now_ns, order.order_id, order.side, price, size, fee, not order.is_hedge, leaves
        )
    if kind == "ack":
        return OrderAccepted(now_ns, order.order_id)
    if kind == "cancel":
        return OrderCanceled(now_ns, order.order_id)
    if kind == "reject":
        return OrderRejected(now_ns, order.order_id, "post-only would cross")
    return CancelRejected(now_ns, order.order_id, "busy")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_no_venue_sequence_breaks_the_core_behind_the_gate(data):
    quoter = Quoter(
        StrategySettings(quote_size_usd=600.0),
        RiskSettings(rate_limit_calls=60),
        INSTRUMENT,
        order_id_prefix="p-",
    )
    guard = MessageGuard(
        orders=quoter.working_order,
        tick_size=INSTRUMENT.tick_size,
        lot_size=INSTRUMENT.lot_size,
        max_fee_rate=0.0005,
    )
    now_ns = 0
    mid = 100_000.0
    position = Fraction(0)
    for _ in range(12):  # warm the volatility estimate up so the core quotes
        now_ns += S
        quoter.on_book(book_at(mid, now_ns), now_ns)
        quoter.on_timer(now_ns)
    steps = data.draw(st.integers(10, 80))
    for _ in range(steps):
        now_ns += data.draw(st.integers(1, 2 * S))
        mid = round(mid * (1 + data.draw(st.floats(-0.004, 0.004))), 1)
        step = data.draw(st.sampled_from(["event", "event", "event", "timer", "command"]))
        if step == "timer":
            quoter.on_timer(now_ns)
        elif step == "command":
            quoter.on_command(data.draw(st.sampled_from(COMMANDS)), now_ns)
        else:
            event = an_event(data, quoter, now_ns, mid)
            if guard.check(event, now_ns) is None:
                quoter.on_event(event, now_ns)  # type: ignore[arg-type]
                guard.core_caught_up()
                guard.accepted_mid(quoter.book.mid)
                if isinstance(event, Fill):
                    position += Fraction(repr(event.size_base)) * int(event.side)
        check_invariants(quoter, position, now_ns)
