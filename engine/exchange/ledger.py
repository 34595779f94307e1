"""One account on the local exchange, in exact decimals.

`cash` is what the account would hold with its position closed at zero: deposits, minus what
it paid for what it bought, plus what it got for what it sold, minus fees, plus funding
received. Equity at a mark is `cash + szi * mark`, so its change is exactly fills, fees and
funding: the identity the tests check. Realized P&L (`closedPnl`) is reported per fill against
the average entry price, as Hyperliquid reports it; it is not a separate balance.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from engine.exchange.rules import usdc, wire

ZERO = Decimal(0)
FILLS_KEPT = 10_000
"""Hyperliquid serves at most the 10,000 most recent fills of an account."""


def direction(start: Decimal, signed_size: Decimal) -> str:
    """Hyperliquid's `dir` of a fill: Open Long, Close Short, Long > Short, ..."""
    end = start + signed_size
    if start == 0 or (start > 0) == (signed_size > 0):
        return "Open Long" if signed_size > 0 else "Open Short"
    if end == 0 or (end > 0) == (start > 0):
        return "Close Short" if start < 0 else "Close Long"
    return "Short > Long" if start < 0 else "Long > Short"


class Ledger:
    """Cash, position, entry price, funding, volume and fills of one address."""

    def __init__(self, address: str, deposit: Decimal) -> None:
        self.address = address
        self.deposited = deposit
        self.cash = deposit
        self.szi = ZERO
        self.entry_px = ZERO
        self.leverage = 20
        self.is_cross = True
        self.volume = ZERO
        self.fees = ZERO
        self.funding = ZERO
        """Funding received in all (negative when paid)."""
        self.funding_since_open = ZERO
        self.funding_since_change = ZERO
        self.fills: deque[dict[str, Any]] = deque(maxlen=FILLS_KEPT)
        self.fundings: deque[dict[str, Any]] = deque(maxlen=FILLS_KEPT)

    def fill(
        self, is_buy: bool, px: Decimal, sz: Decimal, fee_rate: Decimal
    ) -> tuple[Decimal, Decimal, Decimal]:
        """Book one fill; returns (fee, closedPnl, start position)."""
        signed = sz if is_buy else -sz
        start = self.szi
        fee = usdc(px * sz * fee_rate)
        self.cash -= signed * px + fee
        self.fees += fee
        self.volume += px * sz
        closed = ZERO
        if start == 0 or (start > 0) == is_buy:  # opening or adding
            total = abs(start) + sz
            self.entry_px = (self.entry_px * abs(start) + px * sz) / total
        else:
            closing = min(sz, abs(start))
            closed = (px - self.entry_px) * closing * (1 if start > 0 else -1)
            if sz > abs(start):  # flipped: the rest opens at px
                self.entry_px = px
        self.szi = start + signed
        if self.szi == 0:
            self.entry_px = ZERO
        if start == 0 or (self.szi != 0 and (self.szi > 0) != (start > 0)):
            self.funding_since_open = ZERO
        self.funding_since_change = ZERO
        return fee, closed, start

    def pay_funding(self, oracle_px: Decimal, rate: Decimal) -> Decimal:
        """Hourly funding: a long pays `szi * oracle * rate` when the rate is positive. Returns
        what the account received (negative when it paid)."""
        received = -usdc(self.szi * oracle_px * rate)
        self.cash += received
        self.funding += received
        self.funding_since_open += received
        self.funding_since_change += received
        return received

    def equity(self, mark: Decimal) -> Decimal:
        return self.cash + self.szi * mark

    def margin_used(self, mark: Decimal) -> Decimal:
        return abs(self.szi) * mark / self.leverage

    def position(self, coin: str, mark: Decimal, max_leverage: int) -> dict[str, Any]:
        """The `position` object of clearinghouseState."""
        value = abs(self.szi) * mark
        unrealized = self.szi * (mark - self.entry_px)
        margin = value / self.leverage
        entry_value = abs(self.szi) * self.entry_px / self.leverage
        roe = unrealized / entry_value if entry_value else ZERO
        leverage: dict[str, Any] = {
            "type": "cross" if self.is_cross else "isolated",
            "value": self.leverage,
        }
        if not self.is_cross:
            leverage["rawUsd"] = wire(usdc(self.cash))
        return {
            "coin": coin,
            "szi": wire(self.szi),
            "entryPx": wire(self.entry_px.quantize(Decimal("0.000001"))),
            "positionValue": wire(usdc(value)),
            "unrealizedPnl": wire(usdc(unrealized)),
            "returnOnEquity": wire(roe.quantize(Decimal("0.000000000001"))),
            "liquidationPx": self._liquidation_px(mark, max_leverage),
            "marginUsed": wire(usdc(margin)),
            "maxLeverage": max_leverage,
            "leverage": leverage,
            # Hyperliquid's cumFunding counts what was paid: the opposite sign of received
            "cumFunding": {
                "allTime": wire(-self.funding),
                "sinceOpen": wire(-self.funding_since_open),
                "sinceChange": wire(-self.funding_since_change),
            },
        }

    def _liquidation_px(self, mark: Decimal, max_leverage: int) -> str | None:
        """Where equity falls to the maintenance margin (half the initial at max leverage)."""
        if self.szi == 0:
            return None
        mm = Decimal(1) / (2 * max_leverage)
        # cash + szi * p = mm * |szi| * p  ->  p = cash / (mm * |szi| - szi)
        denominator = mm * abs(self.szi) - self.szi
        if denominator == 0:
            return None
        px = self.cash / denominator
        return wire(px.quantize(Decimal("0.1"))) if px > 0 else None
