"""Benchmark: decode the shared Binance tape's depth diffs with msgspec and replay them into Book.

Run `python bench/book.py`. Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import gzip
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.book import Book
from engine.events import BookUpdate
from engine.replay.binance import DepthFrame, RestDepthSnapshot

TAPE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usdm_btcusdt_20240808.gz"
TICK_SIZE = 0.1
REPEATS = 3


class AnyStreamMessage(msgspec.Struct):
    """Any combined-stream frame, for the decode-everything figure."""

    stream: str
    data: dict[str, object]


DEPTH_PREFIX = b'{"stream":"btcusdt@depth'
SNAPSHOT_PREFIX = b'{"lastUpdateId"'


def load_lines() -> list[bytes]:
    with gzip.open(TAPE, "rb") as tape:
        return tape.read().splitlines()


@dataclass
class Replay:
    book: Book
    diffs: int = 0
    level_updates: int = 0
    snapshot_levels: int = 0
    decode_ns: int = 0
    book_ns: int = 0


def replay_depth(lines: list[bytes]) -> Replay:
    """Stream the tape as a live feed handler would: decode a diff, apply it, drop it.

    Decode and book time are summed separately per message (two clock reads a diff, ~1%).
    The book starts from the REST snapshot; diffs received before it are held and applied
    after it if they end at or after its lastUpdateId, as Binance documents.
    """
    depth_decoder = msgspec.json.Decoder(DepthFrame, strict=False)
    snapshot_decoder = msgspec.json.Decoder(RestDepthSnapshot, strict=False)
    clock = time.perf_counter_ns
    run = Replay(Book(TICK_SIZE))
    apply = run.book.apply
    held: list[tuple[int, BookUpdate]] = []
    last_update_id: int | None = None
    for line in lines:
        start = clock()
        recv_ns, _, payload = line.partition(b" ")
        if payload.startswith(DEPTH_PREFIX):
            diff = depth_decoder.decode(payload).data
            update = BookUpdate(int(recv_ns), diff.b, diff.a, is_snapshot=False)
            decoded = clock()
            run.decode_ns += decoded - start
            if last_update_id is None:
                held.append((diff.u, update))
            elif diff.u >= last_update_id:
                apply(update)
                run.book_ns += clock() - decoded
                run.diffs += 1
                run.level_updates += len(diff.b) + len(diff.a)
        elif payload.startswith(SNAPSHOT_PREFIX):
            rest = snapshot_decoder.decode(payload)
            snapshot = BookUpdate(int(recv_ns), rest.bids, rest.asks, is_snapshot=True)
            decoded = clock()
            run.decode_ns += decoded - start
            last_update_id = rest.lastUpdateId
            apply(snapshot)
            run.snapshot_levels = len(rest.bids) + len(rest.asks)
            for u, update in held:
                if u >= last_update_id:
                    apply(update)
                    run.diffs += 1
                    run.level_updates += len(update.bids) + len(update.asks)
            run.book_ns += clock() - decoded
    if last_update_id is None:
        raise SystemExit(f"no REST depth snapshot in {TAPE}")
    return run


def decode_everything(lines: list[bytes]) -> int:
    """Decode every stream message (diffs, tickers, trades), as a live feed handler must."""
    decoder = msgspec.json.Decoder(AnyStreamMessage, strict=False)
    decoded = 0
    for line in lines:
        _, _, payload = line.partition(b" ")
        if payload.startswith(b'{"stream"'):
            decoder.decode(payload)
            decoded += 1
    return decoded


def main() -> None:
    if not TAPE.exists():
        raise SystemExit(f"shared Binance tape not found at {TAPE} (see shared/data/README.md)")
    start = time.perf_counter()
    lines = load_lines()
    gunzip_s = time.perf_counter() - start
    tape_s = (int(lines[-1].split(b" ", 1)[0]) - int(lines[0].split(b" ", 1)[0])) / 1e9

    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run = replay_depth(lines)
        runs.append((time.perf_counter() - start, run))
    wall_s, run = min(runs, key=lambda timed: timed[0])
    decode_s = run.decode_ns / 1e9
    book_s = run.book_ns / 1e9

    decode_all_s = float("inf")
    messages = 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        messages = decode_everything(lines)
        decode_all_s = min(decode_all_s, time.perf_counter() - start)

    book = run.book
    bids, asks = book.depth()
    print(f"tape               {TAPE.name}, {tape_s:.1f} s of market time")
    print(f"lines              {len(lines):,} ({messages:,} stream messages)")
    print(f"depth diffs        {run.diffs:,} applied after the snapshot")
    print(f"level updates      {run.level_updates:,} (+{run.snapshot_levels:,} in the snapshot)")
    print(f"gunzip + split     {gunzip_s:.3f} s (not counted below)")
    print(f"decode depth       {decode_s:.3f} s  ({decode_s / run.diffs * 1e6:.1f} us per diff)")
    print(
        f"book               {book_s:.3f} s  ({book_s / run.level_updates * 1e9:.0f} ns per "
        f"level update, {book_s / run.diffs * 1e6:.1f} us per diff)"
    )
    print(f"book throughput    {run.level_updates / book_s / 1e6:.2f} M level updates/s")
    print(
        f"decode + book      {decode_s + book_s:.3f} s  = {tape_s / (decode_s + book_s):,.0f}x "
        f"real time  (whole pass incl. skipping other lines: {wall_s:.3f} s = "
        f"{tape_s / wall_s:,.0f}x)"
    )
    print(
        f"decode everything  {decode_all_s:.3f} s for all {messages:,} messages "
        f"({decode_all_s / messages * 1e6:.2f} us each); plus the book: "
        f"{tape_s / (decode_all_s + book_s):,.0f}x real time"
    )
    print(
        f"final book         {bids:,} bids x {asks:,} asks, "
        f"best {book.best_bid} / {book.best_ask}, mid {book.mid}"
    )
    print(
        f"(best of {REPEATS} passes, Python {sys.version.split()[0]}, "
        f"msgspec {msgspec.__version__})"
    )


if __name__ == "__main__":
    main()
