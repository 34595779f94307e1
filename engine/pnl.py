"""P&L attribution as an identity: the terms sum to the equity change, exactly.

Equity is cash plus the position marked to mid. Every event that changes equity changes exactly
one or two terms by exactly that amount:

- a maker fill of signed size q at price p, mid m, fee f:  spread += q * (m - p),  rebates += -f
- a taker (hedge) fill:                                    hedge += q * (m - p) - f
- the mid moving from m0 to m1 with position Q:            inventory += Q * (m1 - m0)
- a funding payment at rate r on mark k:                   funding += -Q * k * r

so `net = spread + rebates + inventory + hedge + funding` equals `equity - starting equity`.
The ledger keeps these in exact rationals built from the decimal text of each number
(99995.7 is 999957/10, not the nearest binary float), so the identity holds to the cent and
beyond, whatever the number of events. Fills and marks are rare next to book messages, so the
cost of exact arithmetic stays off the hot path; a float view serves the per-message checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from engine.events import Side

_ZERO = Fraction(0)


def exact(value: float) -> Fraction:
    """The decimal a float prints as, as an exact rational: exact(0.1) == Fraction(1, 10)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return Fraction(repr(float(value)))


@dataclass(frozen=True, slots=True)
class PnlTerms:
    """Signed P&L terms in USD (positive is money made); `net_usd` is their sum."""

    spread_usd: float
    rebates_usd: float
    inventory_usd: float
    hedge_usd: float
    funding_usd: float
    net_usd: float


class PnlLedger:
    """Cash, position and the attribution terms, updated per fill, mark and funding payment."""

    def __init__(self) -> None:
        self.cash = _ZERO
        self.position = _ZERO
        self.spread = _ZERO
        self.rebates = _ZERO
        self.inventory = _ZERO
        self.hedge = _ZERO
        self.funding = _ZERO
        self._mark: Fraction | None = None
        self.fees_paid_usd = 0.0
        self.maker_volume_usd = 0.0
        self.taker_volume_usd = 0.0
        self.fills = 0
        # float views, refreshed whenever the exact state changes
        self.position_base = 0.0
        self._net_at_mark = 0.0
        self._mark_f = 0.0

    # ---- updates ------------------------------------------------------------------------------

    def mark(self, mid: float) -> None:
        """Re-mark the position to a new mid; the move goes to the inventory term."""
        m = exact(mid)
        if self._mark is not None and self.position:
            self.inventory += self.position * (m - self._mark)
        self._mark = m
        self._refresh_floats()

    def on_fill(
        self,
        *,
        side: Side,
        price: float,
        size_base: float,
        fee_usd: float,
        is_maker: bool,
        mid: float | None,
    ) -> None:
        """Book one fill; `mid` is the market mid at the fill (the fill price if there is none)."""
        self.mark(price if mid is None else mid)
        assert self._mark is not None
        p = exact(price)
        q = exact(size_base) * int(side)
        fee = exact(fee_usd)
        edge = q * (self._mark - p)
        if is_maker:
            self.spread += edge
            self.rebates -= fee
            self.maker_volume_usd += size_base * price
        else:
            self.hedge += edge - fee
            self.taker_volume_usd += size_base * price
        self.cash -= q * p + fee
        self.position += q
        self.fees_paid_usd += fee_usd
        self.fills += 1
        self._refresh_floats()

    def reconcile(self, position_base: float, mid: float) -> None:
        """Adopt the venue's position when it differs from ours: the difference is booked as a
        trade at mid with no fee, so equity does not jump and the identity still holds."""
        self.mark(mid)
        assert self._mark is not None
        q = exact(position_base) - self.position
        self.cash -= q * self._mark
        self.position += q
        self._refresh_floats()

    def on_funding(self, *, rate: float, mark_price: float) -> None:
        """A long pays `rate * position * mark` when the rate is positive."""
        payment = -self.position * exact(mark_price) * exact(rate)
        self.funding += payment
        self.cash += payment
        self._refresh_floats()

    # ---- reading ------------------------------------------------------------------------------

    @property
    def net(self) -> Fraction:
        return self.spread + self.rebates + self.inventory + self.hedge + self.funding

    def equity(self, mid: float) -> Fraction:
        """Cash plus the position marked to `mid`, exactly."""
        return self.cash + self.position * exact(mid)

    def net_usd_at(self, mid: float | None) -> float:
        """Net P&L if marked at `mid` now, in floats: cheap enough for every market message."""
        if mid is None or self._mark is None:
            return self._net_at_mark
        return self._net_at_mark + self.position_base * (mid - self._mark_f)

    def terms(self) -> PnlTerms:
        return PnlTerms(
            spread_usd=float(self.spread),
            rebates_usd=float(self.rebates),
            inventory_usd=float(self.inventory),
            hedge_usd=float(self.hedge),
            funding_usd=float(self.funding),
            net_usd=float(self.net),
        )

    @property
    def mark_price(self) -> float | None:
        """The mid the position was last marked at."""
        return None if self._mark is None else self._mark_f

    @property
    def volume_usd(self) -> float:
        return self.maker_volume_usd + self.taker_volume_usd

    def _refresh_floats(self) -> None:
        self.position_base = float(self.position)
        self._net_at_mark = float(self.net)
        self._mark_f = 0.0 if self._mark is None else float(self._mark)
