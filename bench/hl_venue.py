"""Benchmark: the Hyperliquid venue's hot path, an l2Book frame to the quote action on the socket.

Run `python bench/hl_venue.py [--seconds S] [--quick] [--refresh S] [--timer S] [--profile]
[--no-pin]`. The local exchange (`engine.exchange.app.LocalExchange`, l2Book pushed every
100 ms) runs alone in a child process on a free loopback port, so its work shares neither the
client's GIL nor, by default, its CPU: with two CPUs or more the server is pinned to the last
one and this process to the others (`--no-pin` leaves both to the scheduler, which then often
runs the woken server on the client's CPU in the middle of its send). This process runs what
the console runs: `LiveEngine(settings, venue=HyperliquidVenue(...))` on one asyncio loop, with
a fresh funded key, quoting 20 bps wide (few fills: the quotes just requote).

`strategy.refresh_interval_s` is 0.09 s, just under the push interval, so nearly every book
frame finds a refresh due and the core requotes on it: on Hyperliquid one batchModify swaps
both quotes for their successors (on a venue that cannot, it cancels both and places each side
again when its cancel is answered). The engine's timer (`LiveEngine(timer_interval_s=)`,
100 ms in the shells) ticks every 1 s here (`--timer`): at 100 ms a tick takes the refresh and
keeps it (the refresh then falls due 90 ms after a tick, which comes before the next frame), so
few frames would be left to measure. A frame's path is the same either way. The rate budgets
(the core's and the server's) are raised so that no requote is held back.

Nothing in engine/ is changed: the bench wraps, on the instances, the venue's reader
(`_on_frame`), the core's `on_event` (which book events led to actions), `_post_action`, its
signer and `http.post` (build and signing time), and the httpx connection pool's network stream
down to the asyncio transport (when the request's last byte is handed to the kernel). The
wrappers only read the clock on the hot path (a few us in all). For each l2Book frame whose
BookUpdate made the core act, over S seconds (20; `--quick`: 5) after 3 s of warm-up, it prints:

- frame -> first request of the requote on the socket, p50/p90/p99/max (the target's figure),
  and its stages: reader to core, core, core to sender, nonce + signing + body, httpx;
- frame -> every request of the requote on the socket (the venue's sender posts one request at
  a time and awaits each answer, so later ones carry the earlier ones' round trips);
- frame -> the replacement orders on the socket (after the cancels' answers: server included);
- signing per action (median, by action), request round trips, GC pauses, CPU;
- a line against the target: p99 under 2 ms in-process.

"In-process" starts when the frame enters `HyperliquidVenue._on_frame` (websockets has already
read and decoded it) and ends when the asyncio transport's `write` of the signed request's last
byte returns (the send syscall: the bytes are in the kernel). It excludes loopback, the server,
and the request's round trip. `--profile` runs cProfile (CPU time) in this process over the
measured window and prints its top functions; it slows everything several times over, so read
the shares, not that run's latencies. Linux only (CPU from /proc, affinity). Prints figures
only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import cProfile
import gc
import io
import itertools
import multiprocessing
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eth_account
import httpcore

from engine.config import RiskSettings, Settings, StrategySettings
from engine.events import BookUpdate, CancelOrder, OrderCanceled, PlaceQuote, ReplaceQuote
from engine.live import LiveEngine
from engine.venues.hyperliquid.signing import Signer
from engine.venues.hyperliquid.venue import HyperliquidVenue, cloid_of

TARGET_P99_MS = 2.0
BOOK_PUSH_S = 0.1
REFRESH_S = 0.09
TIMER_S = 1.0
WARMUP_S = 3.0
FUND_USD = 100_000.0
PROFILE_PATH = Path(tempfile.gettempdir()) / "perpdesk-bench-hl-venue.prof"
clock = time.perf_counter_ns


# ---- the server process -----------------------------------------------------------------------


def _serve(conn: Connection, address: str, book_push_s: float, cpus: set[int] | None) -> None:
    """Child process: run the local exchange with `address` funded (on `cpus` if given);
    sends the port once listening, answers its request count to "stop" (or a closed pipe)
    and exits."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    from engine.config import ExchangeSettings
    from engine.exchange.app import LocalExchange

    settings = ExchangeSettings(
        port=0,
        fund={address: FUND_USD},
        book_push_s=book_push_s,
        ip_weight_per_min=10**9,
        status_every_s=1e9,
    )
    server = LocalExchange(settings, log=lambda line: None)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        serving = asyncio.create_task(server.serve(lambda host, port: conn.send(port)))
        done = loop.create_future()

        def on_message() -> None:
            with contextlib.suppress(EOFError, OSError):
                conn.recv()
            loop.remove_reader(conn.fileno())
            if not done.done():
                done.set_result(None)

        loop.add_reader(conn.fileno(), on_message)
        await asyncio.wait({serving, done}, return_when=asyncio.FIRST_COMPLETED)
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send(server.requests)
        server.stop()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(serving, 5)

    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the probes -------------------------------------------------------------------------------


@dataclass(slots=True)
class Post:
    """One signed request: when `_post_action` was called, signing, the httpx call, the first
    socket write and the last byte handed to the kernel, the answer decoded (perf_counter ns)."""

    kind: str
    action: dict[str, Any]
    enter: int
    sign_ns: int = 0
    post: int = 0
    write_in: int = 0
    sent: int = 0
    done: int = 0


@dataclass(slots=True)
class Requote:
    """One l2Book frame the core acted on, and the requests that carried its actions."""

    frame: int
    emitted: int
    core_in: int = 0
    core_out: int = 0
    posts: list[Post] = field(default_factory=list)
    replacements: list[Post] = field(default_factory=list)


_CURRENT: contextvars.ContextVar[Post | None] = contextvars.ContextVar("post", default=None)


class _TimedTransport:
    """The asyncio transport under anyio's socket stream: notes when a request's bytes are
    handed to the kernel (`write` sends at once when nothing is buffered)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, data: bytes) -> None:
        self._inner.write(data)
        post = _CURRENT.get()
        if post is not None and data:
            post.sent = clock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's socket stream, noting the current request's first write and, when the
    asyncio transport cannot be reached, when its last write returned."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self.inner = inner
        socket_stream = getattr(inner, "_stream", None)  # anyio's SocketStream
        transport = getattr(socket_stream, "_transport", None)
        self.hooked = transport is not None and hasattr(transport, "write")
        if self.hooked:
            socket_stream._transport = _TimedTransport(transport)  # type: ignore[union-attr]

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        post = _CURRENT.get()
        if post is None or not buffer:  # h11 writes b"" to end a sized body
            await self.inner.write(buffer, timeout)
            return
        if not post.write_in:
            post.write_in = clock()
        await self.inner.write(buffer, timeout)
        if not self.hooked:
            post.sent = clock()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return await self.inner.start_tls(*args, **kwargs)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.inner.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _TimedSigner:
    """The venue's Signer (slotted, so wrapped rather than patched), timing each signature."""

    def __init__(self, inner: Signer) -> None:
        self.inner = inner
        self.address = inner.address

    def sign_l1(self, action: Any, nonce: int, **kwargs: Any) -> Any:
        t0 = clock()
        signature = self.inner.sign_l1(action, nonce, **kwargs)
        post = _CURRENT.get()
        if post is not None:
            post.sign_ns = clock() - t0
        return signature


def _cloids(action: dict[str, Any]) -> list[str]:
    if action.get("type") == "order":
        return [o["c"] for o in action["orders"] if "c" in o]
    if action.get("type") == "cancelByCloid":
        return [c["cloid"] for c in action["cancels"]]
    if action.get("type") == "batchModify":  # the successors' cloids
        return [m["order"]["c"] for m in action["modifies"] if "c" in m["order"]]
    return []


class Probe:
    """Wraps the venue and the core (instances only) and collects the timings. On the hot path
    the wrappers only read the clock and keep references; which request carried which frame's
    actions is worked out afterwards (`attribute`)."""

    def __init__(self, venue: HyperliquidVenue) -> None:
        self.venue = venue
        self.posts: list[Post] = []
        self.requotes: list[Requote] = []
        self.book_frames: list[int] = []
        self._pending: dict[int, tuple[BookUpdate, Requote]] = {}
        self._roles: dict[str, list[tuple[int, Requote, bool]]] = {}
        """Order id -> the actions on it the core emitted: (when, for which frame's requote,
        is it a replacement placed on a cancel's answer). An id has a placement, then later a
        cancel (maybe for another frame), so each request takes the latest action before it."""
        self._cancel_of: dict[str, Requote] = {}
        pool = venue.http._transport._pool  # type: ignore[attr-defined]
        pool._network_backend = _Backend(pool._network_backend)
        venue.signer = _TimedSigner(venue.signer)  # type: ignore[assignment]
        self._wrap_reader()
        self._wrap_sender()

    def _wrap_reader(self) -> None:
        venue = self.venue
        on_frame, inbox, pending = venue._on_frame, venue._inbox, self._pending

        def timed_on_frame(frame: str | bytes) -> None:
            t0 = clock()
            before = len(inbox)
            on_frame(frame)
            if len(inbox) == before:
                return
            t1 = clock()
            for _, events in itertools.islice(inbox, before, None):
                for event in events:
                    if isinstance(event, BookUpdate):
                        pending[id(event)] = (event, Requote(t0, t1))
                        self.book_frames.append(t0)

        venue._on_frame = timed_on_frame  # type: ignore[method-assign]

    def wrap_core(self, engine: LiveEngine) -> None:
        quoter = engine.quoter
        on_event = quoter.on_event
        pending, roles, cancel_of = self._pending, self._roles, self._cancel_of

        def timed_on_event(event: Any, now_ns: int) -> Any:
            tagged = pending.pop(id(event), None)
            if tagged is None:
                actions = on_event(event, now_ns)
                if isinstance(event, OrderCanceled) and event.order_id in cancel_of:
                    requote = cancel_of.pop(event.order_id)
                    now = clock()
                    for action in actions:
                        if isinstance(action, PlaceQuote):
                            roles.setdefault(action.order_id, []).append((now, requote, True))
                return actions
            requote = tagged[1]
            requote.core_in = clock()
            actions = on_event(event, now_ns)
            requote.core_out = clock()
            if actions:
                self.requotes.append(requote)
                for action in actions:
                    if isinstance(action, ReplaceQuote):
                        action = action.quote
                    order_id = getattr(action, "order_id", None)
                    if order_id is not None:
                        roles.setdefault(order_id, []).append((requote.core_out, requote, False))
                    if isinstance(action, CancelOrder):
                        cancel_of[action.order_id] = requote
            return actions

        quoter.on_event = timed_on_event  # type: ignore[method-assign]

    def _wrap_sender(self) -> None:
        venue = self.venue
        post_action, http_post = venue._post_action, venue.http.post

        async def timed_post_action(action: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            post = Post(str(action.get("type")), action, clock())
            self.posts.append(post)
            token = _CURRENT.set(post)
            try:
                return await post_action(action, *args, **kwargs)
            finally:
                post.done = clock()
                _CURRENT.reset(token)

        async def timed_http_post(*args: Any, **kwargs: Any) -> Any:
            post = _CURRENT.get()
            if post is not None:
                post.post = clock()
            return await http_post(*args, **kwargs)

        venue._post_action = timed_post_action  # type: ignore[method-assign]
        venue.http.post = timed_http_post  # type: ignore[method-assign]

    def attribute(self) -> None:
        """Give each requote the requests that carried its actions (by the orders' cloids)."""
        by_cloid = {cloid_of(order_id): roles for order_id, roles in self._roles.items()}
        for post in self.posts:
            for cloid in _cloids(post.action):
                before = [r for r in by_cloid.get(cloid, ()) if r[0] <= post.enter]
                if not before:
                    continue
                _, requote, is_replacement = before[-1]
                chain = requote.replacements if is_replacement else requote.posts
                if not any(p is post for p in chain):
                    chain.append(post)


class GcWatch:
    """Collections and their pauses while on."""

    def __init__(self) -> None:
        self.on = False
        self.count = 0
        self.pause_ns: list[int] = []
        self._t0 = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = clock()
        elif self.on:
            self.count += 1
            self.pause_ns.append(clock() - self._t0)

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


# ---- one run ----------------------------------------------------------------------------------


@dataclass
class Run:
    port: int
    server_pid: int
    seconds: float
    refresh_s: float
    timer_s: float
    probe: Probe
    start: int
    end: int
    gc_count: int
    gc_pauses_ms: list[float]
    client_cpu: float
    server_cpu: float
    server_requests: int
    quotes_working: bool
    profile: str
    pinned: tuple[list[int], list[int]] | None = None
    """(client CPUs, server CPUs) when pinned apart."""


async def drive(
    port: int,
    server_pid: int,
    key: Any,
    seconds: float,
    refresh_s: float,
    timer_s: float,
    profile: bool,
) -> Run:
    settings = Settings(
        strategy=StrategySettings(
            symbol="BTC",
            base_spread_bps=20.0,  # off the touch: few fills, so the quotes just requote
            refresh_interval_s=refresh_s,
            vol_sample_interval_s=0.2,
            vol_min_samples=3,
        ),
        risk=RiskSettings(rate_limit_calls=100_000),
    )
    venue = HyperliquidVenue(
        f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", Signer(key.key.hex()),
        key.address, "BTC", mainnet=False,
    )  # fmt: skip
    probe = Probe(venue)
    await venue.start()
    engine = LiveEngine(settings, venue=venue, timer_interval_s=timer_s)
    probe.wrap_core(engine)
    watch = GcWatch()
    profiler = cProfile.Profile(time.process_time) if profile else None
    engine.start()
    try:
        await asyncio.sleep(WARMUP_S)
        quoting = engine.snapshot.bid_quote is not None or engine.snapshot.ask_quote is not None
        watch.on = True
        cpu0, server0 = time.process_time(), cpu_seconds(server_pid)
        start = clock()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(seconds)
        if profiler is not None:
            profiler.disable()
        end = clock()
        client_cpu = (time.process_time() - cpu0) / seconds
        server_cpu = (cpu_seconds(server_pid) - server0) / seconds
        watch.on = False
    finally:
        left = await engine.stop()
        watch.close()
    probe.attribute()
    if left:
        print(f"WARNING: {left} order(s) left at the venue after the stop")
    text = ""
    if profiler is not None:
        profiler.dump_stats(PROFILE_PATH)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)
        text = out.getvalue()
    return Run(
        port=port,
        server_pid=server_pid,
        seconds=seconds,
        refresh_s=refresh_s,
        timer_s=timer_s,
        probe=probe,
        start=start,
        end=end,
        gc_count=watch.count,
        gc_pauses_ms=[p / 1e6 for p in watch.pause_ns],
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        server_requests=0,
        quotes_working=quoting,
        profile=text,
    )


def run(seconds: float, refresh_s: float, timer_s: float, profile: bool, pin: bool) -> Run:
    key = eth_account.Account.create()
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = {cpus[-1]} if pin and len(cpus) >= 2 else None
    args = (child, key.address.lower(), BOOK_PUSH_S, server_cpus)
    proc = ctx.Process(target=_serve, args=args)
    proc.start()
    if server_cpus:
        os.sched_setaffinity(0, set(cpus[:-1]))
    try:
        if not parent.poll(30):
            raise RuntimeError("the local exchange did not start within 30 s")
        port = parent.recv()
        result = asyncio.run(drive(port, proc.pid, key, seconds, refresh_s, timer_s, profile))
        parent.send("stop")
        if parent.poll(10):
            result.server_requests = parent.recv()
    finally:
        parent.close()
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        if server_cpus:
            os.sched_setaffinity(0, set(cpus))
    result.pinned = (sorted(set(cpus) - server_cpus), sorted(server_cpus)) if server_cpus else None
    return result


# ---- reporting --------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(values: list[float], unit: str = "ms") -> str:
    return (
        f"p50 {pct(values, 0.5):.3f}  p90 {pct(values, 0.9):.3f}  p99 {pct(values, 0.99):.3f}  "
        f"max {max(values, default=float('nan')):.3f} {unit}  (n={len(values)})"
    )


def report(r: Run) -> None:
    probe = r.probe
    in_window = [q for q in probe.requotes if r.start <= q.frame < r.end]
    frames = sum(1 for t in probe.book_frames if r.start <= t < r.end)
    sent = [q for q in in_window if q.posts and all(p.sent for p in q.posts)]
    first = [min(q.posts, key=lambda p: p.sent) for q in sent]
    print(f"local exchange: pid {r.server_pid} on 127.0.0.1:{r.port}, l2Book pushed every "
          f"{BOOK_PUSH_S * 1e3:.0f} ms; client: LiveEngine + HyperliquidVenue in this process "
          f"(pid {os.getpid()}), strategy.refresh_interval_s {r.refresh_s:g}, engine timer "
          f"{r.timer_s:g} s; "
          f"{r.seconds:g} s measured after {WARMUP_S:g} s warm-up")  # fmt: skip
    if not r.quotes_working:
        print("  WARNING: no quote was working at the end of the warm-up")
    idle = frames - len(in_window)
    why = f" ({idle} found no refresh due: a timer tick or an answer had taken it)" if idle else ""
    print(f"  l2Book frames received: {frames}; the core requoted on {len(in_window)}{why}, "
          f"{len(sent)} with every request it led to sent")  # fmt: skip
    ms = [(p.sent - q.frame) / 1e6 for q, p in zip(sent, first, strict=True)]
    print("  book frame -> first request of the requote on the socket (in-process):")
    print(f"    {line(ms)}")
    stages = [
        ("reader: parse, book event, emit, wake", [(q.core_in - q.frame) / 1e3 for q in sent]),
        ("  of which _on_frame itself", [(q.emitted - q.frame) / 1e3 for q in sent]),
        ("core: Quoter.on_event", [(q.core_out - q.core_in) / 1e3 for q in sent]),
        (
            "core done -> sender's _post_action",
            [(p.enter - q.core_out) / 1e3 for q, p in zip(sent, first, strict=True)],
        ),
        ("nonce, sign, JSON body", [(p.post - p.enter) / 1e3 for p in first]),
        ("  of which signing", [p.sign_ns / 1e3 for p in first]),
        ("httpx.post -> first socket write", [(p.write_in - p.post) / 1e3 for p in first]),
        ("first socket write -> last byte sent", [(p.sent - p.write_in) / 1e3 for p in first]),
    ]
    print("    stages, us:                              p50      p90      p99      max")
    for name, values in stages:
        print(f"      {name:<38} {pct(values, 0.5):7.1f}  {pct(values, 0.9):7.1f}  "
              f"{pct(values, 0.99):7.1f}  {max(values, default=float('nan')):7.1f}")  # fmt: skip
    kinds = sorted({p.kind for q in sent for p in q.posts})
    per = statistics.mean(len(q.posts) for q in sent) if sent else float("nan")
    every = [(max(p.sent for p in q.posts) - q.frame) / 1e6 for q in sent]
    print(f"  book frame -> every request of the requote on the socket ({per:.1f} requests a "
          f"frame: {', '.join(kinds)}; the sender posts one at a time and awaits each answer, "
          f"so this includes the earlier requests' round trips to the server):")  # fmt: skip
    print(f"    {line(every)}")
    done = [q for q in sent if q.replacements and all(p.sent for p in q.replacements)]
    repl = [(max(p.sent for p in q.replacements) - q.frame) / 1e6 for q in done]
    if any(q.replacements for q in sent) or not sent:
        print("  book frame -> the replacement orders on the socket (placed on the cancels' "
              "answers: includes the server and the round trips):")  # fmt: skip
        print(f"    {line(repl)}")
    else:
        print("  the replacement orders went in the requote's own request (batchModify)")
    window = [p for p in probe.posts if r.start <= p.enter < r.end and p.sign_ns]
    for kind in sorted({p.kind for p in window}):
        signs = [p.sign_ns / 1e3 for p in window if p.kind == kind]
        built = [(p.post - p.enter) / 1e3 for p in window if p.kind == kind and p.post]
        trips = [(p.done - p.sent) / 1e6 for p in window if p.kind == kind and p.sent]
        print(f"  {kind}: signing {statistics.median(signs):.1f} us median (n={len(signs)}); "
              f"nonce + sign + body {statistics.median(built):.1f} us; round trip, socket "
              f"to answer decoded: p50 {pct(trips, 0.5):.2f}  "
              f"p99 {pct(trips, 0.99):.2f} ms")  # fmt: skip
    signs_all = [p.sign_ns / 1e3 for p in window]
    if signs_all:
        print(f"  signing per action, all kinds: {statistics.median(signs_all):.1f} us median "
              f"(n={len(signs_all)})")  # fmt: skip
    pauses = r.gc_pauses_ms
    print(f"  GC in the window: {r.gc_count} collections, {sum(pauses):.2f} ms in all, "
          f"longest {max(pauses, default=0.0):.2f} ms")  # fmt: skip
    where = (
        f"client pinned to CPU {r.pinned[0]}, server to {r.pinned[1]}"
        if r.pinned
        else "client and server not pinned (they share the CPUs)"
    )
    print(f"  CPU, in cores: client process {r.client_cpu:.2f}, server process "
          f"{r.server_cpu:.2f}; {os.cpu_count()} cores, {where}; {r.server_requests:,} "
          "requests served")  # fmt: skip
    print("in-process: from the frame's entry into HyperliquidVenue._on_frame (websockets has read "
          "and decoded it) to the return of the asyncio transport's write of the signed request's "
          "last byte (the send syscall: its bytes are in the kernel); it includes the reader, the "
          "engine's wake-up and core, the sender's task switch, nonce, signing, JSON and httpx; "
          "it excludes loopback, the server, and the request's round trip.")  # fmt: skip
    p99 = pct(ms, 0.99)
    verdict = "met" if p99 < TARGET_P99_MS else "NOT met"
    if not ms:
        verdict = "no sample: nothing measured (is the core quoting? see the warnings above)"
    print(f"{TARGET_P99_MS:g} ms p99 target (book frame -> quote action sent, in-process): "
          f"p99 {p99:.3f} ms = {p99 / TARGET_P99_MS:.2f}x the target -- {verdict}"
          f"{' (under cProfile: not a fair figure)' if r.profile else ''}")  # fmt: skip
    if r.profile:
        print("\nclient profile over the measured window, in CPU seconds (cProfile slows the "
              "client down: read the shares, not the latencies)")  # fmt: skip
        print(f"raw stats (pstats): {PROFILE_PATH}")
        print(r.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--quick", action="store_true", help="a 5-second run")
    parser.add_argument(
        "--refresh", type=float, default=REFRESH_S, help="strategy.refresh_interval_s, in s"
    )
    parser.add_argument(
        "--timer", type=float, default=TIMER_S, help="the engine's timer interval, in s"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile this (client) process")
    parser.add_argument(
        "--no-pin", action="store_true", help="let the client and the server share the CPUs"
    )
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds
    report(run(seconds, args.refresh, args.timer, args.profile, not args.no_pin))


if __name__ == "__main__":
    main()
