"""Hyperliquid wire formats, client side: typed messages from raw frames, then core events.

Pinned to the outside world only (the reference's documented shapes and recorded exchange
messages); nothing here is shared with the local exchange's server.

WebSocket: `parse(frame)` turns one text frame (bytes or str) into one typed message:

    WsBook (l2Book)            WsTrades (trades)           WsUserFills (userFills)
    OrderUpdates (orderUpdates)  UserEventFills / WsFunding / WsLiquidation / NonUserCancels
    (channel "user", i.e. the userEvents subscription)    SubscriptionResponse, Pong,
    PostReply (post), ErrorFrame (channel "error"), Greeting (the plain-text hello),
    Unknown (any other channel; never an error).

A frame is decoded in one pass by a msgspec decoder over a union tagged by "channel"
(measured 4.1 us for a 20x20 l2Book frame against 5.6 us for decoding an envelope with
`data: msgspec.Raw` and then the data). Everything `parse` returns has been checked: its
structure by msgspec, its numbers (decimal strings) by this module: finite, positive prices and
sizes, books strictly ordered best-first and not crossed. Anything else raises `WireError` (a
`ValueError`) with one line naming the channel and what is wrong, so the venue can log it once
and resync; no other exception escapes.

A book's 80 number strings are converted once: the check that `parse` runs builds the float
levels and caches them on the `WsBook`, and `book_event` hands them to the core.

REST (`POST /info`, `POST /exchange`): `decode_meta`, `decode_l2_book`,
`decode_clearinghouse_state`, `decode_open_orders` (openOrders and frontendOpenOrders),
`decode_user_fills` (userFills, userFillsByTime), `decode_user_fees`, `decode_user_rate_limit`,
`decode_order_status`, `decode_exchange_reply`: bytes or str in, typed structs out, `WireError`
on anything malformed.

Struct attributes are snake_case; the JSON keys are the wire's camelCase (`rename="camel"`).
Numbers stay the wire's decimal strings; `to_decimal` and the fill accessors give `Decimal`s
for the ledger, `book_event` and `trade_events` give floats for the core.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Annotated, Any, Final, Literal, TypeAlias, TypeVar

import msgspec
from msgspec import Meta, Raw, Struct

from engine.events import BookUpdate, FundingPayment, Level, Side, Trade

GREETING: Final = "Websocket connection established."
"""The plain (non-JSON) text the server sends first on every connection."""

PING: Final = b'{"method":"ping"}'
"""The heartbeat to send; the answer is `Pong`."""

_INF: Final = math.inf
_NS_PER_MS: Final = 1_000_000
_MAX_ERROR_CHARS: Final = 240
_MAX_EXPONENT: Final = 15  # |value| < 1e15: no price, size or amount on the venue comes near


class WireError(ValueError):
    """A frame or reply that is not what the venue documents: one line, naming the channel."""

    def __init__(self, channel: str, what: str) -> None:
        text = " ".join(f"{channel}: {what}".split())  # one line, whatever the input held
        if len(text) > _MAX_ERROR_CHARS:
            text = text[: _MAX_ERROR_CHARS - 1] + "…"
        super().__init__(text)
        self.channel = channel


# ---- field types -------------------------------------------------------------------------------

Ms = Annotated[int, Meta(ge=0, lt=(1 << 63) // _NS_PER_MS)]
"""A time in ms since the epoch whose ns value fits an int64 (the journal stores ns)."""
Id = Annotated[int, Meta(ge=0, le=(1 << 63) - 1)]
"""oid, tid, lid, post id: non-negative and int64."""
Count = Annotated[int, Meta(ge=0)]
SideCode = Literal["B", "A"]
"""B = bid/buy, A = ask/sell."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def to_decimal(value: str, what: str = "value", channel: str = "wire") -> Decimal:
    """A wire decimal string as a finite `Decimal` (|x| < 1e15); `WireError` otherwise."""
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise WireError(channel, f"{what} {_short(value)} is not a decimal number") from None
    if not number.is_finite() or (number and number.adjusted() >= _MAX_EXPONENT):
        raise WireError(channel, f"{what} {_short(value)} is not a finite decimal number")
    return number


def _positive(channel: str, what: str, value: str) -> Decimal:
    number = to_decimal(value, what, channel)
    if number <= 0:
        raise WireError(channel, f"{what} {_short(value)} is not positive")
    return number


def _not_negative(channel: str, what: str, value: str) -> Decimal:
    number = to_decimal(value, what, channel)
    if number < 0:
        raise WireError(channel, f"{what} {_short(value)} is negative")
    return number


# ---- WebSocket data: market ----------------------------------------------------------------------


class WsLevel(Struct, gc=False):
    """One aggregated book level: price, size (decimal strings) and the number of orders."""

    px: str
    sz: str
    n: Count


class WsBook(Struct, dict=True):
    """An l2Book snapshot (WebSocket data or the REST reply): levels = (bids, asks), best first."""

    coin: str
    time: Ms
    levels: tuple[list[WsLevel], list[WsLevel]]

    @cached_property
    def float_levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks) as (price, size) floats, checked; computed once. Raises `WireError`."""
        bids = _bid_levels(self.coin, self.levels[0])
        asks = _ask_levels(self.coin, self.levels[1])
        if bids and asks and bids[0][0] >= asks[0][0]:
            raise WireError(
                f"l2Book {self.coin}",
                f"crossed book: best bid {self.levels[0][0].px} >= best ask {self.levels[1][0].px}",
            )
        return bids, asks


def _bad_level(coin: str, side: str, levels: list[WsLevel], level: WsLevel, why: str) -> WireError:
    index = next(i for i, other in enumerate(levels) if other is level)
    return WireError(
        f"l2Book {coin}",
        f"{side} level {index} (px {_short(level.px)}, sz {_short(level.sz)}) {why}",
    )


def _bid_levels(coin: str, levels: list[WsLevel]) -> tuple[Level, ...]:
    out: list[Level] = []
    previous = _INF
    for level in levels:
        try:
            px = float(level.px)
            sz = float(level.sz)
        except ValueError:
            raise _bad_level(coin, "bid", levels, level, "is not a number") from None
        if not (0.0 < px < _INF and 0.0 < sz < _INF):
            raise _bad_level(coin, "bid", levels, level, "is not a finite positive number")
        if not px < previous:
            raise _bad_level(coin, "bid", levels, level, "is out of order (bids descend)")
        previous = px
        out.append((px, sz))
    return tuple(out)


def _ask_levels(coin: str, levels: list[WsLevel]) -> tuple[Level, ...]:
    out: list[Level] = []
    previous = 0.0
    for level in levels:
        try:
            px = float(level.px)
            sz = float(level.sz)
        except ValueError:
            raise _bad_level(coin, "ask", levels, level, "is not a number") from None
        if not (0.0 < px < _INF and 0.0 < sz < _INF):
            raise _bad_level(coin, "ask", levels, level, "is not a finite positive number")
        if not px > previous:
            raise _bad_level(coin, "ask", levels, level, "is out of order (asks ascend)")
        previous = px
        out.append((px, sz))
    return tuple(out)


class WsTrade(Struct, gc=False):
    """A public trade; `side` is the aggressor's (B = a buyer lifted the ask)."""

    coin: str
    side: SideCode
    px: str
    sz: str
    hash: str
    time: Ms
    tid: Id
    users: tuple[str, ...] = ()
    """[buyer, seller]."""


class WsTrades(Struct):
    """A trades message. The first one after subscribing carries recent history, not news."""

    trades: list[WsTrade]


# ---- WebSocket data: account -----------------------------------------------------------------


class WsFill(Struct, rename="camel"):
    """One of our fills (userFills, user events, and the REST userFills/userFillsByTime)."""

    coin: str
    px: str
    sz: str
    side: SideCode
    time: Ms
    start_position: str
    dir: str
    closed_pnl: str
    hash: str
    oid: Id
    crossed: bool
    """True when we took liquidity."""
    fee: str
    """USD (feeToken) we paid; negative for a rebate."""
    tid: Id
    """The venue's trade id: a fill is booked once per tid."""
    fee_token: str | None = None
    cloid: str | None = None
    builder_fee: str | None = None
    liquidation: dict[str, Any] | None = None


class WsOrder(Struct, rename="camel"):
    """An order as orderUpdates, openOrders, frontendOpenOrders and orderStatus show it."""

    coin: str
    side: SideCode
    limit_px: str
    sz: str
    """Remaining size."""
    oid: Id
    timestamp: Ms
    orig_sz: str | None = None
    cloid: str | None = None
    # frontendOpenOrders and orderStatus only
    reduce_only: bool | None = None
    order_type: str | None = None
    tif: str | None = None
    is_trigger: bool | None = None
    trigger_px: str | None = None
    trigger_condition: str | None = None


class WsOrderUpdate(Struct, rename="camel"):
    """An order's new status (open, filled, canceled, rejected, badAloPxRejected, ...)."""

    order: WsOrder
    status: str
    status_timestamp: Ms


class OrderUpdates(Struct):
    updates: list[WsOrderUpdate]


class WsUserFills(Struct, rename="camel"):
    """userFills data; the first message after subscribing is the snapshot (is_snapshot)."""

    user: str
    fills: list[WsFill]
    is_snapshot: bool = False


class UserEventFills(Struct):
    """Channel "user" (userEvents): fills."""

    fills: list[WsFill]


class WsFunding(Struct, rename="camel"):
    """Channel "user": the hourly funding. `usdc` is what we received (negative: we paid)."""

    time: Ms
    coin: str
    usdc: str
    szi: str
    funding_rate: str


class FundingDelta(Struct, rename="camel"):
    """One hourly payment in userFunding: `usdc` received (negative: paid) on size `szi`."""

    coin: str
    usdc: str
    szi: str
    funding_rate: str
    type: str = "funding"
    n_samples: int | None = None


class UserFundingEntry(Struct):
    """userFunding: one payment, at the venue's `time` (ms)."""

    time: Ms
    delta: FundingDelta
    hash: str | None = None


class WsLiquidation(Struct):
    """Channel "user": a liquidation (keys are snake_case on the wire)."""

    lid: Id
    liquidator: str
    liquidated_user: str
    liquidated_ntl_pos: str
    liquidated_account_value: str


class WsNonUserCancel(Struct):
    coin: str
    oid: Id


class NonUserCancels(Struct):
    """Channel "user": orders the venue cancelled (not us)."""

    cancels: list[WsNonUserCancel]


# ---- WebSocket control -----------------------------------------------------------------------


class SubscriptionResponse(Struct):
    """The ack of a subscribe or unsubscribe, echoing the subscription."""

    method: str
    subscription: dict[str, Any]


class Pong(Struct):
    pass


class PostReply(Struct):
    """The answer to a `post` request with the same `id`.

    type "action": `payload` is the /exchange reply (`decode_exchange_reply(reply.payload)`).
    type "info": `info_type` is the request's info type and `payload` its data
    (e.g. `decode_l2_book(reply.payload)`). type "error": `error` is the text, payload empty.
    """

    id: Id
    type: Literal["info", "action", "error"]
    payload: Raw
    info_type: str | None = None
    error: str | None = None


class ErrorFrame(Struct):
    """Channel "error": the server refused something ("Already subscribed: ...")."""

    message: str


class Greeting(Struct):
    """The plain-text "Websocket connection established." sent on connect."""


class Unknown(Struct):
    """A channel this client does not model (or a "user" event of an unknown kind)."""

    channel: str
    data: Raw


Message: TypeAlias = (
    WsBook
    | WsTrades
    | WsUserFills
    | OrderUpdates
    | UserEventFills
    | WsFunding
    | WsLiquidation
    | NonUserCancels
    | SubscriptionResponse
    | Pong
    | PostReply
    | ErrorFrame
    | Greeting
    | Unknown
)


# ---- frames: one decoder over a union tagged by "channel" -------------------------------------


class _BookFrame(Struct, tag_field="channel", tag="l2Book"):
    data: WsBook


class _TradesFrame(Struct, tag_field="channel", tag="trades"):
    data: list[WsTrade]


class _UserFillsFrame(Struct, tag_field="channel", tag="userFills"):
    data: WsUserFills


class _OrderUpdatesFrame(Struct, tag_field="channel", tag="orderUpdates"):
    data: list[WsOrderUpdate]


class _UserData(Struct, rename="camel"):
    fills: list[WsFill] | None = None
    funding: WsFunding | None = None
    liquidation: WsLiquidation | None = None
    non_user_cancel: list[WsNonUserCancel] | None = None


class _UserFrame(Struct, tag_field="channel", tag="user"):
    data: Raw


class _SubscriptionFrame(Struct, tag_field="channel", tag="subscriptionResponse"):
    data: SubscriptionResponse


class _PongFrame(Struct, tag_field="channel", tag="pong"):
    pass


class _PostResponse(Struct):
    type: Literal["info", "action", "error"]
    payload: Raw


class _PostData(Struct):
    id: Id
    response: _PostResponse


class _PostFrame(Struct, tag_field="channel", tag="post"):
    data: _PostData


class _ErrorFrame(Struct, tag_field="channel", tag="error"):
    data: Raw


class _Envelope(Struct):
    channel: str
    data: Raw = Raw(b"null")


class _PostInfo(Struct):
    type: str
    data: Raw


_Frame: TypeAlias = (
    _BookFrame
    | _TradesFrame
    | _UserFillsFrame
    | _OrderUpdatesFrame
    | _UserFrame
    | _SubscriptionFrame
    | _PongFrame
    | _PostFrame
    | _ErrorFrame
)
_FRAMES = msgspec.json.Decoder(_Frame)
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_POST_INFO = msgspec.json.Decoder(_PostInfo)
_STR = msgspec.json.Decoder(str)
_USER_DATA = msgspec.json.Decoder(_UserData)
_KNOWN_CHANNELS: Final = frozenset(
    ("l2Book", "trades", "userFills", "orderUpdates", "user", "subscriptionResponse")
) | {"pong", "post", "error"}
_UNEXPECTED: Final = (ValueError, TypeError, ArithmeticError, RecursionError, KeyError, IndexError)
"""What a hostile input can raise from msgspec or the checks (msgspec's errors are ValueErrors)."""

Frame: TypeAlias = bytes | bytearray | memoryview | str


def parse(frame: Frame) -> Message:
    """One WebSocket text frame as a typed, checked message; `WireError` if it is malformed."""
    try:
        decoded = _FRAMES.decode(frame)
    except _UNEXPECTED as exc:
        return _undecodable(frame, exc)
    try:
        if type(decoded) is _BookFrame:
            book = decoded.data
            book.float_levels  # noqa: B018 - checks the numbers and caches the floats
            return book
        return _checked(decoded)
    except WireError:
        raise
    except _UNEXPECTED as exc:  # a check that failed in a way it did not foresee
        raise WireError(_channel_of(decoded), f"{type(exc).__name__}: {exc}") from None


def _checked(decoded: _Frame) -> Message:
    if type(decoded) is _TradesFrame:
        for trade in decoded.data:
            _check_trade(trade)
        return WsTrades(decoded.data)
    if type(decoded) is _UserFillsFrame:
        for fill in decoded.data.fills:
            _check_fill("userFills", fill)
        return decoded.data
    if type(decoded) is _OrderUpdatesFrame:
        for update in decoded.data:
            _check_order("orderUpdates", update.order)
        return OrderUpdates(decoded.data)
    if type(decoded) is _UserFrame:
        return _user_event(decoded.data)
    if type(decoded) is _SubscriptionFrame:
        return decoded.data
    if type(decoded) is _PongFrame:
        return Pong()
    if type(decoded) is _PostFrame:
        return _post_reply(decoded.data)
    if type(decoded) is _ErrorFrame:
        return ErrorFrame(_text(decoded.data))
    raise WireError("frame", f"no handler for {type(decoded).__name__}")  # pragma: no cover


def _channel_of(decoded: _Frame) -> str:
    tag = type(decoded).__struct_config__.tag
    return tag if isinstance(tag, str) else "frame"


def _undecodable(frame: Frame, exc: Exception) -> Message:
    """The slow path: the greeting, an unknown channel, or a malformed frame."""
    text = frame if isinstance(frame, str) else bytes(frame).decode("utf-8", errors="replace")
    if text.strip() == GREETING:
        return Greeting()
    try:
        envelope = _ENVELOPE.decode(frame)
    except _UNEXPECTED as envelope_exc:
        if isinstance(envelope_exc, msgspec.ValidationError):
            raise WireError("frame", f"not a channel message: {envelope_exc}") from None
        raise WireError("frame", f"not JSON ({type(exc).__name__}: {exc})") from None
    if envelope.channel not in _KNOWN_CHANNELS:
        return Unknown(envelope.channel, envelope.data)
    raise WireError(envelope.channel, str(exc))


def _text(raw: Raw) -> str:
    """An error frame's data: a JSON string as text, anything else as its JSON."""
    try:
        return _STR.decode(raw)
    except msgspec.ValidationError:
        return bytes(raw).decode("utf-8", errors="replace")


def _user_event(raw: Raw) -> Message:
    try:
        data = _USER_DATA.decode(raw)
    except msgspec.ValidationError as exc:
        raise WireError("user", str(exc)) from None
    present = [
        name
        for name in ("fills", "funding", "liquidation", "non_user_cancel")
        if getattr(data, name) is not None
    ]
    if len(present) > 1:
        raise WireError("user", f"one event carries several kinds: {', '.join(present)}")
    if data.fills is not None:
        for fill in data.fills:
            _check_fill("user", fill)
        return UserEventFills(data.fills)
    if data.funding is not None:
        _check_funding(data.funding)
        return data.funding
    if data.liquidation is not None:
        return data.liquidation
    if data.non_user_cancel is not None:
        return NonUserCancels(data.non_user_cancel)
    return Unknown("user", raw)


def _post_reply(data: _PostData) -> PostReply:
    response = data.response
    if response.type == "error":
        try:
            error = _STR.decode(response.payload)
        except msgspec.ValidationError:
            raise WireError("post", f"id {data.id}: an error payload is not a string") from None
        return PostReply(data.id, "error", Raw(b""), error=error)
    if response.type == "info":
        try:
            info = _POST_INFO.decode(response.payload)
        except msgspec.ValidationError as exc:
            raise WireError("post", f"id {data.id}: info payload: {exc}") from None
        return PostReply(data.id, "info", info.data, info_type=info.type)
    return PostReply(data.id, "action", response.payload)


# ---- checks of the numbers ---------------------------------------------------------------------


def _trade_numbers(trade: WsTrade) -> tuple[float, float]:
    """(price, size) as floats, like a book level's; `WireError` unless finite and positive."""
    try:
        px = float(trade.px)
        sz = float(trade.sz)
    except ValueError:
        px = sz = math.nan
    if not (0.0 < px < _INF and 0.0 < sz < _INF):
        raise WireError(
            "trades",
            f"trade {trade.tid} (px {_short(trade.px)}, sz {_short(trade.sz)}) "
            "is not a finite positive number",
        )
    return px, sz


def _check_trade(trade: WsTrade) -> None:
    _trade_numbers(trade)


def _check_fill(channel: str, fill: WsFill) -> None:
    what = f"fill {fill.tid}"
    _positive(channel, f"{what} px", fill.px)
    _positive(channel, f"{what} sz", fill.sz)
    to_decimal(fill.fee, f"{what} fee", channel)
    to_decimal(fill.closed_pnl, f"{what} closedPnl", channel)
    to_decimal(fill.start_position, f"{what} startPosition", channel)
    if fill.builder_fee is not None:
        to_decimal(fill.builder_fee, f"{what} builderFee", channel)


def _check_order(channel: str, order: WsOrder) -> None:
    what = f"order {order.oid}"
    _positive(channel, f"{what} limitPx", order.limit_px)
    _not_negative(channel, f"{what} sz", order.sz)
    if order.orig_sz is not None:
        _not_negative(channel, f"{what} origSz", order.orig_sz)
    if order.trigger_px is not None:
        _not_negative(channel, f"{what} triggerPx", order.trigger_px)


def _implied_mark(funding: WsFunding) -> Decimal:
    """The price the venue charged funding at: usdc = -szi * mark * rate (0 if no payment)."""
    usdc = to_decimal(funding.usdc, "funding usdc", "user")
    szi = to_decimal(funding.szi, "funding szi", "user")
    rate = to_decimal(funding.funding_rate, "fundingRate", "user")
    if not usdc:
        return Decimal(0)
    what = f"funding of {funding.usdc} USDC on size {funding.szi} at rate {funding.funding_rate}"
    try:
        mark = -usdc / (szi * rate)
    except ArithmeticError:  # size or rate zero, or too small to multiply
        raise WireError("user", f"{what}: no price can give it") from None
    if mark <= 0:
        raise WireError("user", f"{what}: the sign is wrong")
    return mark


def _check_funding(funding: WsFunding) -> None:
    _implied_mark(funding)


# ---- core events ---------------------------------------------------------------------------------


def book_event(book: WsBook, ts_ns: int | None = None) -> BookUpdate:
    """The snapshot as the core's `BookUpdate`; `ts_ns` defaults to the venue's time.

    Floats via float(str): exact to the wire's decimals for display and the book's tick grid
    (the ledger works from the strings). Raises `WireError` for a book `parse` did not check.
    """
    bids, asks = book.float_levels
    return BookUpdate(book.time * _NS_PER_MS if ts_ns is None else ts_ns, bids, asks, True)


def trade_events(trades: WsTrades | Iterable[WsTrade]) -> list[Trade]:
    """Public trades as the core's `Trade`s: aggressor B -> BUY, A -> SELL; ts from the trade."""
    if isinstance(trades, WsTrades):
        trades = trades.trades
    out = []
    for trade in trades:
        px, sz = _trade_numbers(trade)
        out.append(
            Trade(trade.time * _NS_PER_MS, px, sz, Side.BUY if trade.side == "B" else Side.SELL)
        )
    return out


def funding_event(funding: WsFunding) -> FundingPayment:
    """The hourly funding as the core's `FundingPayment`, at the mark implied by the payment.

    The core books `-position * mark * rate`; the venue paid `usdc` on `szi` at `fundingRate`,
    so the mark is `-usdc / (szi * rate)` and the core books the venue's amount when its position
    is the venue's. No payment (size or rate zero) gives mark 0.
    """
    mark = _implied_mark(funding)
    rate = to_decimal(funding.funding_rate, "fundingRate", "user")
    return FundingPayment(funding.time * _NS_PER_MS, float(rate), float(mark))


def fill_side(fill: WsFill) -> Side:
    return Side.BUY if fill.side == "B" else Side.SELL


def is_maker(fill: WsFill) -> bool:
    """A fill that did not cross the spread (`crossed` false) added liquidity."""
    return not fill.crossed


def fill_px(fill: WsFill) -> Decimal:
    return to_decimal(fill.px, f"fill {fill.tid} px")


def fill_sz(fill: WsFill) -> Decimal:
    return to_decimal(fill.sz, f"fill {fill.tid} sz")


def fill_fee(fill: WsFill) -> Decimal:
    """USD paid for the fill (negative: a rebate), builder fee not included."""
    return to_decimal(fill.fee, f"fill {fill.tid} fee")


def fill_closed_pnl(fill: WsFill) -> Decimal:
    return to_decimal(fill.closed_pnl, f"fill {fill.tid} closedPnl")


def order_side(order: WsOrder) -> Side:
    return Side.BUY if order.side == "B" else Side.SELL


def order_px(order: WsOrder) -> Decimal:
    return to_decimal(order.limit_px, f"order {order.oid} limitPx")


def order_sz(order: WsOrder) -> Decimal:
    """Remaining size."""
    return to_decimal(order.sz, f"order {order.oid} sz")


# ---- outgoing control messages -----------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()


def encode_subscribe(subscription: Mapping[str, Any], method: str = "subscribe") -> bytes:
    """`{"method":"subscribe","subscription":{...}}` (or "unsubscribe" with the same object)."""
    return _ENCODER.encode({"method": method, "subscription": subscription})


def encode_post(request_id: int, kind: Literal["info", "action"], payload: Any) -> bytes:
    """A post request: `payload` is the exact /info or /exchange body."""
    return _ENCODER.encode(
        {"method": "post", "id": request_id, "request": {"type": kind, "payload": payload}}
    )


# ---- REST replies ------------------------------------------------------------------------------


class AssetInfo(Struct, rename="camel"):
    """One perp of `meta.universe`; its index in the universe is the asset id."""

    name: str
    sz_decimals: Annotated[int, Meta(ge=0, le=18)]
    max_leverage: Annotated[int, Meta(ge=1)]
    only_isolated: bool = False
    is_delisted: bool = False
    margin_mode: str | None = None
    margin_table_id: int | None = None


class PerpMeta(Struct, rename="camel"):
    universe: list[AssetInfo]
    collateral_token: int | None = None

    def asset(self, coin: str) -> tuple[int, AssetInfo]:
        """(asset id, info) of a coin; `WireError` if the venue does not list it."""
        for index, info in enumerate(self.universe):
            if info.name == coin:
                return index, info
        raise WireError("meta", f"coin {coin!r} is not in the universe")


class Leverage(Struct, rename="camel"):
    type: str
    value: int
    raw_usd: str | None = None


class Position(Struct, rename="camel"):
    coin: str
    szi: str
    """Signed size: positive long, negative short."""
    entry_px: str | None = None
    position_value: str | None = None
    unrealized_pnl: str | None = None
    return_on_equity: str | None = None
    liquidation_px: str | None = None
    margin_used: str | None = None
    max_leverage: int | None = None
    leverage: Leverage | None = None


class AssetPosition(Struct):
    position: Position
    type: str = "oneWay"


class MarginSummary(Struct, rename="camel"):
    account_value: str
    total_raw_usd: str
    total_ntl_pos: str | None = None
    total_margin_used: str | None = None


class ClearinghouseState(Struct, rename="camel"):
    asset_positions: list[AssetPosition]
    margin_summary: MarginSummary
    cross_margin_summary: MarginSummary | None = None
    withdrawable: str | None = None
    cross_maintenance_margin_used: str | None = None
    time: Ms | None = None

    def position(self, coin: str) -> Decimal:
        """Our signed size in `coin` (0 when the venue lists no position)."""
        for asset_position in self.asset_positions:
            if asset_position.position.coin == coin:
                return to_decimal(asset_position.position.szi, f"{coin} szi")
        return Decimal(0)


class UserFees(Struct, rename="camel"):
    """Our live rates as fractions ("0.00015" = 1.5 bp); a fill's own `fee` is what counts."""

    user_add_rate: str
    user_cross_rate: str
    user_spot_add_rate: str | None = None
    user_spot_cross_rate: str | None = None
    active_referral_discount: str | None = None


class UserRateLimit(Struct, rename="camel"):
    """The address budget: requests used of the cap (10,000 + 1 per USDC traded)."""

    cum_vlm: str
    n_requests_used: Count
    n_requests_cap: Count
    n_requests_surplus: Count = 0


class OrderStatus(Struct):
    """orderStatus: status "order" with the order and its status, or "unknownOid"."""

    status: str
    order: WsOrderUpdate | None = None


class Resting(Struct):
    oid: Id
    cloid: str | None = None


class Filled(Struct, rename="camel"):
    total_sz: str
    avg_px: str
    oid: Id
    cloid: str | None = None


class StatusError(Struct):
    """A per-order (or per-cancel) error; a deterministic batch error comes once per batch."""

    error: str


OrderOutcome: TypeAlias = Resting | Filled | StatusError | str
"""One status of an order, modify or cancel reply. Strings: "success" (a cancel),
"waitingForFill", "waitingForTrigger" (TP/SL groupings)."""


class ExchangeReply(Struct):
    """An /exchange reply. ok: `type` ("order", "cancel", "default", ...) and `statuses`, one per
    order or cancel in request order (an error can come once for a whole batch). Not ok: the
    whole request failed and `error` says why (e.g. "Invalid nonce: duplicate nonce ...")."""

    ok: bool
    type: str | None = None
    statuses: list[OrderOutcome] = msgspec.field(default_factory=list)
    error: str | None = None


class _StatusObject(Struct):
    resting: Resting | None = None
    filled: Filled | None = None
    error: str | None = None


class _ReplyData(Struct):
    statuses: list[str | _StatusObject] = msgspec.field(default_factory=list)


class _OkResponse(Struct):
    type: str
    data: _ReplyData | None = None


class _ExchangeEnvelope(Struct):
    status: Literal["ok", "err"]
    response: Raw


_T = TypeVar("_T")


def _decode(what: str, decoder: msgspec.json.Decoder[_T], raw: Frame) -> _T:
    try:
        return decoder.decode(raw)
    except _UNEXPECTED as exc:
        if isinstance(exc, msgspec.ValidationError):
            raise WireError(what, str(exc)) from None
        raise WireError(what, f"not JSON ({type(exc).__name__}: {exc})") from None


def _checked_reply(what: str, check: Callable[[], object]) -> None:
    try:
        check()
    except WireError:
        raise
    except _UNEXPECTED as exc:
        raise WireError(what, f"{type(exc).__name__}: {exc}") from None


_META = msgspec.json.Decoder(PerpMeta)
_BOOK = msgspec.json.Decoder(WsBook)
_CLEARINGHOUSE = msgspec.json.Decoder(ClearinghouseState)
_ORDERS = msgspec.json.Decoder(list[WsOrder])
_FILLS = msgspec.json.Decoder(list[WsFill])
_FEES = msgspec.json.Decoder(UserFees)
_RATE_LIMIT = msgspec.json.Decoder(UserRateLimit)
_USER_FUNDING = msgspec.json.Decoder(list[UserFundingEntry])
_ORDER_STATUS = msgspec.json.Decoder(OrderStatus)
_EXCHANGE = msgspec.json.Decoder(_ExchangeEnvelope)
_OK_RESPONSE = msgspec.json.Decoder(_OkResponse)


def decode_user_funding(raw: Frame) -> list[UserFundingEntry]:
    """`{"type":"userFunding","user":...,"startTime":ms}` -> the funding payments since then
    (at most 500 a reply: paginate by time), each checked: numbers that parse, a payment whose
    sign and size a positive mark can give."""
    entries = _decode("userFunding", _USER_FUNDING, raw)

    def check() -> None:
        for entry in entries:
            delta = entry.delta
            _implied_mark(WsFunding(entry.time, delta.coin, delta.usdc, delta.szi,
                                    delta.funding_rate))  # fmt: skip

    _checked_reply("userFunding", check)
    return entries


def decode_meta(raw: Frame) -> PerpMeta:
    """`{"type":"meta"}` -> the perp universe (name, szDecimals, maxLeverage)."""
    return _decode("meta", _META, raw)


def decode_l2_book(raw: Frame) -> WsBook:
    """`{"type":"l2Book","coin":...}` -> the same book as the WebSocket's, checked."""
    book = _decode("l2Book", _BOOK, raw)
    _checked_reply("l2Book", lambda: book.float_levels)
    return book


def decode_clearinghouse_state(raw: Frame) -> ClearinghouseState:
    state = _decode("clearinghouseState", _CLEARINGHOUSE, raw)

    def check() -> None:
        for asset_position in state.asset_positions:
            position = asset_position.position
            to_decimal(position.szi, f"{position.coin} szi", "clearinghouseState")
            if position.entry_px is not None:
                _positive("clearinghouseState", f"{position.coin} entryPx", position.entry_px)
        for name in ("account_value", "total_raw_usd"):
            to_decimal(getattr(state.margin_summary, name), name, "clearinghouseState")

    _checked_reply("clearinghouseState", check)
    return state


def decode_open_orders(raw: Frame) -> list[WsOrder]:
    """openOrders or frontendOpenOrders (which adds origSz, cloid, tif, ...)."""
    orders = _decode("openOrders", _ORDERS, raw)

    def check() -> None:
        for order in orders:
            _check_order("openOrders", order)

    _checked_reply("openOrders", check)
    return orders


def decode_user_fills(raw: Frame) -> list[WsFill]:
    """userFills or userFillsByTime (at most 2,000 a reply: paginate by time)."""
    fills = _decode("userFills", _FILLS, raw)

    def check() -> None:
        for fill in fills:
            _check_fill("userFills", fill)

    _checked_reply("userFills", check)
    return fills


def decode_user_fees(raw: Frame) -> UserFees:
    fees = _decode("userFees", _FEES, raw)
    _checked_reply(
        "userFees",
        lambda: [
            to_decimal(fees.user_add_rate, "userAddRate", "userFees"),
            to_decimal(fees.user_cross_rate, "userCrossRate", "userFees"),
        ],
    )
    return fees


def decode_user_rate_limit(raw: Frame) -> UserRateLimit:
    limit = _decode("userRateLimit", _RATE_LIMIT, raw)
    _checked_reply("userRateLimit", lambda: _not_negative("userRateLimit", "cumVlm", limit.cum_vlm))
    return limit


def decode_order_status(raw: Frame) -> OrderStatus:
    """`{"type":"orderStatus","user":...,"oid":oid or cloid}`."""
    status = _decode("orderStatus", _ORDER_STATUS, raw)
    if status.status == "order":
        if status.order is None:
            raise WireError("orderStatus", 'status "order" without an order')
        order = status.order.order
        _checked_reply("orderStatus", lambda: _check_order("orderStatus", order))
    elif status.order is not None:
        raise WireError("orderStatus", f"status {_short(status.status)} with an order")
    return status


def decode_exchange_reply(raw: Frame) -> ExchangeReply:
    """An /exchange reply (or a post reply's action payload)."""
    envelope = _decode("exchange", _EXCHANGE, raw)
    if envelope.status == "err":
        try:
            return ExchangeReply(False, error=_STR.decode(envelope.response))
        except msgspec.ValidationError:
            raise WireError("exchange", 'status "err" without a message') from None
    ok = _decode("exchange", _OK_RESPONSE, envelope.response)
    statuses: list[OrderOutcome] = []
    if ok.data is not None:
        for index, item in enumerate(ok.data.statuses):
            statuses.append(_outcome(index, item))
    return ExchangeReply(True, ok.type, statuses)


def _outcome(index: int, item: str | _StatusObject) -> OrderOutcome:
    if isinstance(item, str):
        return item
    if sum(kind is not None for kind in (item.resting, item.filled, item.error)) != 1:
        raise WireError("exchange", f"status {index} is not one of resting, filled or error")
    if item.resting is not None:
        return item.resting
    if item.filled is not None:
        _positive("exchange", f"status {index} totalSz", item.filled.total_sz)
        _positive("exchange", f"status {index} avgPx", item.filled.avg_px)
        return item.filled
    assert item.error is not None
    return StatusError(item.error)
