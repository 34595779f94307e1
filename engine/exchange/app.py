"""The local exchange on the wire: Hyperliquid's HTTP and WebSocket API over `Exchange`.

Starlette routes on uvicorn (whose WebSocket side runs on the `websockets` package):

- `POST /info` and `POST /exchange`: JSON in, JSON out, Hyperliquid's shapes. A body that is
  not JSON gets HTTP 400, one that is JSON but not a request HTTP 422 (Hyperliquid's "Failed to
  deserialize the JSON body into the target type"), an oversized one 413, an IP past its
  weight budget 429.
- `/ws`: the greeting, subscribe/unsubscribe with acks, market and user feeds, `post`
  requests, ping/pong; a connection that sends nothing for `ws_idle_s` is closed, one that
  floods gets an error frame and is closed, one that stops reading is dropped when its queue
  is full. None of it slows the others.
- `POST /_perpdesk/fault` (loopback only): inject a fault while running; `GET /_perpdesk/status`.

One event loop does everything; the market is advanced to the wall clock before every answer
and by a pacing task in between, so answers and feeds always speak of the same moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from engine.config import ExchangeSettings
from engine.exchange.core import COIN, Exchange, RequestError
from engine.exchange.persist import load_state, save_state
from engine.sim.market import SimMarket
from engine.sim.params import SimParams

GREETING = "Websocket connection established."
QUEUE_MAX = 2000
"""Frames waiting for one WebSocket client; past this it is not reading and is dropped."""
WRITER_GRACE_S = 2.0
"""How long a closing connection's writer may take to send what was queued before the close."""
SAVE_EVERY_S = 10.0
_JSON = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder()
_SUBSCRIPTIONS = {"l2Book", "bbo", "trades", "allMids", "orderUpdates", "userFills", "userEvents"}
_USER_SUBSCRIPTIONS = {"orderUpdates", "userFills", "userEvents"}
_MAX_USERS = 10


def market_params(settings: ExchangeSettings, start_ns: int) -> SimParams:
    """The market behind the exchange: BTC on Hyperliquid's grid at $100k (a $1 tick, which
    is what 5 significant figures leave, and 0.00001 BTC lots: szDecimals 5)."""
    return SimParams(
        seed=settings.seed,
        symbol=COIN,
        start_ns=start_ns,
        tick_size=1.0,
        lot_size=0.00001,
        level_spacing_ticks=3,
        funding_enabled=settings.funding,
        funding_rate_per_hour=0.0000125,
    ).with_fees("hyperliquid-base")


@dataclass(slots=True)
class Faults:
    """What is being injected right now (from settings, the control endpoint, or a test)."""

    latency_ms: float = 0.0
    http_error_rate: float = 0.0
    http_429_left: int = 0
    http_5xx_left: int = 0
    frozen_until: float = 0.0
    malformed_left: int = 0
    ws_drop_every_s: float = 0.0
    ws_drop_rate_per_hour: float = 0.0
    log: list[str] = field(default_factory=list)


class _Bucket:
    """An IP's REST weight: `per_min` a minute, refilled continuously."""

    __slots__ = ("level", "stamp")

    def __init__(self, per_min: int) -> None:
        self.level = float(per_min)
        self.stamp = time.monotonic()

    def take(self, weight: int, per_min: int) -> bool:
        now = time.monotonic()
        self.level = min(per_min, self.level + (now - self.stamp) * per_min / 60.0)
        self.stamp = now
        if weight > self.level:
            return False
        self.level -= weight
        return True


class _Client:
    """One WebSocket connection: its subscriptions and its outgoing queue."""

    def __init__(self, ws: WebSocket, ip: str) -> None:
        self.ws = ws
        self.ip = ip
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_MAX)
        self.subs: dict[str, dict[str, Any]] = {}
        self.users: set[str] = set()
        self.sent_stamps: list[float] = []
        self.closed = False
        self.close_code: int | None = None
        """Set when the server closes it: the writer sends what is queued, then closes."""
        self.last_out = time.monotonic()

    def wants(self, kind: str, user: str | None) -> bool:
        for sub in self.subs.values():
            if sub["type"] == kind and (user is None or sub.get("user", "").lower() == user):
                return True
        return False

    def push(self, text: str) -> bool:
        """Queue a frame; False if the client has stopped reading (its queue is full)."""
        if self.closed:
            return True
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True


class LocalExchange:
    """The server: one market, its accounts, the HTTP and WebSocket API, faults, persistence."""

    def __init__(
        self,
        settings: ExchangeSettings,
        *,
        log: Callable[[str], None] | None = None,
        start_ns: int | None = None,
    ) -> None:
        self.settings = settings
        self._log_line = log or (lambda line: print(line, flush=True))
        self._mono0 = time.monotonic_ns()
        self._start_ns = time.time_ns() if start_ns is None else start_ns
        self.market = SimMarket(market_params(settings, self._start_ns))
        self.exchange = Exchange(
            self.market,
            mainnet=settings.network == "mainnet",
            schedule_cancel_min_volume=Decimal(repr(settings.schedule_cancel_min_volume_usd)),
        )
        self.state_path = (
            Path(settings.state_dir) / "exchange-state.json" if settings.state_dir else None
        )
        if self.state_path is not None and self.state_path.exists():
            note = load_state(self.exchange, self.state_path)
            self.log(note)
        for address, usd in settings.fund.items():
            if address.lower() not in self.exchange.ledgers:
                self.exchange.fund(address, Decimal(repr(usd)))
        self.faults = Faults(
            latency_ms=settings.latency_ms,
            http_error_rate=settings.http_error_rate,
            ws_drop_every_s=settings.ws_drop_every_s,
            ws_drop_rate_per_hour=settings.ws_drop_rate_per_hour,
        )
        self._fault_rng = random.Random(f"{settings.seed}:server-faults")
        self.clients: set[_Client] = set()
        self.buckets: dict[str, _Bucket] = {}
        self.requests = 0
        self._logged: set[tuple[str, str]] = set()
        self._last_book_push = 0.0
        self._last_bbo: Any = None
        self._next_drop = 0.0
        self._uvicorn: _Server | None = None
        self.app = Starlette(
            routes=[
                Route("/info", self._info, methods=["POST"]),
                Route("/exchange", self._exchange, methods=["POST"]),
                WebSocketRoute("/ws", self._ws),
                Route("/_perpdesk/fault", self._fault, methods=["POST"]),
                Route("/_perpdesk/status", self._status, methods=["GET"]),
            ]
        )

    # ---- the clock ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving (as SIGTERM does): connections close, the state is saved."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True

    def skip_ahead(self, seconds: float) -> None:
        """Move the market clock `seconds` ahead at once, for drills: the market runs through
        them (background flow, funding, dead man's switches) on the next advance."""
        self._start_ns += int(seconds * 1e9)
        self.advance()

    def market_ns(self) -> int:
        elapsed = time.monotonic_ns() - self._mono0
        return self._start_ns + int(elapsed * self.settings.speed)

    def advance(self) -> None:
        self.exchange.advance(self.market_ns())
        self.publish()

    async def pace(self) -> None:
        """Keep the market on the wall clock, push feeds, fire periodic faults, save state."""
        last_status = last_save = time.monotonic()
        self._next_drop = self._draw_drop(last_status)
        while True:
            await asyncio.sleep(0.01)
            try:
                last_status, last_save = self._pace_once(last_status, last_save)
            except Exception as exc:  # the clock must keep going: report, never die
                self.log_once(
                    "server",
                    f"pace-{type(exc).__name__}",
                    f"error in the market loop: {type(exc).__name__}: {exc}",
                )

    def _pace_once(self, last_status: float, last_save: float) -> tuple[float, float]:
        """One tick of the pacing loop; returns the new (last status, last save) times."""
        self.advance()
        now = time.monotonic()
        if now - self._last_book_push >= self.settings.book_push_s:
            self._last_book_push = now
            self._push_book()
        if now >= self._next_drop:
            self._next_drop = self._draw_drop(now)
            if self.clients:
                self.drop_websockets("periodic WebSocket drop")
        self._random_drops(0.01)
        if now - last_status >= self.settings.status_every_s:
            last_status = now
            self.log(self.status_line())
        if self.state_path is not None and now - last_save >= SAVE_EVERY_S:
            last_save = now
            self.save()
        return last_status, last_save

    def _draw_drop(self, now: float) -> float:
        every = self.faults.ws_drop_every_s
        return now + every if every > 0 else float("inf")

    def _random_drops(self, dt_s: float) -> None:
        rate = self.faults.ws_drop_rate_per_hour
        if rate <= 0:
            return
        for client in list(self.clients):
            if self._fault_rng.random() < rate * dt_s / 3600.0:
                self.log(f"fault: random WebSocket drop of a client from {client.ip}")
                self._close(client, 1012)

    # ---- status and persistence -----------------------------------------------------------

    def log(self, line: str) -> None:
        self._log_line(line)

    def log_once(self, ip: str, kind: str, line: str) -> None:
        if (ip, kind) not in self._logged:
            self._logged.add((ip, kind))
            self.log(f"{line} (from {ip}; logged once)")

    def status_line(self) -> str:
        ex = self.exchange
        resting = sum(len(v) for v in ex.open_by_user.values())
        mid = ex.mark_px()
        return (
            f"{time.strftime('%H:%M:%S')} mid {mid} · accounts {len(ex.ledgers)} · resting "
            f"orders {resting} · fills {ex.fills_count} · connections {len(self.clients)} · "
            f"requests {self.requests}"
        )

    def save(self) -> bool:
        """Write the state file; on failure say so (once per kind of failure) and go on: the
        exchange keeps serving, and the next save tries again."""
        if self.state_path is None:
            return False
        try:
            save_state(self.exchange, self.state_path)
        except OSError as exc:
            self.log_once("server", f"save-{exc.errno}", f"could not save {self.state_path}: {exc}")
            return False
        return True

    # ---- HTTP -----------------------------------------------------------------------------

    async def _body(self, request: Request) -> Any:
        """The decoded JSON body, or a Response saying what is wrong with it."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return PlainTextResponse(f"Request body larger than {limit} bytes", 413)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return PlainTextResponse(f"Request body larger than {limit} bytes", 413)
                chunks.append(chunk)
        except ClientDisconnect:  # gone before it finished sending: nothing to answer
            return PlainTextResponse("Client disconnected", 400)
        try:
            return _DECODE.decode(b"".join(chunks))
        except msgspec.DecodeError as exc:
            return PlainTextResponse(f"Failed to parse the request body as JSON: {exc}", 400)
        except RecursionError:
            return PlainTextResponse(
                "Failed to parse the request body as JSON: nested too deep", 400
            )

    async def _gate(self, request: Request, weight: int) -> Response | None:
        """Faults and the IP budget, before any work."""
        self.requests += 1
        faults = self.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        if faults.http_429_left > 0:
            faults.http_429_left -= 1
            return PlainTextResponse("Too many requests (injected)", 429)
        if faults.http_5xx_left > 0 or (
            faults.http_error_rate and self._fault_rng.random() < faults.http_error_rate
        ):
            faults.http_5xx_left = max(0, faults.http_5xx_left - 1)
            return PlainTextResponse("Bad gateway (injected)", 502)
        ip = _ip(request)
        if not self._charge_ip(ip, weight):
            self.log_once(ip, "429", "rate limited: REST weight past the per-minute budget")
            return PlainTextResponse("Too many requests", 429)
        return None

    def _charge_ip(self, ip: str, weight: int) -> bool:
        bucket = self.buckets.get(ip)
        if bucket is None:
            bucket = self.buckets[ip] = _Bucket(self.settings.ip_weight_per_min)
        return bucket.take(weight, self.settings.ip_weight_per_min)

    async def _info(self, request: Request) -> Response:
        # the request is read in full first: what the exchange received, it answers, even if
        # (with injected latency) the client has given up waiting by then
        body = await self._body(request)
        refused = await self._gate(request, 2)
        if refused is not None:
            return refused
        if isinstance(body, Response):
            self.log_once(_ip(request), "body", f"bad /info body: HTTP {body.status_code}")
            return body
        reply = self.answer_info(body, _ip(request))
        if isinstance(reply, str):
            return PlainTextResponse(reply, 422)
        return Response(_JSON.encode(reply), media_type="application/json")

    def answer_info(self, body: Any, ip: str) -> Any:
        """An /info answer, or the 422 text."""
        self.advance()
        try:
            reply, weight = self.exchange.info(body)
        except RequestError as exc:
            self.log_once(ip, "info-shape", f"bad /info request: {exc}")
            return f"Failed to deserialize the JSON body into the target type: {exc}"
        except Exception as exc:  # a request we did not foresee: answer, log, serve on
            self.log_once(
                ip,
                f"info-{type(exc).__name__}",
                f"error answering /info: {type(exc).__name__}: {exc}",
            )
            return f"Failed to deserialize the JSON body into the target type: {exc}"
        bucket = self.buckets.get(ip)
        if bucket is not None and weight > 2:
            bucket.take(min(weight - 2, int(bucket.level)), self.settings.ip_weight_per_min)
        return reply

    async def _exchange(self, request: Request) -> Response:
        body = await self._body(request)
        refused = await self._gate(request, 1)
        if refused is not None:
            return refused
        if isinstance(body, Response):
            self.log_once(_ip(request), "body", f"bad /exchange body: HTTP {body.status_code}")
            return body
        ip = _ip(request)
        extra = _action_weight(body) - 1  # 1 + floor(batch length / 40); 1 was taken
        if extra > 0:
            self.buckets[ip].take(
                min(extra, int(self.buckets[ip].level)), self.settings.ip_weight_per_min
            )
        reply = self.answer_action(body, ip)
        if isinstance(reply, str):
            return PlainTextResponse(reply, 422)
        return Response(_JSON.encode(reply), media_type="application/json")

    def answer_action(self, body: Any, ip: str) -> Any:
        self.advance()
        try:
            reply = self.exchange.exchange(body)
        except RequestError as exc:
            self.log_once(ip, "action-shape", f"bad /exchange request: {exc}")
            return f"Failed to deserialize the JSON body into the target type: {exc}"
        except Exception as exc:  # a request we did not foresee: answer, log, serve on
            self.log_once(
                ip,
                f"action-{type(exc).__name__}",
                f"error answering /exchange: {type(exc).__name__}: {exc}",
            )
            reply = {"status": "err", "response": f"Internal error: {type(exc).__name__}"}
        self.publish()
        return reply

    async def _status(self, request: Request) -> Response:
        return JSONResponse({"status": self.status_line(), "faults": self.faults.log[-20:]})

    async def _fault(self, request: Request) -> Response:
        if not _is_loopback(_ip(request)):
            return PlainTextResponse("faults are injected from loopback only", 403)
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        try:
            said = self.inject(body)
        except ValueError as exc:
            return PlainTextResponse(str(exc), 422)
        return JSONResponse({"injected": said})

    # ---- faults ---------------------------------------------------------------------------

    def inject(self, spec: Any) -> str:
        """Inject one fault: {"fault": name, ...}. Returns what was injected, in one line."""
        if not isinstance(spec, dict) or not isinstance(spec.get("fault"), str):
            raise ValueError('a fault is {"fault": name, ...}; names: ' + ", ".join(FAULTS))
        name = spec["fault"]
        faults = self.faults
        number = spec.get("count", spec.get("seconds", spec.get("ms", 0)))
        if not isinstance(number, int | float) or isinstance(number, bool) or number < 0:
            raise ValueError(f"fault {name}: count/seconds/ms must be a non-negative number")
        if name == "latency":
            faults.latency_ms = float(number)
            said = f"added latency {faults.latency_ms:g} ms on every answer"
        elif name == "http429":
            faults.http_429_left = int(number or 10)
            said = f"the next {faults.http_429_left} HTTP requests get 429"
        elif name == "http5xx":
            faults.http_5xx_left = int(number or 10)
            said = f"the next {faults.http_5xx_left} HTTP requests get 502"
        elif name == "ws_drop":
            n = self.drop_websockets("WebSocket drop on demand")
            said = f"dropped {n} WebSocket connection(s)"
        elif name == "ws_drop_every":
            faults.ws_drop_every_s = float(number)
            self._next_drop = self._draw_drop(time.monotonic())
            said = f"dropping every WebSocket every {number:g} s (0: never)"
        elif name == "ws_drop_random":
            faults.ws_drop_rate_per_hour = float(number)
            said = f"random WebSocket drops at {number:g} per connection-hour"
        elif name == "freeze":
            seconds = float(number or 10)
            faults.frozen_until = time.monotonic() + seconds
            said = f"market feeds frozen for {seconds:g} s (the market goes on)"
        elif name == "malformed":
            faults.malformed_left = int(number or 1)
            said = f"the next {faults.malformed_left} pushed frame(s) are malformed"
        elif name == "cancel_all":
            seconds = float(spec.get("seconds", 0))
            n = self.exchange.cancel_everything()
            self.exchange.alo_only_until_ms = self.exchange.now_ms() + int(seconds * 1000)
            self.publish()
            said = f"network upgrade: cancelled {n} open order(s)" + (
                f", post-only only for {seconds:g} s" if seconds else ""
            )
        else:
            raise ValueError(f"unknown fault {name!r}; names: " + ", ".join(FAULTS))
        faults.log.append(said)
        self.log(f"fault: {said}")
        return said

    def drop_websockets(self, why: str) -> int:
        clients = list(self.clients)
        for client in clients:
            self._close(client, 1012)
        if clients:
            self.log(f"fault: {why}: {len(clients)} connection(s)")
        return len(clients)

    # ---- the WebSocket ---------------------------------------------------------------------

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        ip = ws.client.host if ws.client else "?"
        client = _Client(ws, ip)
        self.clients.add(client)
        writer = asyncio.create_task(self._writer(client))
        client.push(GREETING)
        try:
            await self._reader(client)
        except WebSocketDisconnect:
            pass
        except Exception as exc:  # one connection's trouble is its own: log it, close it
            self.log_once(
                ip,
                f"ws-{type(exc).__name__}",
                f"closed a WebSocket on an error: {type(exc).__name__}: {exc}",
            )
        finally:
            client.closed = True
            self.clients.discard(client)
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)
            # what was queued before the end (an error frame, say) goes out first, then the close
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(writer, WRITER_GRACE_S)

    async def _writer(self, client: _Client) -> None:
        ws = client.ws
        with contextlib.suppress(Exception):
            while True:
                text = await client.queue.get()
                if text is None:
                    if client.close_code is not None:
                        await ws.close(client.close_code)
                    return
                await ws.send_text(text)
                client.last_out = time.monotonic()

    async def _reader(self, client: _Client) -> None:
        ws = client.ws
        idle = self.settings.ws_idle_s
        per_min = self.settings.ws_msgs_per_min
        while not client.closed:
            try:
                message = await asyncio.wait_for(ws.receive(), timeout=idle)
            except TimeoutError:
                self.log_once(client.ip, "idle", f"closed a WebSocket silent for {idle:g} s")
                self._close(client, 1000)
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                text = data.decode("utf-8", "replace")
            now = time.monotonic()
            stamps = client.sent_stamps
            stamps.append(now)
            if len(stamps) > per_min:
                del stamps[: len(stamps) - per_min - 1]
                if now - stamps[0] < 60.0:
                    self._error(client, f"Cannot send more than {per_min} messages per minute.")
                    self.log_once(client.ip, "flood", "closed a WebSocket that flooded")
                    self._close(client, 1008)
                    return
            self._on_message(client, text)

    def _close(self, client: _Client, code: int) -> None:
        if client.closed:
            return
        client.closed = True
        self.clients.discard(client)
        client.close_code = code
        try:
            client.queue.put_nowait(None)  # the writer sends what is queued, then closes
            return
        except asyncio.QueueFull:
            pass  # it stopped reading: close now, dropping what it never read

        async def close() -> None:
            with contextlib.suppress(Exception):
                await client.ws.close(code)

        asyncio.get_running_loop().create_task(close())

    def _send(self, client: _Client, payload: Any) -> None:
        if not client.push(_JSON.encode(payload).decode()):
            self.log_once(client.ip, "slow", "dropped a WebSocket client that stopped reading")
            self._close(client, 1008)

    def _error(self, client: _Client, text: str) -> None:
        self._send(client, {"channel": "error", "data": text})

    def _on_message(self, client: _Client, text: str) -> None:
        try:
            msg = _DECODE.decode(text)
        except (msgspec.DecodeError, RecursionError):
            self.log_once(client.ip, "ws-json", "a WebSocket sent text that is not JSON")
            self._error(client, f"Error parsing JSON into valid websocket request: {text[:100]}")
            return
        method = msg.get("method") if isinstance(msg, dict) else None
        if method == "ping":
            self._send(client, {"channel": "pong"})
        elif method in ("subscribe", "unsubscribe"):
            self._subscription(client, method, msg.get("subscription"))
        elif method == "post":
            self._post(client, msg)
        else:
            self.log_once(client.ip, "ws-method", "a WebSocket sent an unknown method")
            self._error(client, f"Error parsing JSON into valid websocket request: {text[:100]}")

    def _subscription(self, client: _Client, method: str, sub: Any) -> None:
        if not isinstance(sub, dict) or sub.get("type") not in _SUBSCRIPTIONS:
            self._error(client, f"Invalid subscription {json.dumps(sub)[:200]}")
            return
        kind = sub["type"]
        if kind in ("l2Book", "bbo", "trades") and sub.get("coin") != COIN:
            self._error(client, f"Invalid subscription {json.dumps(sub)[:200]}")
            return
        user = sub.get("user")
        if kind in _USER_SUBSCRIPTIONS and not isinstance(user, str):
            self._error(client, f"Invalid subscription {json.dumps(sub)[:200]}")
            return
        key = json.dumps(sub, sort_keys=True)
        if method == "subscribe":
            if key in client.subs:
                self._error(client, f"Already subscribed: {json.dumps(sub)}")
                return
            if isinstance(user, str) and user.lower() not in client.users:
                if len(client.users) >= _MAX_USERS:
                    self._error(client, "Cannot track more than 10 total users.")
                    return
                client.users.add(user.lower())
            client.subs[key] = sub
        elif client.subs.pop(key, None) is None:
            self._error(client, f"Already unsubscribed: {json.dumps(sub)}")
            return
        ack = {"channel": "subscriptionResponse", "data": {"method": method, "subscription": sub}}
        self._send(client, ack)
        if method == "subscribe":
            self._snapshot(client, kind, sub)

    def _snapshot(self, client: _Client, kind: str, sub: dict[str, Any]) -> None:
        ex = self.exchange
        if kind == "l2Book":
            self._send(client, {"channel": "l2Book", "data": ex.l2_book()})
        elif kind == "bbo":
            self._send(client, {"channel": "bbo", "data": ex.bbo()})
        elif kind == "allMids":
            self._send(client, {"channel": "allMids", "data": {"mids": ex.all_mids()}})
        elif kind == "userFills":
            user = sub["user"].lower()
            ledger = ex.ledgers.get(user)
            fills = [] if ledger is None else list(ledger.fills)[-2000:]
            data = {"isSnapshot": True, "user": user, "fills": fills}
            self._send(client, {"channel": "userFills", "data": data})

    def _post(self, client: _Client, msg: dict[str, Any]) -> None:
        ident = msg.get("id")
        request = msg.get("request")
        if isinstance(ident, bool) or not isinstance(ident, int) or not isinstance(request, dict):
            self._error(client, "post requests need an integer id and a request object")
            return
        kind = request.get("type")
        payload = request.get("payload")
        response: dict[str, Any]
        weight = 2 if kind == "info" else _action_weight(payload)
        if not self._charge_ip(client.ip, weight):
            response = {"type": "error", "payload": "Too many requests"}
        elif kind == "info":
            reply = self.answer_info(payload, client.ip)
            if isinstance(reply, str):
                response = {"type": "error", "payload": reply}
            else:
                info_type = payload.get("type") if isinstance(payload, dict) else None
                response = {"type": "info", "payload": {"type": info_type, "data": reply}}
        elif kind == "action":
            reply = self.answer_action(payload, client.ip)
            if isinstance(reply, str):
                response = {"type": "error", "payload": reply}
            else:
                response = {"type": "action", "payload": reply}
        else:
            response = {"type": "error", "payload": f"unknown post request type {kind!r}"}
        self._send(client, {"channel": "post", "data": {"id": ident, "response": response}})

    # ---- publishing ------------------------------------------------------------------------

    def _frozen(self) -> bool:
        return time.monotonic() < self.faults.frozen_until

    def _broadcast(self, kind: str, user: str | None, payload: Any) -> None:
        targets = [c for c in self.clients if c.wants(kind, user)]
        if not targets:
            return
        text = _JSON.encode(payload).decode()
        for client in targets:
            if self.faults.malformed_left > 0:
                self.faults.malformed_left -= 1
                bad = text[: max(1, len(text) // 2)]
                if not client.push(bad):
                    self._close(client, 1008)
                continue
            if not client.push(text):
                self.log_once(client.ip, "slow", "dropped a WebSocket client that stopped reading")
                self._close(client, 1008)

    def publish(self) -> None:
        """Fan out what the exchange queued: trades, order updates, fills, user events."""
        bus = self.exchange.bus
        if not bus:
            return
        items = bus.copy()
        bus.clear()
        if not self.clients:
            return
        trades: list[Any] = []
        updates: dict[str, list[Any]] = {}
        fills: dict[str, list[Any]] = {}
        for channel, user, data in items:
            if channel == "trades":
                trades.extend(data)
            elif channel == "orderUpdates" and user is not None:
                updates.setdefault(user, []).append(data)
            elif channel == "userFills" and user is not None:
                fills.setdefault(user, []).append(data)
            elif channel == "user" and user is not None:
                self._broadcast("userEvents", user, {"channel": "user", "data": data})
        if trades and not self._frozen():
            self._broadcast("trades", None, {"channel": "trades", "data": trades})
        for user, batch in updates.items():
            self._broadcast("orderUpdates", user, {"channel": "orderUpdates", "data": batch})
        for user, batch in fills.items():
            data = {"user": user, "fills": batch}
            self._broadcast("userFills", user, {"channel": "userFills", "data": data})
            self._broadcast("userEvents", user, {"channel": "user", "data": {"fills": batch}})

    def _push_book(self) -> None:
        if self._frozen() or not self.clients:
            return
        ex = self.exchange
        if ex.book_changed:
            ex.book_changed = False
            self._broadcast("l2Book", None, {"channel": "l2Book", "data": ex.l2_book()})
            self._broadcast(
                "allMids", None, {"channel": "allMids", "data": {"mids": ex.all_mids()}}
            )
        bbo = ex.bbo()
        if bbo["bbo"] != self._last_bbo:
            self._last_bbo = bbo["bbo"]
            self._broadcast("bbo", None, {"channel": "bbo", "data": bbo})

    # ---- running -------------------------------------------------------------------------

    async def serve(self, started: Callable[[str, int], None] | None = None) -> None:
        """Serve until cancelled (or SIGINT/SIGTERM when run by uvicorn in the main thread)."""
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            ws="websockets-sansio",
            lifespan="off",
            ws_ping_interval=None,
            ws_max_size=self.settings.max_body_bytes,
            access_log=False,
        )
        server = self._uvicorn = _Server(config)
        # bound here, not by uvicorn, so a port in use is an OSError the caller can word
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
        # they are TCP, and uvicorn writes headers and body apart: with Nagle on, a reply can
        # wait ~40 ms for the client's delayed ACK
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.settings.host, self.settings.port))
        except OSError:
            sock.close()
            raise
        pacer = asyncio.create_task(self.pace())
        try:
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                if serving.done():
                    await serving
                    raise OSError(f"could not listen on {self.settings.host}:{self.settings.port}")
                await asyncio.sleep(0.01)
            port = sock.getsockname()[1]
            if started is not None:
                started(self.settings.host, port)
            await serving
        finally:
            pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pacer
            self.save()


class _Server(uvicorn.Server):
    """uvicorn's server, except that a stop by SIGINT/SIGTERM returns normally (uvicorn would
    raise the signal again once shut down, killing the process before the state is saved)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second ctrl+c: stop waiting for connections to close
        else:
            self.should_exit = True


FAULTS = (
    "latency",
    "http429",
    "http5xx",
    "ws_drop",
    "ws_drop_every",
    "ws_drop_random",
    "freeze",
    "malformed",
    "cancel_all",
)


def _action_weight(body: Any) -> int:
    """Hyperliquid's IP weight of an /exchange request: 1 + floor(batch length / 40)."""
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, dict):
        return 1
    items = action.get("orders") or action.get("cancels") or action.get("modifies")
    return 1 + len(items) // 40 if isinstance(items, list) else 1


def _ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class ServerThread:
    """The local exchange on a free loopback port, in a thread: for tests and benchmarks."""

    def __init__(self, settings: ExchangeSettings | None = None, **overrides: Any) -> None:
        base = settings or ExchangeSettings()
        self.settings = base.model_copy(update={"port": 0, **overrides})
        self.lines: list[str] = []
        self.server = LocalExchange(self.settings, log=self.lines.append)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="local-exchange", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _started(self, host: str, port: int) -> None:
        self.port = port
        self._ready.set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self.server.serve(self._started))
        try:
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._task)
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the local exchange did not start within 10 s")
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop (its state is not thread-safe) and return its result."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self.server.stop)
        self._thread.join(10)
        if self._thread.is_alive() and self._task is not None:  # a connection would not close
            self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(10)


def state_dir_ready(path: str) -> Path:
    """Create the state dir private to the user (0700)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory
