"""The local exchange on the wire, over real loopback sockets: bad HTTP bodies get Hyperliquid's
answers (400, 422, 413, 429) and hurt neither the server nor another account; the WebSocket's
greeting, acks, error frames, ping/pong and `post` requests; a flooding, a silent and a
non-reading WebSocket client are each closed while the others keep their feed; and every
fault, injected while a client is connected, is said and survived."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from eth_account.signers.local import LocalAccount
from exchange_support import (
    best,
    funded,
    info,
    inject,
    order_action,
    post,
    signed,
    wait_for,
)
from websockets.asyncio.client import ClientConnection, connect

from engine.exchange import app
from engine.exchange.app import FAULTS, GREETING, ServerThread

BOOK_SUB = {"type": "l2Book", "coin": "BTC"}
SZ = "0.001"


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread(max_body_bytes=4096, book_push_s=0.05) as server:
        yield server


def rest_order(srv: ServerThread, key: LocalAccount, tif: str = "Alo") -> dict[str, Any]:
    """A well-formed buy well below the book, signed by the SDK; returns the reply."""
    bid, _ = best(srv)
    reply = post(srv, "/exchange", signed(key, order_action(True, bid - 300, SZ, tif)))
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def rests(srv: ServerThread, key: LocalAccount) -> int:
    """Place a resting order for `key` and cancel it: the server still serves that account."""
    reply = rest_order(srv, key)
    status = reply["response"]["data"]["statuses"][0]
    oid = int(status["resting"]["oid"])
    cancel = post(
        srv, "/exchange", signed(key, {"type": "cancel", "cancels": [{"a": 0, "o": oid}]})
    )
    assert cancel.json()["response"]["data"]["statuses"] == ["success"]
    return oid


# ---- HTTP --------------------------------------------------------------------------------------


def raw(srv: ServerThread, path: str, content: Any) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return httpx.post(srv.url + path, content=content, headers=headers, timeout=10)


def test_bad_http_requests_get_their_answer_and_hurt_no_one(srv: ServerThread) -> None:
    victim, other = funded(srv), funded(srv)
    address = victim.address
    cases: list[tuple[str, Any, int, str]] = [
        # malformed JSON
        ("/info", b"{not json", 400, "Failed to parse the request body as JSON"),
        ("/exchange", b'{"action": ', 400, "Failed to parse the request body as JSON"),
        ("/info", b"\xff\xfe", 400, "Failed to parse the request body as JSON"),
        ("/info", b"", 400, "Failed to parse the request body as JSON"),
        # JSON, but not a request: unknown types, missing fields, wrong types
        ("/info", b'{"type": "noSuchInfo"}', 422, "unknown variant `noSuchInfo`"),
        ("/info", b"[1, 2]", 422, "missing field `type`"),
        ("/info", b'{"type": 5}', 422, "missing field `type`"),
        ("/info", b'{"type": "clearinghouseState"}', 422, "missing field `user`"),
        ("/info", b'{"type": "openOrders", "user": 12}', 422, "missing field `user`"),
        (
            "/info",
            json.dumps({"type": "userFillsByTime", "user": address, "startTime": "x"}),
            422,
            "startTime",
        ),
        (
            "/exchange",
            json.dumps(signed(victim, {"type": "noSuchAction"})),
            422,
            "unknown action type",
        ),
        ("/exchange", b'{"nonce": 1, "signature": {}}', 422, "missing field `action`"),
        (
            "/exchange",
            json.dumps({**signed(victim, order_action(True, "1000", SZ)), "nonce": None}),
            422,
            "missing field `nonce`",
        ),
        (
            "/exchange",
            json.dumps({**signed(victim, order_action(True, "1000", SZ)), "signature": "0xab"}),
            422,
            "missing field `signature`",
        ),
        (
            "/exchange",
            json.dumps(signed(victim, {"type": "cancel", "cancels": "all"})),
            422,
            "cancels",
        ),
        # oversized (the server was started with max_body_bytes=4096)
        ("/info", json.dumps({"type": "meta", "pad": "x" * 5000}), 413, "larger than 4096"),
        ("/info", (b" " * 512 for _ in range(10)), 413, "larger than 4096"),  # chunked
    ]
    for path, content, code, text in cases:
        reply = raw(srv, path, content)
        assert (reply.status_code, text in reply.text) == (code, True), (path, content, reply.text)
        assert reply.headers["content-type"].startswith("text/plain")
        rests(srv, other)  # another account is served as before

    # wrong types inside an order are that order's error, not the request's
    bid, _ = best(srv)
    bad_orders = order_action(True, bid - 300, SZ)
    good = dict(bad_orders["orders"][0])
    bad_orders["orders"] = [
        {**good, "p": [1]},
        {**good, "s": "lots"},
        {**good, "b": "yes"},
        {**good, "t": {"limit": {"tif": "Forever"}}},
        good,
    ]
    reply = post(srv, "/exchange", signed(victim, bad_orders)).json()
    statuses = reply["response"]["data"]["statuses"]
    assert [next(iter(s)) for s in statuses] == ["error"] * 4 + ["resting"]
    assert statuses[0]["error"] == "Order has invalid price."
    assert statuses[1]["error"] == "Order has invalid size."
    # a signature that recovers to no account is Hyperliquid's whole-request error
    forged = signed(victim, order_action(True, bid - 300, SZ))
    forged["signature"] = {"r": "0x1", "s": "0x2", "v": 27}
    refused = post(srv, "/exchange", forged).json()
    assert refused["status"] == "err" and refused["response"].startswith("L1 error: User or API")
    assert victim.address.lower() not in refused["response"]

    # the victim itself is unharmed, and each kind of bad request was logged once, not per hit
    rests(srv, victim)
    assert sum("bad /info body" in line for line in srv.lines) == 1
    assert sum("bad /info request" in line for line in srv.lines) == 1
    assert sum("bad /exchange request" in line for line in srv.lines) == 1


def test_the_server_turns_nagle_off_on_every_connection(srv: ServerThread) -> None:
    """A reply is written as headers then body; with Nagle's algorithm on, the body can wait
    for the client's delayed ACK (~40 ms a request). Read the option off the server's own
    accepted sockets."""
    with httpx.Client(base_url=srv.url) as client:
        assert client.post("/info", json={"type": "meta"}).status_code == 200

        def nodelay() -> list[int]:
            connections = srv.server._uvicorn.server_state.connections  # type: ignore[union-attr]
            return [
                c.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for c in connections
            ]

        flags = srv.call(nodelay)
    assert flags and all(flags), flags


def test_ip_weight_past_the_minute_budget_gets_429_then_refills() -> None:
    with ServerThread(ip_weight_per_min=120) as srv:
        body = {"type": "l2Book", "coin": "BTC"}  # weight 2: 60 of them fill the minute
        answered = 0
        for _ in range(100):
            reply = post(srv, "/info", body)
            if reply.status_code == 429:
                break
            assert reply.status_code == 200
            answered += 1
        else:
            pytest.fail("never rate limited")
        assert answered >= 59
        assert reply.text == "Too many requests"
        # 2 weight a second come back
        wait_for(lambda: post(srv, "/info", body).status_code == 200, limit_s=5, step_s=0.1)
        assert sum("rate limited" in line for line in srv.lines) == 1


# ---- WebSocket ---------------------------------------------------------------------------------


def ws_url(srv: ServerThread) -> str:
    return "ws" + srv.url.removeprefix("http") + "/ws"


@asynccontextmanager
async def client(srv: ServerThread, **options: Any) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(srv), ping_interval=None, **options) as ws:
        assert await asyncio.wait_for(ws.recv(), 5) == GREETING
        yield ws


async def frame(ws: ClientConnection, limit_s: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), limit_s))


async def until(ws: ClientConnection, wanted: Callable[[Any], bool], limit_s: float = 5.0) -> Any:
    """The first frame `wanted` accepts, skipping feed frames before it."""
    deadline = time.monotonic() + limit_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no such frame within the deadline")
        msg = await frame(ws, left)
        if wanted(msg):
            return msg


def channel(name: str) -> Callable[[Any], bool]:
    return lambda msg: isinstance(msg, dict) and msg.get("channel") == name


async def send(ws: ClientConnection, msg: Any) -> None:
    await ws.send(json.dumps(msg))


async def closed_code(ws: ClientConnection, limit_s: float = 5.0) -> int | None:
    """Read until the server closes the connection; its close code."""
    deadline = time.monotonic() + limit_s
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


async def test_ws_greeting_subscriptions_acks_errors_and_ping(srv: ServerThread) -> None:
    key = funded(srv)
    async with client(srv) as ws:
        await send(ws, {"method": "subscribe", "subscription": BOOK_SUB})
        assert await frame(ws) == {
            "channel": "subscriptionResponse",
            "data": {"method": "subscribe", "subscription": BOOK_SUB},
        }
        snapshot = await frame(ws)  # the book at once, then on every change
        assert snapshot["channel"] == "l2Book" and snapshot["data"]["coin"] == "BTC"
        bids, asks = snapshot["data"]["levels"]
        assert Decimal(bids[0]["px"]) < Decimal(asks[0]["px"])
        await until(ws, channel("l2Book"))

        await send(ws, {"method": "subscribe", "subscription": BOOK_SUB})
        error = await until(ws, channel("error"))
        assert error["data"] == f"Already subscribed: {json.dumps(BOOK_SUB)}"
        await send(ws, {"method": "ping"})
        assert await until(ws, lambda m: m.get("channel") != "l2Book") == {"channel": "pong"}

        user_sub = {"type": "userFills", "user": key.address}
        await send(ws, {"method": "subscribe", "subscription": user_sub})
        await until(ws, channel("subscriptionResponse"))
        fills = await until(ws, channel("userFills"))
        assert fills["data"] == {"isSnapshot": True, "user": key.address.lower(), "fills": []}

        for bad in (
            {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "DOGE"}},
            {"method": "subscribe", "subscription": {"type": "candle", "coin": "BTC"}},
            {"method": "subscribe", "subscription": {"type": "orderUpdates"}},
            {"method": "dance"},
        ):
            await send(ws, bad)
            assert (await until(ws, lambda m: m["channel"] != "l2Book"))["channel"] == "error"
        await ws.send("{not json")
        error = await until(ws, channel("error"))
        assert error["data"].startswith("Error parsing JSON into valid websocket request")

        await send(ws, {"method": "unsubscribe", "subscription": BOOK_SUB})
        assert await until(ws, channel("subscriptionResponse")) == {
            "channel": "subscriptionResponse",
            "data": {"method": "unsubscribe", "subscription": BOOK_SUB},
        }
        # no book after the ack: ping, and nothing but the pong comes back within 0.3 s of feed
        await send(ws, {"method": "ping"})
        assert await frame(ws) == {"channel": "pong"}
        with pytest.raises(TimeoutError):
            await frame(ws, 0.3)
        await send(ws, {"method": "unsubscribe", "subscription": BOOK_SUB})
        error = await frame(ws)
        assert error == {
            "channel": "error",
            "data": f"Already unsubscribed: {json.dumps(BOOK_SUB)}",
        }


async def test_ws_post_requests_info_and_action(srv: ServerThread) -> None:
    key = funded(srv)
    bid, _ = best(srv)
    async with client(srv) as ws:
        book_request = {"type": "info", "payload": {"type": "l2Book", "coin": "BTC"}}
        await send(ws, {"method": "post", "id": 1, "request": book_request})
        reply = await until(ws, channel("post"))
        assert reply["data"]["id"] == 1
        response = reply["data"]["response"]
        assert response["type"] == "info" and response["payload"]["type"] == "l2Book"
        assert response["payload"]["data"]["coin"] == "BTC"
        assert len(response["payload"]["data"]["levels"]) == 2

        action: dict[str, Any] = {
            "type": "action",
            "payload": signed(key, order_action(True, bid - 300, SZ)),
        }
        await send(ws, {"method": "post", "id": 2, "request": action})
        reply = await until(ws, channel("post"))
        assert reply["data"]["id"] == 2 and reply["data"]["response"]["type"] == "action"
        payload = reply["data"]["response"]["payload"]
        assert payload["status"] == "ok" and payload["response"]["type"] == "order"
        oid = payload["response"]["data"]["statuses"][0]["resting"]["oid"]
        assert [o["oid"] for o in info(srv, {"type": "openOrders", "user": key.address})] == [oid]

        # the same signed action again: the nonce is spent
        await send(ws, {"method": "post", "id": 3, "request": action})
        reply = await until(ws, channel("post"))
        nonce = action["payload"]["nonce"]
        assert reply["data"]["response"]["payload"] == {
            "status": "err",
            "response": f"Invalid nonce: duplicate nonce {nonce}",
        }

        bad_info = {"type": "info", "payload": {"type": "noSuchInfo"}}
        await send(ws, {"method": "post", "id": 4, "request": bad_info})
        reply = await until(ws, channel("post"))
        assert reply["data"]["id"] == 4 and reply["data"]["response"]["type"] == "error"
        assert "unknown variant" in reply["data"]["response"]["payload"]
        await send(ws, {"method": "post", "id": "five", "request": bad_info})
        assert (await until(ws, channel("error")))["channel"] == "error"

        cancel = signed(key, {"type": "cancel", "cancels": [{"a": 0, "o": oid}]})
        await send(
            ws, {"method": "post", "id": 6, "request": {"type": "action", "payload": cancel}}
        )
        reply = await until(ws, channel("post"))
        assert reply["data"]["response"]["payload"]["response"]["data"]["statuses"] == ["success"]


async def test_ws_flooding_client_is_closed_and_the_others_keep_their_book() -> None:
    with ServerThread(ws_msgs_per_min=20, book_push_s=0.05) as srv:
        async with client(srv) as calm, client(srv) as flood:
            await send(calm, {"method": "subscribe", "subscription": BOOK_SUB})
            await until(calm, channel("l2Book"))
            with contextlib.suppress(websockets.ConnectionClosed):
                for _ in range(40):
                    await send(flood, {"method": "ping"})
            frames: list[Any] = []
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:  # what was sent before the close is still read, then the close
                    frames.append(await frame(flood))
            assert frames.count({"channel": "pong"}) == 20
            assert frames[-1] == {
                "channel": "error",
                "data": "Cannot send more than 20 messages per minute.",
            }
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            # the calm client is still fed
            for _ in range(3):
                await until(calm, channel("l2Book"))
            await send(calm, {"method": "ping"})
            await until(calm, channel("pong"))
        assert sum("flooded" in line for line in srv.lines) == 1


async def test_ws_silent_client_is_closed_after_ws_idle_s() -> None:
    with ServerThread(ws_idle_s=1.0) as srv:
        async with client(srv) as silent, client(srv) as talker:
            start = time.monotonic()
            closed = asyncio.create_task(closed_code(silent, limit_s=10))
            while not closed.done():
                await send(talker, {"method": "ping"})
                assert await until(talker, channel("pong")) == {"channel": "pong"}
                await asyncio.sleep(0.2)
                assert time.monotonic() - start < 10, "the silent client was never closed"
            assert await closed == 1000
            # the talker, which kept sending, is still served
            await send(talker, {"method": "ping"})
            assert await until(talker, channel("pong")) == {"channel": "pong"}
        assert any("silent for 1 s" in line for line in srv.lines)


async def test_ws_client_that_stops_reading_is_dropped_and_others_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "QUEUE_MAX", 8)
    with ServerThread(book_push_s=0.05, ws_msgs_per_min=100_000, ip_weight_per_min=10**6) as srv:
        # a small receive buffer, no compression: what the server sends backs up quickly
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        stopped = lambda: any("stopped reading" in line for line in srv.lines)  # noqa: E731
        async with (
            client(srv) as reader,
            client(srv, sock=sock, compression=None, max_queue=1) as stuck,
        ):
            await send(reader, {"method": "subscribe", "subscription": BOOK_SUB})
            await send(stuck, {"method": "subscribe", "subscription": BOOK_SUB})
            stuck.transport.pause_reading()  # it reads nothing from its socket from here on
            request = {"type": "info", "payload": {"type": "l2Book", "coin": "BTC"}}
            for ident in range(5000):  # ~2 kB answers fill the socket, then the server queue
                await send(stuck, {"method": "post", "id": ident, "request": request})
                if ident % 200 == 0:
                    if stopped():
                        break
                    await until(reader, channel("l2Book"))
            wait_for(stopped, limit_s=5)
            assert srv.call(lambda: len(srv.server.clients)) == 1
            # the reader is fed as before
            for _ in range(3):
                await until(reader, channel("l2Book"))
            await send(reader, {"method": "ping"})
            await until(reader, channel("pong"))
            # and the stuck one, once it reads again, finds its connection gone
            stuck.transport.resume_reading()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(stuck.recv(), 5)
        assert sum("stopped reading" in line for line in srv.lines) == 1


# ---- faults ------------------------------------------------------------------------------------


async def test_faults_injected_while_a_client_is_connected(srv: ServerThread) -> None:
    key = funded(srv)
    book_body = {"type": "l2Book", "coin": "BTC"}
    async with client(srv) as ws:
        await send(ws, {"method": "subscribe", "subscription": BOOK_SUB})
        for sub in ("userEvents", "orderUpdates"):
            await send(
                ws, {"method": "subscribe", "subscription": {"type": sub, "user": key.address}}
            )
        await until(ws, channel("l2Book"))

        # latency: answers still come, and the server says what it added
        assert inject(srv, "latency", ms=30) == "added latency 30 ms on every answer"
        assert post(srv, "/info", book_body).status_code == 200
        assert inject(srv, "latency", ms=0) == "added latency 0 ms on every answer"

        # HTTP 429 and 5xx bursts of exactly the size asked
        assert inject(srv, "http429", count=2) == "the next 2 HTTP requests get 429"
        assert [post(srv, "/info", book_body).status_code for _ in range(3)] == [429, 429, 200]
        assert inject(srv, "http5xx", count=2) == "the next 2 HTTP requests get 502"
        codes = [post(srv, "/info", book_body).status_code for _ in range(2)]
        assert codes == [502, 502]
        rests(srv, key)

        # malformed frames: the next pushed frame is cut short, the ones after are whole
        inject(srv, "malformed", count=1)
        deadline = time.monotonic() + 5
        while True:
            text = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            try:
                json.loads(text)
            except json.JSONDecodeError:
                break
        assert channel("l2Book")(await until(ws, channel("l2Book")))

        # a frozen feed: nothing pushed while the market goes on, then the book again
        before = info(srv, book_body)["time"]
        said = inject(srv, "freeze", seconds=1.0)
        assert said == "market feeds frozen for 1 s (the market goes on)"
        await send(ws, {"method": "ping"})
        await until(ws, channel("pong"))  # whatever was queued before the freeze is read
        assert info(srv, book_body)["time"] > before  # /info still answers, the market moves
        after = await until(ws, channel("l2Book"))
        assert after["data"]["time"] >= before + 1000  # the first book pushed after the freeze

        # an exchange-side cancel of everything, as a network upgrade does
        status = rest_order(srv, key)["response"]["data"]["statuses"][0]
        oid = status["resting"]["oid"]
        bid, _ = best(srv)
        gtc = signed(key, order_action(True, bid - 300, SZ, "Gtc"))  # ready to go at once
        said = inject(srv, "cancel_all", seconds=1.5)
        assert said.startswith("network upgrade: cancelled ")
        assert said.endswith(" open order(s), post-only only for 1.5 s")
        refused = post(srv, "/exchange", gtc).json()["response"]["data"]["statuses"][0]
        assert refused == {
            "error": "Only post-only orders allowed immediately after a network upgrade"
        }
        user_events: list[Any] = []
        cancelled: list[Any] = []
        while not (user_events and cancelled):  # the user channel and orderUpdates both say it
            msg = await until(ws, lambda m: m["channel"] in ("user", "orderUpdates"))
            if msg["channel"] == "user":
                user_events.append(msg["data"])
            else:
                cancelled += [(u["order"]["oid"], u["status"]) for u in msg["data"]]
                cancelled = [u for u in cancelled if u[1] != "open"]
        assert user_events == [{"nonUserCancel": [{"coin": "BTC", "oid": oid}]}]
        assert cancelled == [(oid, "canceled")]
        assert info(srv, {"type": "openOrders", "user": key.address}) == []
        rests(srv, key)  # post-only is still fine
        wait_for(  # and, the window over, anything else again
            lambda: "resting" in rest_order(srv, key, tif="Gtc")["response"]["data"]["statuses"][0],
            limit_s=5,
            step_s=0.1,
        )

        # a drop on demand: the client is closed, a new one is served
        assert inject(srv, "ws_drop") == "dropped 1 WebSocket connection(s)"
        assert await closed_code(ws) == 1012
    async with client(srv) as ws:
        await send(ws, {"method": "ping"})
        assert await frame(ws) == {"channel": "pong"}

    assert post(srv, "/_perpdesk/fault", {"fault": "meteor"}).status_code == 422
    status = httpx.get(srv.url + "/_perpdesk/status", timeout=10).json()
    assert "network upgrade: cancelled" in " ".join(status["faults"])
    assert set(FAULTS) >= {"latency", "http429", "http5xx", "ws_drop", "freeze", "malformed"}


async def test_periodic_and_random_ws_drops() -> None:
    with ServerThread(ws_drop_every_s=0.3) as srv:  # from the settings
        for _ in range(2):  # dropped, reconnects, dropped again
            async with client(srv) as ws:
                assert await closed_code(ws) == 1012
        assert any(line.startswith("fault: periodic WebSocket drop") for line in srv.lines)

    with ServerThread() as srv:  # from the control endpoint
        async with client(srv) as ws:
            said = inject(srv, "ws_drop_every", seconds=0.2)
            assert said == "dropping every WebSocket every 0.2 s (0: never)"
            assert await closed_code(ws) == 1012
        assert inject(srv, "ws_drop_every", seconds=0).endswith("every 0 s (0: never)")
        async with client(srv) as ws:
            inject(srv, "ws_drop_random", count=10_000_000)  # certain within a pacing step
            assert await closed_code(ws) == 1012
        assert any(line.startswith("fault: random WebSocket drop") for line in srv.lines)
        inject(srv, "ws_drop_random", count=0)
        async with client(srv) as ws:  # and the server goes on serving
            await send(ws, {"method": "ping"})
            assert await until(ws, channel("pong")) == {"channel": "pong"}


def test_deeply_nested_json_is_a_400_not_a_crash() -> None:
    body = "[" * 100_000 + "]" * 100_000  # 200 kB, under the body limit
    with ServerThread() as srv:
        for path in ("/info", "/exchange"):
            reply = httpx.post(f"{srv.url}{path}", content=body, timeout=10)
            assert reply.status_code == 400 and "nested too deep" in reply.text
        assert httpx.post(f"{srv.url}/info", json={"type": "meta"}, timeout=10).status_code == 200


def test_the_market_clock_goes_on_when_the_state_cannot_be_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "SAVE_EVERY_S", 0.05)
    (tmp_path / "exchange-state.tmp").mkdir()  # where the save writes first: it must fail
    with ServerThread(state_dir=str(tmp_path)) as srv:
        before = srv.call(lambda: srv.server.market.now_ns)
        wait_for(lambda: any("could not save" in line for line in srv.lines), limit_s=5)
        time.sleep(0.3)
        assert srv.call(lambda: srv.server.market.now_ns) > before  # paced without requests
        assert sum("could not save" in line for line in srv.lines) == 1  # said once
