"""Benchmark: the local exchange (`engine.exchange.app.LocalExchange`) under market-maker load.

Run `python bench/exchange.py [--clients N] [--seconds S] [--subscribers M] [--quick] [--sweep]
[--profile] [--uvloop]`. The server runs alone in a child process (its own GIL) on a free
loopback port, each client a funded account of its own. The load runs in this process on one
asyncio loop: each client refreshes two quotes every 100 ms as two signed requests 50 ms apart,
an `order` action with two ALO orders (bid and ask, 1% off the mid, a cloid each), then a
`cancelByCloid` of the pair placed 100 ms before. So N clients offer 20 x N signed actions a
second (the default 100 clients: 2,000/s, the issue's target), and M WebSocket clients
subscribe to l2Book.

Every request is signed before the timed phase (the bench's own coincurve signer, checked
against the SDK's `sign_l1_action`), so client signing does not limit the measurement. The HTTP
client is a few lines of HTTP/1.1 keep-alive over asyncio streams: httpx took some 20 times
the client CPU a request, and the client shares the machine's cores with the server. Pacing is
open-loop: requests go at their scheduled times over up to 4 connections a client, and latency
is measured from the scheduled time, so a server that falls behind shows it instead of slowing
the load down. After 1 s of warm-up, S seconds are measured; requests still unanswered 5 s after
the last one count as timeouts. An answer counts as an error unless every order rests and every
cancel succeeds.

Prints the offered and served rates, latency percentiles (from the scheduled send, and the
server's share: from the write to the answer), p99 second by second, errors, l2Book frames
received, the CPU of server, client and the rest of the machine (a run that shared the cores
with other work is flagged: its figures understate the server), and a line against the target
(2,000 actions/s, p99 under 20 ms). `--sweep` steps from 25 to 200 clients, a fresh server each
step, and reports the largest load served in full with p99 under 20 ms. `--profile` runs
cProfile (CPU time) inside the server over the measured window and prints its top functions;
cProfile slows the server several times over, so read the shares, not the rates. `--uvloop`
runs the server's loop on uvloop when installed (uvicorn uses httptools by itself when that is
installed; the first line says which). Linux only (CPU from /proc). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.util
import io
import math
import multiprocessing
import os
import pstats
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack
import msgspec
import websockets
from coincurve import PrivateKey
from Crypto.Hash import keccak as _keccak_mod
from eth_account import Account
from hyperliquid.utils.signing import sign_l1_action

TARGET_RATE = 2_000
TARGET_P99_MS = 20.0
REFRESH_S = 0.100
WARMUP_S = 1.0
DRAIN_S = 5.0
MAX_INFLIGHT = 4
QUOTE_OFFSET = 0.01  # quotes 1% off the mid: ALO, never near the touch
SIZE = "0.0002"  # $20 at $100k: above the $10 minimum
SWEEP = (25, 50, 100, 115, 130, 150, 200)
BUSY_CORES = 0.15  # other processes' CPU past which a run is flagged
PROFILE_PATH = Path(tempfile.gettempdir()) / "perpdesk-bench-exchange.prof"
_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder()
_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


# ---- signing (the phantom agent of Hyperliquid's L1 actions, testnet source "b") ------------


def _keccak(data: bytes) -> bytes:
    return _keccak_mod.new(data=data, digest_bits=256).digest()


_DOMAIN_SEPARATOR = _keccak(
    _keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    + _keccak(b"Exchange")
    + _keccak(b"1")
    + (1337).to_bytes(32, "big")
    + bytes(32)
)
_AGENT_PREFIX = _keccak(b"Agent(string source,bytes32 connectionId)") + _keccak(b"b")


def sign(key: PrivateKey, action: dict[str, Any], nonce: int) -> dict[str, Any]:
    """The SDK's `sign_l1_action(wallet, action, None, nonce, None, False)`, about 20x faster:
    the action's keys are already in canonical order, so msgpack it as it is."""
    connection_id = _keccak(msgpack.packb(action) + nonce.to_bytes(8, "big") + b"\x00")
    digest = _keccak(b"\x19\x01" + _DOMAIN_SEPARATOR + _keccak(_AGENT_PREFIX + connection_id))
    sig = key.sign_recoverable(digest, hasher=None)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
    return {"r": hex(r), "s": hex(s), "v": 27 + sig[64]}


def order_action(client: int, pair: int, bid: int, ask: int) -> dict[str, Any]:
    def wire(is_buy: bool, px: int) -> dict[str, Any]:
        cloid = f"0x{client:08x}{2 * pair + (0 if is_buy else 1):024x}"
        return {"a": 0, "b": is_buy, "p": str(px), "s": SIZE, "r": False,
                "t": {"limit": {"tif": "Alo"}}, "c": cloid}  # fmt: skip

    return {"type": "order", "orders": [wire(True, bid), wire(False, ask)], "grouping": "na"}


def cancel_action(client: int, pair: int) -> dict[str, Any]:
    cloids = [f"0x{client:08x}{2 * pair + side:024x}" for side in (0, 1)]
    return {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": c} for c in cloids]}


@dataclass
class Client:
    """One market maker: its key, and its requests in the order they go out (None: a slot with
    nothing to send, the cancel before the first pair)."""

    index: int
    key: PrivateKey
    address: str
    requests: list[tuple[str, bytes] | None] = field(default_factory=list)


def make_clients(n: int) -> list[Client]:
    clients = []
    for i in range(n):
        account = Account.create()
        key = PrivateKey(bytes(account.key))
        clients.append(Client(i, key, account.address.lower()))
    return clients


def presign(clients: list[Client], refreshes: int, mid: float, port: int) -> float:
    """Sign every client's requests ahead; the seconds it took."""
    t0 = time.perf_counter()
    head = (
        f"POST /exchange HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n"
    )
    for client in clients:
        nonce = time.time_ns() // 1_000_000
        out: list[tuple[str, bytes] | None] = []
        for k in range(refreshes):
            jitter = (client.index * 7 + k) % 50  # a new price every refresh
            bid = math.floor(mid * (1 - QUOTE_OFFSET)) - jitter
            ask = math.ceil(mid * (1 + QUOTE_OFFSET)) + jitter
            for kind, action in (
                ("order", order_action(client.index, k, bid, ask)),
                ("cancel", cancel_action(client.index, k - 1) if k else None),
            ):
                if action is None:
                    out.append(None)
                    continue
                nonce += 1
                body = _ENCODE.encode({
                    "action": action, "nonce": nonce, "signature": sign(client.key, action, nonce),
                    "vaultAddress": None, "expiresAfter": None,
                })  # fmt: skip
                out.append((kind, head.format(len(body)).encode() + body))
        client.requests = out
    return time.perf_counter() - t0


def check_signer() -> None:
    """Our signatures must be the SDK's, byte for byte."""
    account = Account.create()
    key = PrivateKey(bytes(account.key))
    for action in (order_action(3, 5, 99_000, 101_000), cancel_action(3, 4)):
        nonce = time.time_ns() // 1_000_000
        want = sign_l1_action(account, action, None, nonce, None, False)
        got = sign(key, action, nonce)
        assert got == want, (got, want)


# ---- the server process -----------------------------------------------------------------------


def _serve(conn: Connection, addresses: list[str], profile: bool, use_uvloop: bool) -> None:
    """Child process: run the exchange; sends (port, what serves HTTP) once listening, then
    takes "start"/"end" (the measured window: the profiler runs in it) and "stop" (answers
    the request count and the profile, and exits)."""
    from engine.config import ExchangeSettings
    from engine.exchange.app import LocalExchange

    settings = ExchangeSettings(
        port=0,
        fund=dict.fromkeys(addresses, 1e6),
        ip_weight_per_min=10**9,
        status_every_s=1e9,
    )
    server = LocalExchange(settings, log=lambda line: None)
    # CPU time, not wall time: other processes on the machine do not inflate it.
    profiler = cProfile.Profile(time.process_time) if profile else None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # uvicorn's "auto" HTTP implementation: httptools when importable, else h11.
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
        what = f"uvicorn on {http}, {type(loop).__module__.split('.')[0]} event loop"
        serving = asyncio.create_task(server.serve(lambda host, port: conn.send((port, what))))
        done = loop.create_future()

        def on_message() -> None:
            try:
                said = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                loop.remove_reader(conn.fileno())
                if not done.done():
                    done.set_result(None)
                return
            if said == "start" and profiler is not None:
                profiler.enable()
            elif said == "end" and profiler is not None:
                profiler.disable()
            elif said == "stop":
                text = ""
                if profiler is not None:
                    profiler.dump_stats(PROFILE_PATH)
                    out = io.StringIO()
                    stats = pstats.Stats(profiler, stream=out).strip_dirs()
                    stats.sort_stats("cumulative").print_stats(25)
                    stats.sort_stats("tottime").print_stats(20)
                    text = out.getvalue()
                conn.send({"requests": server.requests, "profile": text})
                if not done.done():
                    done.set_result(None)

        loop.add_reader(conn.fileno(), on_message)
        await asyncio.wait({serving, done}, return_when=asyncio.FIRST_COMPLETED)
        with contextlib.suppress(OSError, ValueError):
            loop.remove_reader(conn.fileno())
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, all cores (Linux /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = sum(ticks[:3]) + ticks[5] + ticks[6]  # user nice system (idle iowait) irq softirq
    return busy / hz, ticks[7] / hz


# ---- the load ---------------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    scheduled: float
    sent: float = 0.0
    done: float = 0.0
    outcome: str = "timeout"  # ok, err, order-error, http-NNN, conn-error, timeout
    detail: str = ""


class Pool:
    """A client's keep-alive connections: at most `limit` requests in flight."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def connect(self) -> None:
        self.idle.append(await asyncio.open_connection("127.0.0.1", self.port))

    async def request(self, raw: bytes, result: Result) -> None:
        async with self.slots:
            conn = self.idle.pop() if self.idle else None
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", self.port)
                reader, writer = conn
                result.sent = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                if length is None:
                    raise ConnectionError("no content-length")
                body = await reader.readexactly(int(length.group(1)))
                result.done = time.perf_counter()
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                result.outcome = "conn-error"
                if conn is not None:
                    conn[1].close()
                return
            except asyncio.CancelledError:  # still unanswered at the deadline: a timeout
                if conn is not None:
                    conn[1].close()
                raise
            self.idle.append(conn)
        status = int(head[9:12])
        if status == 200:
            result.outcome, result.detail = judge(result.kind, body)
        else:
            result.outcome, result.detail = f"http-{status}", body[:200].decode(errors="replace")


def judge(kind: str, body: bytes) -> tuple[str, str]:
    """(outcome, what was wrong) of an HTTP 200 answer: every order resting, every cancel a
    success, or else what the server said."""
    try:
        reply = _DECODE.decode(body)
        if not isinstance(reply, dict) or reply.get("status") != "ok":
            return "err", str(reply.get("response") if isinstance(reply, dict) else reply)
        statuses = reply["response"]["data"]["statuses"]
    except (msgspec.DecodeError, KeyError, TypeError):
        return "err", body[:200].decode(errors="replace")
    want = (
        (lambda s: isinstance(s, dict) and "resting" in s)
        if kind == "order"
        else (lambda s: s == "success")
    )
    bad = [s for s in statuses if not want(s)]
    return ("order-error", f"{kind}: {bad[0]}") if bad else ("ok", "")


async def run_client(
    client: Client, pool: Pool, t0: float, phase: float, deadline: float, results: list[Result]
) -> None:
    tasks = set()
    slot_s = REFRESH_S / 2
    for j, request in enumerate(client.requests):
        at = t0 + phase + j * slot_s
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if request is None:
            continue
        result = Result(request[0], at)
        results.append(result)
        task = asyncio.create_task(pool.request(request[1], result))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def subscriber(port: int, start: float, end: float, counts: list[int]) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        await ws.recv()  # the greeting
        sub = {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}
        await ws.send(_ENCODE.encode(sub).decode())
        async for message in ws:
            now = time.perf_counter()
            if now >= end:
                return
            if start <= now and '"channel":"l2Book"' in str(message):
                counts[0] += 1


async def load(
    clients: list[Client],
    port: int,
    seconds: float,
    subscribers: int,
    at_start: Callable[[], None],
    at_end: Callable[[], None],
) -> tuple[list[Result], int, float, float]:
    """Run the clients, calling `at_start` and `at_end` at the measured window's edges;
    (results, l2Book frames received in the window, window start, window end)."""
    pools = [Pool(port, MAX_INFLIGHT) for _ in clients]
    await asyncio.gather(*(p.connect() for p in pools))
    t0 = time.perf_counter() + 0.5
    start, end = t0 + WARMUP_S, t0 + WARMUP_S + seconds
    counts = [0]

    async def edges() -> None:
        await asyncio.sleep(start - time.perf_counter())
        at_start()
        await asyncio.sleep(end - time.perf_counter())
        at_end()

    marks = asyncio.create_task(edges())
    subs = [asyncio.create_task(subscriber(port, start, end, counts)) for _ in range(subscribers)]
    results: list[Result] = []
    n = len(clients)
    deadline = end + REFRESH_S + DRAIN_S
    runs = [
        run_client(c, pools[i], t0, (i / n) * REFRESH_S / 2, deadline, results)
        for i, c in enumerate(clients)
    ]
    await asyncio.gather(*runs)
    await marks
    for task in subs:
        task.cancel()
    await asyncio.gather(*subs, return_exceptions=True)
    for pool in pools:
        for _, writer in pool.idle:
            writer.close()
    return results, counts[0], start, end


# ---- one run ----------------------------------------------------------------------------------


@dataclass
class Figures:
    clients: int
    offered: float
    served: float
    p50: float
    p90: float
    p99: float
    max: float
    errors: dict[str, int]
    error_samples: list[str]
    book_msgs: float
    service_p50: float
    service_p99: float
    p99_by_second: list[float]
    server_cpu: float
    client_cpu: float
    other_cpu: float
    steal: float
    serving: str
    profile: str


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(
    n: int, seconds: float, subscribers: int, profile: bool, use_uvloop: bool, verbose: bool
) -> Figures:
    clients = make_clients(n)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    addresses = [c.address for c in clients]
    proc = ctx.Process(target=_serve, args=(child, addresses, profile, use_uvloop))
    proc.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the exchange did not start within 30 s")
        port, serving = parent.recv()
        mid = book_mid(port)
        refreshes = math.ceil((WARMUP_S + seconds) / REFRESH_S)
        took = presign(clients, refreshes, mid, port)
        if verbose:
            total = sum(r is not None for c in clients for r in c.requests)
            print(f"server pid {proc.pid} on 127.0.0.1:{port} ({serving}), mid {mid:,.0f}; "
                  f"pre-signed {total:,} requests in {took:.1f} s")  # fmt: skip

        window: dict[str, float] = {}

        def sample(edge: str) -> None:
            window["server" + edge] = cpu_seconds(proc.pid)
            window["client" + edge] = time.process_time()
            window["busy" + edge], window["steal" + edge] = machine_cpu()

        def at_start() -> None:
            parent.send("start")
            sample("0")

        def at_end() -> None:
            sample("1")
            parent.send("end")

        results, frames, start, end = asyncio.run(
            load(clients, port, seconds, subscribers, at_start, at_end)
        )
        kinds = ("server", "client", "busy", "steal")
        cpu = {k: (window[k + "1"] - window[k + "0"]) / seconds for k in kinds}
        parent.send("stop")
        report = parent.recv() if parent.poll(30) else {"profile": ""}
    finally:
        parent.close()
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)

    measured = [r for r in results if start <= r.scheduled < end]
    errors: dict[str, int] = {}
    samples: list[str] = []
    for r in measured:
        if r.outcome != "ok":
            errors[r.outcome] = errors.get(r.outcome, 0) + 1
            said = f"{r.outcome}: {r.detail}" if r.detail else r.outcome
            if said not in samples and len(samples) < 3:
                samples.append(said)
    answered_list = [r for r in measured if r.done]
    answered = sorted((r.done - r.scheduled) * 1e3 for r in answered_list)
    service = sorted((r.done - r.sent) * 1e3 for r in answered_list)
    by_second: list[list[float]] = [[] for _ in range(math.ceil(seconds))]
    for r in answered_list:
        by_second[int(r.scheduled - start)].append((r.done - r.scheduled) * 1e3)
    served = sum(1 for r in results if r.done and start <= r.done < end)
    return Figures(
        clients=n,
        offered=len(measured) / seconds,
        served=served / seconds,
        p50=percentile(answered, 0.50),
        p90=percentile(answered, 0.90),
        p99=percentile(answered, 0.99),
        max=answered[-1] if answered else float("nan"),
        errors=errors,
        error_samples=samples,
        book_msgs=frames / seconds,
        service_p50=percentile(service, 0.50),
        service_p99=percentile(service, 0.99),
        p99_by_second=[percentile(sorted(v), 0.99) for v in by_second],
        server_cpu=cpu["server"],
        client_cpu=cpu["client"],
        other_cpu=max(0.0, cpu["busy"] - cpu["server"] - cpu["client"]),
        steal=cpu["steal"],
        serving=serving,
        profile=report.get("profile", ""),
    )


def book_mid(port: int) -> float:
    """The mid from an /info l2Book (also warms the server's first request)."""

    async def ask() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"type":"l2Book","coin":"BTC"}'
        writer.write(
            b"POST /info HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        raw = await reader.read()
        writer.close()
        book = _DECODE.decode(raw.split(b"\r\n\r\n", 1)[1])
        bids, asks = book["levels"]
        return (float(bids[0]["px"]) + float(asks[0]["px"])) / 2

    return asyncio.run(ask())


# ---- reporting --------------------------------------------------------------------------------


def report(f: Figures, seconds: float, subscribers: int) -> None:
    errors = sum(f.errors.values())
    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(f.errors.items())) or "none"
    print(f"{f.clients} clients x 2 quotes every {REFRESH_S * 1e3:.0f} ms "
          f"(one order + one cancelByCloid request each 100 ms), {subscribers} l2Book "
          f"subscribers, {seconds:g} s measured after {WARMUP_S:g} s warm-up")  # fmt: skip
    print(f"  offered:  {f.offered:8,.0f} signed actions/s")
    print(f"  served:   {f.served:8,.0f} answers/s")
    print(f"  latency from the scheduled send, ms: p50 {f.p50:.1f}  p90 {f.p90:.1f}  "
          f"p99 {f.p99:.1f}  max {f.max:.1f}")  # fmt: skip
    print(f"  of which the server's (write to answer): p50 {f.service_p50:.1f}  "
          f"p99 {f.service_p99:.1f}")  # fmt: skip
    print("  p99 by second, ms: " + " ".join(f"{v:.0f}" for v in f.p99_by_second))
    print(f"  errors:   {errors:,} of {f.offered * seconds:,.0f} ({detail})")
    for said in f.error_samples:
        print(f"    e.g. {said[:150]}")
    print(f"  l2Book:   {f.book_msgs:.1f} frames/s received over {subscribers} subscribers")
    print(f"  CPU, in cores: server process {f.server_cpu:.2f}, client process "
          f"{f.client_cpu:.2f}, the rest of the machine {f.other_cpu:.2f}, stolen by the "
          f"host {f.steal:.2f}; {os.cpu_count()} cores in all")  # fmt: skip
    if f.other_cpu > BUSY_CORES:
        print(f"  WARNING: other processes used {f.other_cpu:.2f} cores during the window: "
              "these figures understate the server; run again on a quiet machine")  # fmt: skip
    ok = f.served >= 0.98 * f.offered and f.p99 < TARGET_P99_MS and not errors
    print(f"{TARGET_RATE:,} actions/s target: achieved {f.served:,.0f}/s "
          f"({f.served / TARGET_RATE:.2f}x), p99 {f.p99:.1f} ms (target {TARGET_P99_MS:g} ms)"
          f"{'' if ok else '  -- this load is NOT sustained'}")  # fmt: skip
    if f.profile:
        print("\nserver profile over the measured window, in CPU seconds (cProfile slows the "
              "server down: read the shares, not the rates)")  # fmt: skip
        print(f"raw stats (pstats): {PROFILE_PATH}")
        print(f.profile)


def sweep(seconds: float, subscribers: int, use_uvloop: bool) -> None:
    print(f"sweep: {seconds:g} s measured a step, {subscribers} l2Book subscribers, "
          f"a fresh server each step")  # fmt: skip
    print(f"{'clients':>7} {'offered/s':>9} {'served/s':>9} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7} {'errors':>6} {'server':>6} {'client':>6} "
          f"{'others':>6}  (CPU in cores)")  # fmt: skip
    best = None
    busy = False
    for n in SWEEP:
        f = run(n, seconds, subscribers, False, use_uvloop, verbose=False)
        errors = sum(f.errors.values())
        flag = " busy machine!" if f.other_cpu > BUSY_CORES else ""
        busy = busy or bool(flag)
        print(f"{n:7d} {f.offered:9,.0f} {f.served:9,.0f} {f.p50:7.1f} {f.p90:7.1f} "
              f"{f.p99:7.1f} {f.max:7.1f} {errors:6,d} {f.server_cpu:6.2f} "
              f"{f.client_cpu:6.2f} {f.other_cpu:6.2f}{flag}")  # fmt: skip
        if f.served >= 0.98 * f.offered and f.p99 < TARGET_P99_MS and not errors:
            best = f
        if f.served < 0.9 * f.offered:
            print(f"(stopping: past capacity; the server: {f.serving})")
            break
    else:
        print(f"(the server: {f.serving})")
    if busy:
        print(f"WARNING: other processes used over {BUSY_CORES:g} cores in a step flagged busy")
    if best is None:
        print(f"no step was served in full with p99 under {TARGET_P99_MS:g} ms")
    else:
        print(f"largest load served in full with p99 under {TARGET_P99_MS:g} ms: "
              f"{best.clients} clients, {best.served:,.0f} actions/s "
              f"({best.served / TARGET_RATE:.2f}x the {TARGET_RATE:,}/s target)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=100, help="market makers, 20 actions/s each")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--subscribers", type=int, default=5, help="l2Book WebSocket clients")
    parser.add_argument("--quick", action="store_true", help="a 3-second run")
    parser.add_argument("--sweep", action="store_true", help="25 to 200 clients, 5 s a step")
    parser.add_argument("--profile", action="store_true", help="cProfile the server")
    parser.add_argument(
        "--uvloop", action="store_true", help="run the server's event loop on uvloop (if installed)"
    )
    args = parser.parse_args()
    if args.uvloop and importlib.util.find_spec("uvloop") is None:
        parser.error("--uvloop: uvloop is not installed")
    seconds = 3.0 if args.quick else args.seconds
    check_signer()
    if args.sweep:
        sweep(3.0 if args.quick else min(seconds, 5.0), args.subscribers, args.uvloop)
        return
    f = run(args.clients, seconds, args.subscribers, args.profile, args.uvloop, verbose=True)
    report(f, seconds, args.subscribers)


if __name__ == "__main__":
    main()
