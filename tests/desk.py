"""A test desk: drives the quoter core by hand and carries out its actions at once.

Orders are acknowledged instantly (or rejected, for the sides in `reject`), cancels confirm
instantly, hedges fill at the touch with the guide's taker fee, and tests decide when our quotes
fill. It is how a unit test states the
guide's numbers; the embedded exchange is what the integration tests use.
"""

from __future__ import annotations

from engine.config import RiskSettings, StrategySettings
from engine.events import (
    Action,
    BookUpdate,
    CancelAll,
    CancelOrder,
    Command,
    Fill,
    Instrument,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    ReplaceQuote,
    Side,
)
from engine.quoter import Quoter

S = 1_000_000_000
TICK = 0.1
INSTRUMENT = Instrument("BTC-PERP", tick_size=TICK, lot_size=0.00001)
MAKER_PCT = -0.025
TAKER_PCT = 0.025


def book_at(mid: float, ts_ns: int, half_ticks: int = 1, size_base: float = 5.0) -> BookUpdate:
    """A two-sided book centred on `mid` (which must sit on the tick grid)."""
    bids = tuple((round(mid - (half_ticks + i) * TICK, 1), size_base) for i in range(5))
    asks = tuple((round(mid + (half_ticks + i) * TICK, 1), size_base) for i in range(5))
    return BookUpdate(ts_ns, bids, asks, is_snapshot=True)


class Desk:
    def __init__(
        self, strategy: dict | None = None, risk: dict | None = None, order_id_prefix: str = ""
    ) -> None:
        self.quoter = Quoter(
            StrategySettings(**(strategy or {})),
            RiskSettings(**(risk or {})),
            INSTRUMENT,
            order_id_prefix=order_id_prefix,
        )
        self.now_ns = 0
        self.mid = 100_000.0
        self.resting: dict[str, PlaceQuote] = {}
        self.sent: list[Action] = []
        self.hedges: list[PlaceHedge] = []
        self.reject: dict[Side, str] = {}
        """Quote sides the desk refuses, with the reason it gives."""
        self.sent_at: list[tuple[int, Action]] = []

    # ---- market -------------------------------------------------------------------------------

    def tick(self, mid: float | None = None, dt_s: float = 1.0) -> list[Action]:
        """Move time on, publish a book at `mid`, run the timer, carry out every action."""
        self.now_ns += int(dt_s * S)
        if mid is not None:
            self.mid = mid
        actions = self.quoter.on_book(book_at(self.mid, self.now_ns), self.now_ns)
        actions = self.execute(actions)
        return actions + self.execute(self.quoter.on_timer(self.now_ns))

    def warm_up(self, seconds: int = 11) -> None:
        for _ in range(seconds):
            self.tick()

    # ---- orders -------------------------------------------------------------------------------

    def execute(self, actions: list[Action]) -> list[Action]:
        done = list(actions)
        for action in actions:
            self.sent.append(action)
            self.sent_at.append((self.now_ns, action))
            if isinstance(action, PlaceQuote) and action.side in self.reject:
                done += self.execute(
                    self.quoter.on_order_update(
                        OrderRejected(self.now_ns, action.order_id, self.reject[action.side]),
                        self.now_ns,
                    )
                )
            elif isinstance(action, PlaceQuote):
                self.resting[action.order_id] = action
                done += self.execute(
                    self.quoter.on_order_update(
                        OrderAccepted(self.now_ns, action.order_id), self.now_ns
                    )
                )
            elif isinstance(action, CancelOrder):
                if self.resting.pop(action.order_id, None) is not None:
                    done += self.execute(
                        self.quoter.on_order_update(
                            OrderCanceled(self.now_ns, action.order_id), self.now_ns
                        )
                    )
            elif isinstance(action, ReplaceQuote):  # a venue that replaces in one request
                new = action.quote
                if self.resting.pop(action.old_order_id, None) is None:
                    done += self.execute(self.quoter.on_order_update(
                        OrderRejected(self.now_ns, new.order_id,
                                      "Cannot modify canceled or filled order"), self.now_ns
                    ))  # fmt: skip
                    continue
                self.resting[new.order_id] = new
                for event in (
                    OrderAccepted(self.now_ns, new.order_id),
                    OrderCanceled(self.now_ns, action.old_order_id),
                ):
                    done += self.execute(self.quoter.on_order_update(event, self.now_ns))
            elif isinstance(action, CancelAll):
                for order_id in list(self.resting):
                    del self.resting[order_id]
                    done += self.execute(
                        self.quoter.on_order_update(
                            OrderCanceled(self.now_ns, order_id), self.now_ns
                        )
                    )
            elif isinstance(action, PlaceHedge):
                self.hedges.append(action)
                touch = self.mid - TICK if action.side is Side.SELL else self.mid + TICK
                done += self.execute(
                    self.quoter.on_fill(
                        Fill(
                            self.now_ns,
                            action.order_id,
                            action.side,
                            touch,
                            action.size_base,
                            fee_usd=action.size_base * touch * TAKER_PCT / 100,
                            is_maker=False,
                        ),
                        self.now_ns,
                    )
                )
        return done

    def quote(self, side: Side) -> PlaceQuote | None:
        for order in self.resting.values():
            if order.side is side:
                return order
        return None

    def fill(self, side: Side, size_base: float | None = None) -> list[Action]:
        """A taker trades against our resting quote on `side` (all of it unless `size_base`)."""
        order = self.quote(side)
        assert order is not None, f"no resting {side.name} quote"
        size = order.size_base if size_base is None else size_base
        leaves = round(order.size_base - size, 8)
        if leaves <= 0:
            del self.resting[order.order_id]
        else:
            self.resting[order.order_id] = PlaceQuote(order.order_id, side, order.price, leaves)
        fee = size * order.price * MAKER_PCT / 100
        return self.execute(
            self.quoter.on_fill(
                Fill(self.now_ns, order.order_id, side, order.price, size, fee, True, leaves),
                self.now_ns,
            )
        )

    def command(self, command: Command) -> list[Action]:
        return self.execute(self.quoter.on_command(command, self.now_ns))
