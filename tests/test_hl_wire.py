"""The Hyperliquid client's wire parser: recorded exchange messages, the documented shapes, hostile
frames. Expected values come from the recording (parsed here with the standard json module) and
from the reference's documented shapes, never from the local exchange's server."""

from __future__ import annotations

import contextlib
import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.book import Book
from engine.events import BookUpdate, Side, Trade
from engine.venues.hyperliquid import wire
from engine.venues.hyperliquid.wire import (
    ErrorFrame,
    Filled,
    Greeting,
    NonUserCancels,
    OrderUpdates,
    Pong,
    PostReply,
    Resting,
    StatusError,
    SubscriptionResponse,
    Unknown,
    UserEventFills,
    WireError,
    WsBook,
    WsFunding,
    WsLiquidation,
    WsTrades,
    WsUserFills,
)

RECORDING = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "hyperliquid_btcusd_20250126.gz"
)
needs_recording = pytest.mark.skipif(
    not RECORDING.exists(),
    reason=f"shared Hyperliquid recording not found at {RECORDING} (see shared/data/README.md)",
)


def recorded() -> list[tuple[int, bytes]]:
    with gzip.open(RECORDING, "rb") as tape:
        return [
            (int(ns), frame)
            for ns, _, frame in (line.rstrip(b"\n").partition(b" ") for line in tape)
        ]


def exact(value: float) -> Decimal:
    """A float as the shortest decimal that reads back as it: what float(str) kept of the str."""
    return Decimal(repr(value))


def frame(channel: str, data: Any) -> bytes:
    return json.dumps({"channel": channel, "data": data}).encode()


# ---- the recording: every message into core events, through the core's book -----------------


@needs_recording
@pytest.mark.parametrize("tick_size", [1.0, 0.1])
def test_every_recorded_book_builds_the_recorded_levels_in_the_core_book(tick_size):
    # BTC above $100,000 trades on whole dollars; a finer grid must give the same book.
    book = Book(tick_size)
    books = 0
    for recv_ns, raw in recorded():
        message = wire.parse(raw)
        expected = json.loads(raw)
        if expected["channel"] != "l2Book":
            assert isinstance(message, WsTrades)
            continue
        assert isinstance(message, WsBook)
        update = wire.book_event(message, recv_ns)
        assert isinstance(update, BookUpdate)
        assert update.is_snapshot and update.ts_ns == recv_ns
        book.apply(update)
        books += 1

        want_bids, want_asks = expected["data"]["levels"]
        assert message.coin == expected["data"]["coin"] == "BTC"
        assert message.time == expected["data"]["time"]
        assert book.depth() == (len(want_bids), len(want_asks)) == (20, 20)
        assert exact(book.best_bid) == Decimal(want_bids[0]["px"])
        assert exact(book.best_ask) == Decimal(want_asks[0]["px"])
        assert exact(book.best_bid_size) == Decimal(want_bids[0]["sz"])
        assert exact(book.best_ask_size) == Decimal(want_asks[0]["sz"])
        got_bids, got_asks = book.top(100)
        for got, want in ((got_bids, want_bids), (got_asks, want_asks)):
            assert [(exact(px), exact(sz)) for px, sz in got] == [
                (Decimal(level["px"]), Decimal(level["sz"])) for level in want
            ]
        assert book.ts_ns == recv_ns
    assert books == 46


@needs_recording
def test_every_recorded_trade_becomes_a_core_trade_with_its_aggressor_price_and_size():
    trades: list[Trade] = []
    expected: list[dict[str, Any]] = []
    messages = 0
    for _, raw in recorded():
        message = wire.parse(raw)
        if isinstance(message, WsTrades):
            messages += 1
            trades.extend(wire.trade_events(message))
            expected.extend(json.loads(raw)["data"])
    assert messages == 9
    assert len(trades) == len(expected) == 64
    for trade, want in zip(trades, expected, strict=True):
        assert trade.aggressor is (Side.BUY if want["side"] == "B" else Side.SELL)
        assert exact(trade.price) == Decimal(want["px"])
        assert exact(trade.size_base) == Decimal(want["sz"])
        assert trade.ts_ns == want["time"] * 1_000_000
    buys = [t for t in trades if t.aggressor is Side.BUY]
    sells = [t for t in trades if t.aggressor is Side.SELL]
    assert (len(buys), len(sells)) == (
        sum(w["side"] == "B" for w in expected),
        sum(w["side"] == "A" for w in expected),
    )
    assert (len(buys), len(sells)) == (23, 41)
    assert sum(exact(t.size_base) for t in trades) == sum(Decimal(w["sz"]) for w in expected)
    assert sum(exact(t.size_base) for t in buys) == sum(
        Decimal(w["sz"]) for w in expected if w["side"] == "B"
    )
    first = trades[0]
    assert first == Trade(1737918794873 * 1_000_000, 105056.0, 0.00219, Side.BUY)


@needs_recording
def test_a_frame_parses_the_same_from_bytes_str_bytearray_and_memoryview():
    _, raw = recorded()[0]
    as_bytes = wire.parse(raw)
    for variant in (raw.decode(), bytearray(raw), memoryview(raw)):
        assert wire.parse(variant) == as_bytes


def test_a_book_event_defaults_to_the_venue_time_and_keeps_the_string_values():
    book = wire.parse(
        frame(
            "l2Book",
            {
                "coin": "ETH",
                "time": 1700000000123,
                "levels": [
                    [
                        {"px": "3000.1", "sz": "1.2345", "n": 3},
                        {"px": "2999.9", "sz": "0.1", "n": 1},
                    ],
                    [{"px": "3000.2", "sz": "0.0001", "n": 1}],
                ],
            },
        )
    )
    assert isinstance(book, WsBook)
    assert wire.book_event(book) == BookUpdate(
        1700000000123 * 1_000_000,
        ((3000.1, 1.2345), (2999.9, 0.1)),
        ((3000.2, 0.0001),),
        True,
    )
    assert wire.book_event(book, 42).ts_ns == 42


def test_an_empty_side_is_a_valid_book():
    book = wire.parse(frame("l2Book", {"coin": "XYZ", "time": 1, "levels": [[], []]}))
    assert isinstance(book, WsBook)
    assert wire.book_event(book, 5) == BookUpdate(5, (), (), True)


# ---- account channels: hand-written from the documented shapes -------------------------------

FILL = {
    "coin": "BTC",
    "px": "105056.0",
    "sz": "0.00219",
    "side": "A",
    "time": 1737918794873,
    "startPosition": "0.01",
    "dir": "Close Long",
    "closedPnl": "0.021900",
    "hash": "0xde477894bfb2b4eac0a8041c9228ca013100955485522c8e6e787dfa0077475b",
    "oid": 66017399461,
    "crossed": False,
    "fee": "-0.000230",
    "tid": 121451470284048,
    "feeToken": "USDC",
    "cloid": "0x7064736b000000000000000000000001",
}
TAKER_FILL = {
    **FILL,
    "side": "B",
    "px": "105057.0",
    "sz": "0.1",
    "crossed": True,
    "fee": "4.727565",
    "tid": 1,
    "dir": "Open Long",
    "closedPnl": "0.0",
    "builderFee": "0.01",
}
del TAKER_FILL["cloid"]


def test_user_fills_snapshot_then_update_and_the_fill_helpers():
    snapshot = wire.parse(
        frame("userFills", {"isSnapshot": True, "user": "0xabc", "fills": [FILL, TAKER_FILL]})
    )
    assert isinstance(snapshot, WsUserFills)
    assert snapshot.is_snapshot and snapshot.user == "0xabc"
    maker, taker = snapshot.fills
    assert wire.fill_side(maker) is Side.SELL and wire.fill_side(taker) is Side.BUY
    assert wire.is_maker(maker) and not wire.is_maker(taker)
    assert wire.fill_fee(maker) == Decimal("-0.000230")  # a rebate
    assert wire.fill_fee(taker) == Decimal("4.727565")
    assert wire.fill_px(maker) == Decimal("105056.0") and wire.fill_sz(maker) == Decimal("0.00219")
    assert wire.fill_closed_pnl(maker) == Decimal("0.021900")
    assert maker.cloid == "0x7064736b000000000000000000000001" and taker.cloid is None
    assert maker.start_position == "0.01" and maker.dir == "Close Long"
    assert (maker.oid, maker.tid, maker.time) == (66017399461, 121451470284048, 1737918794873)
    assert taker.builder_fee == "0.01" and maker.builder_fee is None
    assert maker.fee_token == "USDC"

    update = wire.parse(frame("userFills", {"user": "0xabc", "fills": [FILL]}))
    assert isinstance(update, WsUserFills)
    assert not update.is_snapshot and update.fills == [maker]


def test_user_events_fills_funding_liquidation_and_non_user_cancels():
    fills = wire.parse(frame("user", {"fills": [FILL]}))
    assert isinstance(fills, UserEventFills) and fills.fills[0].tid == FILL["tid"]

    funding = wire.parse(
        frame(
            "user",
            {
                "funding": {
                    "time": 1737921600000,
                    "coin": "BTC",
                    "usdc": "-0.1313",
                    "szi": "0.1",
                    "fundingRate": "0.0000125",
                }
            },
        )
    )
    assert isinstance(funding, WsFunding)
    assert funding.funding_rate == "0.0000125" and funding.usdc == "-0.1313"
    payment = wire.funding_event(funding)
    assert payment.ts_ns == 1737921600000 * 1_000_000
    assert payment.rate == 0.0000125
    assert payment.mark_price == pytest.approx(105040.0)
    # The core books -position * mark * rate: with the venue's position that is the venue's usdc.
    assert -0.1 * payment.mark_price * payment.rate == pytest.approx(-0.1313)

    short = WsFunding(1, "BTC", "0.05", "-0.04", "0.0000125")
    assert wire.funding_event(short).mark_price == pytest.approx(100_000.0)
    assert wire.funding_event(WsFunding(1, "BTC", "0.0", "0.0", "0.0001")).mark_price == 0.0

    liquidation = wire.parse(
        frame(
            "user",
            {
                "liquidation": {
                    "lid": 7,
                    "liquidator": "0xliq",
                    "liquidated_user": "0xabc",
                    "liquidated_ntl_pos": "1000.0",
                    "liquidated_account_value": "12.5",
                }
            },
        )
    )
    assert isinstance(liquidation, WsLiquidation)
    assert liquidation.liquidated_user == "0xabc"

    cancels = wire.parse(frame("user", {"nonUserCancel": [{"coin": "BTC", "oid": 5}]}))
    assert isinstance(cancels, NonUserCancels)
    assert [(c.coin, c.oid) for c in cancels.cancels] == [("BTC", 5)]

    unknown = wire.parse(frame("user", {"somethingNew": {"a": 1}}))
    assert isinstance(unknown, Unknown) and unknown.channel == "user"
    assert json.loads(bytes(unknown.data)) == {"somethingNew": {"a": 1}}


def test_funding_that_no_price_explains_is_refused():
    with pytest.raises(WireError, match=r"user: funding .* no price"):
        wire.funding_event(WsFunding(1, "BTC", "-1.0", "0", "0.0001"))
    with pytest.raises(WireError, match="sign is wrong"):  # a long paid at a negative rate
        wire.parse(
            frame(
                "user",
                {
                    "funding": {
                        "time": 1,
                        "coin": "BTC",
                        "usdc": "-1.0",
                        "szi": "1",
                        "fundingRate": "-0.0001",
                    }
                },
            )
        )


ORDER = {
    "coin": "BTC",
    "side": "B",
    "limitPx": "105000.0",
    "sz": "0.001",
    "oid": 66017399461,
    "timestamp": 1737918800000,
    "origSz": "0.002",
    "cloid": "0x7064736b000000000000000000000001",
}


def test_order_updates():
    message = wire.parse(
        frame(
            "orderUpdates",
            [
                {"order": ORDER, "status": "open", "statusTimestamp": 1737918800001},
                {
                    "order": {**ORDER, "sz": "0.0", "side": "A"},
                    "status": "badAloPxRejected",
                    "statusTimestamp": 1737918800002,
                },
                {
                    "order": {k: v for k, v in ORDER.items() if k != "cloid"},
                    "status": "canceled",
                    "statusTimestamp": 1737918800003,
                },
            ],
        )
    )
    assert isinstance(message, OrderUpdates)
    first, second, third = message.updates
    assert first.status == "open" and first.status_timestamp == 1737918800001
    assert wire.order_side(first.order) is Side.BUY and wire.order_side(second.order) is Side.SELL
    assert wire.order_px(first.order) == Decimal("105000.0")
    assert wire.order_sz(first.order) == Decimal("0.001") and first.order.orig_sz == "0.002"
    assert first.order.cloid == ORDER["cloid"] and third.order.cloid is None
    assert second.status == "badAloPxRejected" and wire.order_sz(second.order) == 0


def test_control_frames_greeting_pong_subscription_error_and_unknown():
    assert wire.parse(b"Websocket connection established.") == Greeting()
    assert wire.parse("Websocket connection established.") == Greeting()
    assert wire.parse(b'{"channel":"pong"}') == Pong()
    ack = wire.parse(
        frame(
            "subscriptionResponse",
            {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}},
        )
    )
    assert ack == SubscriptionResponse("subscribe", {"type": "l2Book", "coin": "BTC"})
    assert wire.parse(frame("error", "Already subscribed: {...}")) == ErrorFrame(
        "Already subscribed: {...}"
    )
    assert wire.parse(frame("error", {"odd": 1})) == ErrorFrame('{"odd": 1}')
    unknown = wire.parse(frame("allMids", {"mids": {"BTC": "105055.5"}}))
    assert isinstance(unknown, Unknown) and unknown.channel == "allMids"
    assert json.loads(bytes(unknown.data)) == {"mids": {"BTC": "105055.5"}}
    bare = wire.parse(b'{"channel":"somethingNew"}')
    assert isinstance(bare, Unknown) and bare.channel == "somethingNew"


BOOK_DATA = {
    "coin": "BTC",
    "time": 1737918843542,
    "levels": [
        [{"px": "105055.0", "sz": "3.03622", "n": 5}, {"px": "105054.0", "sz": "0.1428", "n": 1}],
        [{"px": "105056.0", "sz": "6.34472", "n": 13}],
    ],
}


def test_post_replies_info_action_and_error():
    info = wire.parse(
        frame(
            "post",
            {
                "id": 3,
                "response": {"type": "info", "payload": {"type": "l2Book", "data": BOOK_DATA}},
            },
        )
    )
    assert isinstance(info, PostReply)
    assert (info.id, info.type, info.info_type, info.error) == (3, "info", "l2Book", None)
    book = wire.decode_l2_book(info.payload)
    assert wire.book_event(book, 1).bids == ((105055.0, 3.03622), (105054.0, 0.1428))

    action = wire.parse(
        frame(
            "post",
            {
                "id": 4,
                "response": {
                    "type": "action",
                    "payload": {
                        "status": "ok",
                        "response": {
                            "type": "order",
                            "data": {"statuses": [{"resting": {"oid": 88}}]},
                        },
                    },
                },
            },
        )
    )
    assert isinstance(action, PostReply) and action.type == "action"
    assert wire.decode_exchange_reply(action.payload).statuses == [Resting(88)]

    error = wire.parse(
        frame(
            "post",
            {
                "id": 5,
                "response": {"type": "error", "payload": "too many pending post requests id=5"},
            },
        )
    )
    assert isinstance(error, PostReply)
    assert (error.type, error.error) == ("error", "too many pending post requests id=5")


# ---- /exchange replies -------------------------------------------------------------------------


def exchange(reply: Any) -> wire.ExchangeReply:
    return wire.decode_exchange_reply(json.dumps(reply))


POST_ONLY_ERROR = (
    "Post only order would have immediately matched, bbo was 0.56057@0.56086. asset=31"
)


def test_exchange_replies_resting_filled_and_per_order_errors():
    cloid = "0x7064736b000000000000000000000002"
    reply = exchange(
        {
            "status": "ok",
            "response": {
                "type": "order",
                "data": {
                    "statuses": [
                        {"resting": {"oid": 77738308, "cloid": cloid}},
                        {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}},
                        {"error": POST_ONLY_ERROR},
                        "waitingForFill",
                    ]
                },
            },
        }
    )
    assert reply.ok and reply.type == "order" and reply.error is None
    resting, filled, error, waiting = reply.statuses
    assert resting == Resting(77738308, cloid)
    assert filled == Filled("0.02", "1891.4", 77747314, None)
    assert isinstance(error, StatusError) and error.error.startswith("Post only order")
    assert waiting == "waitingForFill"


def test_exchange_replies_cancels_default_and_whole_request_errors():
    cancel = exchange(
        {
            "status": "ok",
            "response": {
                "type": "cancel",
                "data": {
                    "statuses": [
                        "success",
                        {"error": "Order was never placed, already canceled, or filled."},
                    ]
                },
            },
        }
    )
    assert cancel.type == "cancel"
    assert cancel.statuses == [
        "success",
        StatusError("Order was never placed, already canceled, or filled."),
    ]

    default = exchange({"status": "ok", "response": {"type": "default"}})
    assert default.ok and default.type == "default" and default.statuses == []

    err = exchange({"status": "err", "response": "Invalid nonce: duplicate nonce 1737918800000"})
    assert not err.ok and err.error == "Invalid nonce: duplicate nonce 1737918800000"
    assert err.statuses == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"status": "ok", "response": "no object"}, "exchange: Expected `object`"),
        ({"status": "err", "response": {"x": 1}}, 'exchange: status "err" without a message'),
        ({"status": "maybe", "response": "x"}, "exchange: Invalid enum value 'maybe'"),
        (
            {"status": "ok", "response": {"type": "order", "data": {"statuses": [{}]}}},
            "exchange: status 0 is not one of",
        ),
        (
            {
                "status": "ok",
                "response": {
                    "type": "order",
                    "data": {"statuses": [{"resting": {"oid": 1}, "error": "both"}]},
                },
            },
            "exchange: status 0 is not one of",
        ),
        (
            {
                "status": "ok",
                "response": {
                    "type": "order",
                    "data": {"statuses": [{"filled": {"totalSz": "-1", "avgPx": "1", "oid": 1}}]},
                },
            },
            "exchange: status 0 totalSz '-1' is not positive",
        ),
        (
            {
                "status": "ok",
                "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": -1}}]}},
            },
            "exchange: Expected `int` >= 0",
        ),
    ],
)
def test_malformed_exchange_replies_are_wire_errors(reply, message):
    with pytest.raises(WireError) as caught:
        exchange(reply)
    assert str(caught.value).startswith(message)


# ---- /info replies needed at start-up ------------------------------------------------------------


def test_meta():
    meta = wire.decode_meta(
        json.dumps(
            {
                "universe": [
                    {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
                    {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
                    {
                        "name": "OLD",
                        "szDecimals": 0,
                        "maxLeverage": 3,
                        "isDelisted": True,
                        "onlyIsolated": True,
                    },
                ],
                "marginTables": [[56, {"description": "", "marginTiers": []}]],
                "collateralToken": 0,
            }
        )
    )
    index, btc = meta.asset("BTC")
    assert (index, btc.name, btc.sz_decimals, btc.max_leverage) == (0, "BTC", 5, 40)
    assert meta.asset("ETH")[0] == 1
    assert meta.universe[2].is_delisted and meta.universe[2].only_isolated
    with pytest.raises(WireError, match="meta: coin 'DOGE' is not in the universe"):
        meta.asset("DOGE")
    with pytest.raises(WireError, match=r"meta: .*szDecimals"):
        wire.decode_meta('{"universe":[{"name":"X","szDecimals":-1,"maxLeverage":3}]}')


def test_l2_book_rest_reply_is_the_websocket_book():
    book = wire.decode_l2_book(json.dumps(BOOK_DATA).encode())
    assert wire.book_event(book, 9) == BookUpdate(
        9, ((105055.0, 3.03622), (105054.0, 0.1428)), ((105056.0, 6.34472),), True
    )
    crossed = {**BOOK_DATA, "levels": [BOOK_DATA["levels"][1], BOOK_DATA["levels"][0]]}
    with pytest.raises(WireError, match="l2Book"):
        wire.decode_l2_book(json.dumps(crossed))


def test_clearinghouse_state():
    state = wire.decode_clearinghouse_state(
        json.dumps(
            {
                "assetPositions": [
                    {
                        "type": "oneWay",
                        "position": {
                            "coin": "BTC",
                            "szi": "-0.01234",
                            "entryPx": "105010.0",
                            "positionValue": "1296.38",
                            "unrealizedPnl": "-0.45",
                            "returnOnEquity": "-0.0069",
                            "liquidationPx": None,
                            "marginUsed": "64.8",
                            "maxLeverage": 40,
                            "leverage": {"type": "cross", "value": 20},
                            "cumFunding": {
                                "allTime": "1.0",
                                "sinceOpen": "0.1",
                                "sinceChange": "0.1",
                            },
                        },
                    }
                ],
                "marginSummary": {
                    "accountValue": "1000.5",
                    "totalNtlPos": "1296.38",
                    "totalRawUsd": "2296.88",
                    "totalMarginUsed": "64.8",
                },
                "crossMarginSummary": {
                    "accountValue": "1000.5",
                    "totalNtlPos": "1296.38",
                    "totalRawUsd": "2296.88",
                    "totalMarginUsed": "64.8",
                },
                "crossMaintenanceMarginUsed": "16.2",
                "withdrawable": "935.7",
                "time": 1737918800000,
            }
        )
    )
    assert state.position("BTC") == Decimal("-0.01234") and state.position("ETH") == 0
    position = state.asset_positions[0].position
    assert position.entry_px == "105010.0" and position.liquidation_px is None
    assert position.leverage is not None and position.leverage.value == 20
    assert state.margin_summary.account_value == "1000.5"
    assert state.margin_summary.total_raw_usd == "2296.88"
    flat = wire.decode_clearinghouse_state(
        '{"assetPositions":[],"marginSummary":{"accountValue":"0.0","totalNtlPos":"0.0",'
        '"totalRawUsd":"0.0","totalMarginUsed":"0.0"},"withdrawable":"0.0","time":1}'
    )
    assert flat.position("BTC") == 0
    with pytest.raises(WireError, match="clearinghouseState: BTC szi 'NaN'"):
        wire.decode_clearinghouse_state(
            '{"assetPositions":[{"type":"oneWay","position":{"coin":"BTC","szi":"NaN"}}],'
            '"marginSummary":{"accountValue":"1","totalRawUsd":"1"}}'
        )


def test_open_orders_and_frontend_open_orders():
    plain = wire.decode_open_orders(
        json.dumps([{k: ORDER[k] for k in ("coin", "limitPx", "oid", "side", "sz", "timestamp")}])
    )
    assert plain[0].oid == ORDER["oid"] and plain[0].cloid is None and plain[0].orig_sz is None
    frontend = wire.decode_open_orders(
        json.dumps(
            [
                {
                    **ORDER,
                    "reduceOnly": False,
                    "orderType": "Limit",
                    "tif": "Alo",
                    "isTrigger": False,
                    "triggerPx": "0.0",
                    "triggerCondition": "N/A",
                    "isPositionTpsl": False,
                    "children": [],
                }
            ]
        )
    )
    order = frontend[0]
    assert (order.cloid, order.tif, order.order_type, order.reduce_only) == (
        ORDER["cloid"],
        "Alo",
        "Limit",
        False,
    )
    with pytest.raises(WireError, match="openOrders: order 1 limitPx '-5' is not positive"):
        wire.decode_open_orders(json.dumps([{**ORDER, "oid": 1, "limitPx": "-5"}]))


def test_user_fills_rest_fees_and_rate_limit():
    fills = wire.decode_user_fills(json.dumps([FILL, TAKER_FILL]))
    assert [f.tid for f in fills] == [FILL["tid"], TAKER_FILL["tid"]]
    assert wire.decode_user_fills(b"[]") == []
    fees = wire.decode_user_fees(
        json.dumps(
            {
                "dailyUserVlm": [],
                "feeSchedule": {"cross": "0.00045", "add": "0.00015"},
                "userAddRate": "0.00015",
                "userCrossRate": "0.00045",
                "activeReferralDiscount": "0.0",
            }
        )
    )
    assert (fees.user_add_rate, fees.user_cross_rate) == ("0.00015", "0.00045")
    limit = wire.decode_user_rate_limit(
        '{"cumVlm":"2854574.59","nRequestsUsed":2890,"nRequestsCap":2864574,"nRequestsSurplus":0}'
    )
    assert (limit.cum_vlm, limit.n_requests_used, limit.n_requests_cap) == (
        "2854574.59",
        2890,
        2864574,
    )


def test_order_status_known_and_unknown():
    status = wire.decode_order_status(
        json.dumps(
            {
                "status": "order",
                "order": {
                    "order": {**ORDER, "tif": "Alo", "orderType": "Limit"},
                    "status": "filled",
                    "statusTimestamp": 1737918800500,
                },
            }
        )
    )
    assert status.status == "order" and status.order is not None
    assert status.order.status == "filled" and status.order.order.cloid == ORDER["cloid"]
    assert wire.decode_order_status('{"status":"unknownOid"}') == wire.OrderStatus("unknownOid")
    with pytest.raises(WireError, match='orderStatus: status "order" without an order'):
        wire.decode_order_status('{"status":"order"}')


def test_outgoing_control_messages():
    assert json.loads(wire.PING) == {"method": "ping"}
    assert json.loads(wire.encode_subscribe({"type": "l2Book", "coin": "BTC"})) == {
        "method": "subscribe",
        "subscription": {"type": "l2Book", "coin": "BTC"},
    }
    assert (
        json.loads(wire.encode_subscribe({"type": "trades", "coin": "BTC"}, "unsubscribe"))[
            "method"
        ]
        == "unsubscribe"
    )
    assert json.loads(wire.encode_post(7, "info", {"type": "meta"})) == {
        "method": "post",
        "id": 7,
        "request": {"type": "info", "payload": {"type": "meta"}},
    }


# ---- malformed and hostile frames ----------------------------------------------------------------


def book_with(bids: list[dict[str, Any]], asks: list[dict[str, Any]]) -> bytes:
    return frame("l2Book", {"coin": "BTC", "time": 1, "levels": [bids, asks]})


def level(px: Any, sz: Any = "1.0", n: Any = 1) -> dict[str, Any]:
    return {"px": px, "sz": sz, "n": n}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "frame: not JSON"),
        (b"{not json", "frame: not JSON"),
        (b"Websocket connection closed.", "frame: not JSON"),
        (b"[1, 2]", "frame: not a channel message: Expected `object`, got `array`"),
        (b'{"data": {}}', "frame: not a channel message: Object missing required field `channel`"),
        (b'{"channel": 5}', "frame: not a channel message: Expected `str`, got `int`"),
        (
            book_with([level("abc")], []),
            "l2Book BTC: bid level 0 (px 'abc', sz '1.0') is not a number",
        ),
        (
            book_with([], [level("1", "abc")]),
            "l2Book BTC: ask level 0 (px '1', sz 'abc') is not a number",
        ),
        (
            book_with([level("2", "-1")], []),
            "l2Book BTC: bid level 0 (px '2', sz '-1') is not a finite positive",
        ),
        (
            book_with([level("2", "0")], []),
            "l2Book BTC: bid level 0 (px '2', sz '0') is not a finite positive",
        ),
        (
            book_with([level("NaN")], []),
            "l2Book BTC: bid level 0 (px 'NaN', sz '1.0') is not a finite",
        ),
        (
            book_with([], [level("inf")]),
            "l2Book BTC: ask level 0 (px 'inf', sz '1.0') is not a finite",
        ),
        (
            book_with([level("1e400")], []),
            "l2Book BTC: bid level 0 (px '1e400', sz '1.0') is not a finite",
        ),
        (
            book_with([level("-5")], []),
            "l2Book BTC: bid level 0 (px '-5', sz '1.0') is not a finite",
        ),
        (
            book_with([level("2"), level("3")], []),
            "l2Book BTC: bid level 1 (px '3', sz '1.0') is out of order",
        ),
        (
            book_with([], [level("3"), level("3")]),
            "l2Book BTC: ask level 1 (px '3', sz '1.0') is out of order",
        ),
        (
            book_with([level("3")], [level("2")]),
            "l2Book BTC: crossed book: best bid 3 >= best ask 2",
        ),
        (
            book_with([level("3")], [level("3")]),
            "l2Book BTC: crossed book: best bid 3 >= best ask 3",
        ),
        (
            book_with([level(3)], []),
            "l2Book: Expected `str`, got `int` - at `$.data.levels[0][0].px`",
        ),
        (
            book_with([level("3", n=-1)], []),
            "l2Book: Expected `int` >= 0 - at `$.data.levels[0][0].n`",
        ),
        (
            frame("l2Book", {"coin": "BTC", "time": 1, "levels": [[]]}),
            "l2Book: Expected `array` of length 2",
        ),
        (
            frame("l2Book", {"coin": "BTC", "levels": [[], []]}),
            "l2Book: Object missing required field `time`",
        ),
        (
            frame("l2Book", {"coin": "BTC", "time": -1, "levels": [[], []]}),
            "l2Book: Expected `int` >= 0",
        ),
        (frame("l2Book", None), "l2Book: Expected `object`, got `null`"),
        (
            frame(
                "trades",
                [
                    {
                        "coin": "BTC",
                        "side": "X",
                        "px": "1",
                        "sz": "1",
                        "hash": "h",
                        "time": 1,
                        "tid": 1,
                    }
                ],
            ),
            "trades: Invalid enum value 'X'",
        ),
        (
            frame(
                "trades",
                [
                    {
                        "coin": "BTC",
                        "side": "B",
                        "px": "1",
                        "sz": "-1",
                        "hash": "h",
                        "time": 1,
                        "tid": 1,
                    }
                ],
            ),
            "trades: trade 1 (px '1', sz '-1') is not a finite positive number",
        ),
        (frame("trades", {"coin": "BTC"}), "trades: Expected `array`, got `object`"),
        (
            frame("userFills", {"user": "0xabc", "fills": [{**FILL, "fee": "NaN"}]}),
            f"userFills: fill {FILL['tid']} fee 'NaN' is not a finite",
        ),
        (
            frame("userFills", {"user": "0xabc", "fills": [{**FILL, "px": "0"}]}),
            f"userFills: fill {FILL['tid']} px '0' is not positive",
        ),
        (
            frame("userFills", {"user": "0xabc", "fills": [{**FILL, "sz": "1e20"}]}),
            f"userFills: fill {FILL['tid']} sz '1e20' is not a finite",
        ),
        (
            frame(
                "userFills",
                {"user": "0xabc", "fills": [{k: v for k, v in FILL.items() if k != "crossed"}]},
            ),
            "userFills: Object missing required field `crossed`",
        ),
        (
            frame("user", {"fills": [{**FILL, "closedPnl": "x"}]}),
            f"user: fill {FILL['tid']} closedPnl 'x' is not a decimal",
        ),
        (
            frame("user", {"fills": [FILL], "nonUserCancel": []}),
            "user: one event carries several kinds",
        ),
        (
            frame("user", {"funding": {"time": 1, "coin": "BTC", "usdc": "1", "szi": "1"}}),
            "user: Object missing required field `fundingRate`",
        ),
        (frame("user", "x"), "user: Expected `object`, got `str`"),
        (
            frame(
                "orderUpdates",
                [{"order": {**ORDER, "sz": "-1"}, "status": "open", "statusTimestamp": 1}],
            ),
            f"orderUpdates: order {ORDER['oid']} sz '-1' is negative",
        ),
        (
            frame("orderUpdates", [{"order": ORDER, "status": "open"}]),
            "orderUpdates: Object missing required field `statusTimestamp`",
        ),
        (
            frame("post", {"id": 1, "response": {"type": "error", "payload": 5}}),
            "post: id 1: an error payload is not a string",
        ),
        (
            frame("post", {"id": 1, "response": {"type": "info", "payload": "x"}}),
            "post: id 1: info payload: Expected `object`",
        ),
        (
            frame("post", {"id": 1, "response": {"type": "other", "payload": 1}}),
            "post: Invalid enum value 'other'",
        ),
        (
            frame("subscriptionResponse", {"method": "subscribe"}),
            "subscriptionResponse: Object missing required field `subscription`",
        ),
    ],
)
def test_malformed_frames_are_one_line_wire_errors_naming_the_channel(raw, message):
    with pytest.raises(WireError) as caught:
        wire.parse(raw)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text and len(text) <= 240
    assert isinstance(caught.value, ValueError)


def test_an_error_message_stays_one_short_line_whatever_the_frame_holds():
    with pytest.raises(WireError) as caught:
        wire.parse(book_with([level("x\n" * 500)], []))
    text = str(caught.value)
    assert "\n" not in text and len(text) <= 240


def test_deep_nesting_and_bad_unicode_are_wire_errors():
    for raw in ("[" * 100_000, '{"channel":"l2Book","data":' + "[" * 100_000, '"\ud800"'):
        with pytest.raises(WireError):
            wire.parse(raw)


def test_a_book_built_by_hand_is_checked_when_converted():
    bad = WsBook("BTC", 1, ([wire.WsLevel("1", "abc", 1)], []))
    with pytest.raises(WireError, match="l2Book BTC: bid level 0"):
        wire.book_event(bad)
    with pytest.raises(WireError, match=r"trades: trade 1 \(px 'x'"):
        wire.trade_events([wire.WsTrade("BTC", "B", "x", "1", "h", 1, 1)])


# hypothesis: nothing but WireError escapes, whatever arrives

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
NUMBERISH = st.one_of(
    st.text(max_size=8),
    st.from_regex(r"\A-?[0-9]{1,7}(\.[0-9]{1,6})?\Z"),
    st.sampled_from(["NaN", "-nan", "inf", "-Infinity", "1e400", "1_0", " 1 ", "0", "-0", "sNaN"]),
)


def valid_examples() -> list[tuple[str, Any]]:
    funding = {"time": 1, "coin": "BTC", "usdc": "-0.1", "szi": "1", "fundingRate": "0.000001"}
    return [
        ("l2Book", BOOK_DATA),
        (
            "trades",
            [
                {
                    "coin": "BTC",
                    "side": "B",
                    "px": "1.5",
                    "sz": "2",
                    "hash": "h",
                    "time": 1,
                    "tid": 2,
                    "users": ["a", "b"],
                }
            ],
        ),
        ("userFills", {"isSnapshot": True, "user": "0xabc", "fills": [FILL, TAKER_FILL]}),
        ("orderUpdates", [{"order": ORDER, "status": "open", "statusTimestamp": 1}]),
        ("user", {"fills": [FILL]}),
        ("user", {"funding": funding}),
        ("user", {"nonUserCancel": [{"coin": "BTC", "oid": 5}]}),
        (
            "post",
            {
                "id": 1,
                "response": {"type": "info", "payload": {"type": "l2Book", "data": BOOK_DATA}},
            },
        ),
        ("post", {"id": 1, "response": {"type": "error", "payload": "x"}}),
        (
            "subscriptionResponse",
            {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}},
        ),
        ("error", "x"),
    ]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: where a mutation can go."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


def parse_or_wire_error(raw: bytes | str) -> wire.Message | None:
    try:
        message = wire.parse(raw)
    except WireError as exc:
        assert "\n" not in str(exc)
        return None
    if isinstance(message, WsBook):
        update = wire.book_event(message, 0)
        prices = [px for px, _ in update.bids]
        assert prices == sorted(prices, reverse=True)
        assert [px for px, _ in update.asks] == sorted(px for px, _ in update.asks)
        if update.bids and update.asks:
            assert update.bids[0][0] < update.asks[0][0]
    elif isinstance(message, WsTrades):
        wire.trade_events(message)
    elif isinstance(message, WsFunding):
        wire.funding_event(message)
    elif isinstance(message, WsUserFills | UserEventFills):
        for fill in message.fills:
            wire.fill_px(fill), wire.fill_sz(fill), wire.fill_fee(fill)
    return message


HOSTILE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@HOSTILE
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_wire_error(raw):
    parse_or_wire_error(raw)


@HOSTILE
@given(JSON)
def test_random_json_never_raises_anything_but_wire_error(value):
    parse_or_wire_error(json.dumps(value))
    for decode in (
        wire.decode_meta,
        wire.decode_l2_book,
        wire.decode_clearinghouse_state,
        wire.decode_open_orders,
        wire.decode_user_fills,
        wire.decode_user_fees,
        wire.decode_user_rate_limit,
        wire.decode_order_status,
        wire.decode_exchange_reply,
    ):
        with contextlib.suppress(WireError):
            decode(json.dumps(value))


@HOSTILE
@given(st.sampled_from(sorted(wire._KNOWN_CHANNELS)), JSON)
def test_random_data_on_every_known_channel_is_parsed_or_refused(channel, data):
    parse_or_wire_error(frame(channel, data))


@HOSTILE
@given(st.data())
def test_one_mutated_field_in_a_valid_frame_is_parsed_or_refused(data):
    channel, valid = data.draw(st.sampled_from(valid_examples()))
    path = data.draw(st.sampled_from(paths(valid)))
    new = data.draw(st.one_of(JSON, NUMBERISH))
    parse_or_wire_error(frame(channel, replaced(valid, path, new)))


@HOSTILE
@given(
    st.lists(st.tuples(NUMBERISH, NUMBERISH), max_size=4),
    st.lists(st.tuples(NUMBERISH, NUMBERISH), max_size=4),
)
def test_books_of_random_number_strings_are_sane_or_refused(bids, asks):
    parse_or_wire_error(book_with([level(p, s) for p, s in bids], [level(p, s) for p, s in asks]))


@HOSTILE
@given(
    st.sampled_from(valid_examples()),
    st.integers(min_value=0, max_value=400),
    st.binary(max_size=3),
)
def test_truncated_or_corrupted_frames_are_parsed_or_refused(example, cut, junk):
    raw = frame(*example)
    parse_or_wire_error(raw[:cut] + junk + raw[cut + len(junk) :])


def test_msgspec_errors_never_escape_as_themselves():
    # WireError is the one type the venue catches: never a bare msgspec error.
    with pytest.raises(WireError) as caught:
        wire.parse(b'{"channel":"l2Book","data":{"coin":1}}')
    assert not isinstance(caught.value, msgspec.MsgspecError)
