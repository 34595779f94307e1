"""Benchmark: a Hyperliquid l2Book frame decoded into the core's BookUpdate, msgspec against json.

Run `python bench/hl_feed.py [rounds]`. Uses the 46 recorded l2Book frames (20 levels a side)
and 9 trades frames of the shared recording, or a synthetic 20x20 book if it is absent.

- msgspec: `wire.parse` (one decoder over a union tagged by "channel"; structure, numbers,
  order and crossing checked) then `wire.book_event`.
- json: `json.loads` to dicts, the same checks by hand, then a BookUpdate: what the parser
  would cost without msgspec.
- The two msgspec strategies for the envelope, decode only: the tagged union `parse` uses, and
  decoding `{"channel", "data": msgspec.Raw}` first and then the data with the channel's type.

Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.book import Book
from engine.events import BookUpdate, Level
from engine.venues.hyperliquid import wire

RECORDING = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "hyperliquid_btcusd_20250126.gz"
)
ROUNDS = 200
REPEATS = 5
_INF = math.inf


def load() -> tuple[list[bytes], list[bytes], str]:
    if not RECORDING.exists():
        levels = [
            [{"px": f"{105_000 - i}.0", "sz": "0.12345", "n": 2} for i in range(20)],
            [{"px": f"{105_001 + i}.0", "sz": "0.54321", "n": 3} for i in range(20)],
        ]
        book = {"channel": "l2Book", "data": {"coin": "BTC", "time": 1, "levels": levels}}
        return [json.dumps(book, separators=(",", ":")).encode()], [], "synthetic 20x20 book"
    with gzip.open(RECORDING, "rb") as tape:
        frames = [line.rstrip(b"\n").partition(b" ")[2] for line in tape]
    books = [f for f in frames if f.startswith(b'{"channel":"l2Book"')]
    trades = [f for f in frames if f.startswith(b'{"channel":"trades"')]
    return books, trades, f"{RECORDING.name}"


def msgspec_book(frame: bytes) -> BookUpdate:
    message = wire.parse(frame)
    assert isinstance(message, wire.WsBook)
    return wire.book_event(message, 0)


def _json_side(levels: list[dict[str, Any]], descending: bool) -> tuple[Level, ...]:
    out: list[Level] = []
    previous = _INF if descending else 0.0
    for level in levels:
        px = float(level["px"])
        sz = float(level["sz"])
        if not (0.0 < px < _INF and 0.0 < sz < _INF):
            raise ValueError("bad level")
        if (px >= previous) if descending else (px <= previous):
            raise ValueError("out of order")
        previous = px
        out.append((px, sz))
    return tuple(out)


def json_book(frame: bytes) -> BookUpdate:
    message = json.loads(frame)
    if message["channel"] != "l2Book":
        raise ValueError("not a book")
    data = message["data"]
    if not (isinstance(data["coin"], str) and isinstance(data["time"], int)):
        raise ValueError("bad book")
    bid_levels, ask_levels = data["levels"]
    bids = _json_side(bid_levels, True)
    asks = _json_side(ask_levels, False)
    if bids and asks and bids[0][0] >= asks[0][0]:
        raise ValueError("crossed")
    return BookUpdate(0, bids, asks, True)


class _Envelope(msgspec.Struct):
    channel: str
    data: msgspec.Raw = msgspec.Raw(b"null")


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_BY_CHANNEL = {"l2Book": msgspec.json.Decoder(wire.WsBook)}


def envelope_then_data(frame: bytes) -> object:
    envelope = _ENVELOPE.decode(frame)
    return _BY_CHANNEL[envelope.channel].decode(envelope.data)


def tagged_union(frame: bytes) -> object:
    return wire._FRAMES.decode(frame)


def per_frame_us(frames: list[bytes], call: Callable[[bytes], object], rounds: int) -> float:
    best = _INF
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for frame in frames:
                call(frame)
        best = min(best, time.perf_counter() - t0)
    return best / (rounds * len(frames)) * 1e6


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(args[0]) if args else ROUNDS
    books, trades, source = load()
    for frame in books:  # both paths must agree before either is timed
        assert msgspec_book(frame) == json_book(frame)
    sizes = sorted(len(f) for f in books)
    print(f"source: {source}: {len(books)} l2Book frames ({sizes[len(sizes) // 2]:,} bytes median)")

    t_msgspec = per_frame_us(books, msgspec_book, rounds)
    t_json = per_frame_us(books, json_book, rounds)
    print(f"l2Book frame -> BookUpdate, msgspec (wire.parse + book_event): {t_msgspec:6.2f} us")
    print(f"l2Book frame -> BookUpdate, json.loads + dicts:                {t_json:6.2f} us")
    print(f"json / msgspec: {t_json / t_msgspec:.2f}x")

    t_tagged = per_frame_us(books, tagged_union, rounds)
    t_envelope = per_frame_us(books, envelope_then_data, rounds)
    print(f"decode only, union tagged by channel (used): {t_tagged:6.2f} us")
    print(f"decode only, envelope with Raw data, then data: {t_envelope:6.2f} us "
          f"({t_envelope / t_tagged:.2f}x)")  # fmt: skip

    book = Book(1.0)
    updates = [msgspec_book(f) for f in books]

    def apply(update: BookUpdate) -> None:
        book.apply(update)

    best = _INF
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for update in updates:
                apply(update)
        best = min(best, time.perf_counter() - t0)
    print(f"for scale, Book.apply of that snapshot (tick 1): "
          f"{best / (rounds * len(updates)) * 1e6:6.2f} us")  # fmt: skip

    if trades:
        count = sum(len(wire.trade_events(wire.parse(f))) for f in trades)  # type: ignore[arg-type]

        def trades_frame(frame: bytes) -> object:
            message = wire.parse(frame)
            assert isinstance(message, wire.WsTrades)
            return wire.trade_events(message)

        t_trades = per_frame_us(trades, trades_frame, rounds)
        print(f"trades frame -> Trades, msgspec: {t_trades:6.2f} us a frame "
              f"({count / len(trades):.1f} trades a frame on average)")  # fmt: skip


if __name__ == "__main__":
    main()
