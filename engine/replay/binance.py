"""Reader for recorded Binance USD-M streams: `<receive ns> <combined-stream JSON>` lines to events.

The book starts from the REST depth snapshot in the tape; diffs received before it are held
and applied after it when they end at or after its `lastUpdateId`, as Binance documents; the
`pu` -> `u` chain is checked from there on. Trades become `Trade` events (the `m` flag is true
when the buyer was the maker, so the aggressor sold). Book tickers carry nothing the 0 ms
depth stream does not, so they are skipped without being decoded.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from engine.events import BookUpdate, Side, Trade

# Binance sends prices and sizes as JSON strings ("61800.20"); a decoder built with
# strict=False turns them into floats while decoding, so levels arrive as ready tuples.
PriceLevels = tuple[tuple[float, float], ...]


class DepthDiff(msgspec.Struct):
    U: int
    """First update id in this diff."""
    u: int
    """Last update id in this diff."""
    pu: int
    """The previous diff's `u`: the chain has a gap if it does not match."""
    b: PriceLevels
    a: PriceLevels


class TradePrint(msgspec.Struct):
    p: float
    q: float
    m: bool


class DepthFrame(msgspec.Struct):
    data: DepthDiff


class TradeFrame(msgspec.Struct):
    data: TradePrint


class RestDepthSnapshot(msgspec.Struct):
    lastUpdateId: int
    bids: PriceLevels
    asks: PriceLevels


DEPTH_MARK = b"@depth"
TRADE_MARK = b"@trade"
SNAPSHOT_PREFIX = b'{"lastUpdateId"'
_HEAD = 40  # the stream name sits in the first bytes of a combined-stream frame

_gunzip: Callable[[bytes], bytes]
try:
    from isal.igzip import decompress as _gunzip
except ImportError:  # pragma: no cover - isal is a dependency, but the stdlib does the same
    _gunzip = gzip.decompress


class TapeError(ValueError):
    """The tape cannot be replayed faithfully; the message names the line and the problem."""


def open_lines(path: Path) -> list[bytes]:
    """All lines of the tape, gunzipped in one go (ISA-L's inflate when installed: 2x zlib)."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = _gunzip(data)
    except (OSError, EOFError) as exc:
        raise TapeError(f"{path}: cannot read: {exc}") from exc
    return data.splitlines()


def read_tape(path: Path) -> Iterator[BookUpdate | Trade]:
    """Events in receive order, stamped with the local receive time in ns."""
    depth_decoder = msgspec.json.Decoder(DepthFrame, strict=False)
    trade_decoder = msgspec.json.Decoder(TradeFrame, strict=False)
    snapshot_decoder = msgspec.json.Decoder(RestDepthSnapshot, strict=False)
    held: list[tuple[DepthDiff, int]] = []
    last_u: int | None = None  # None until the snapshot arrives
    for number, line in enumerate(open_lines(path), start=1):
        # Classify by the stream name near the start of the line, without copying it: most
        # lines are book tickers and are skipped untouched.
        space = line.find(b" ")
        if space <= 0:
            if not line.strip():
                continue
            raise TapeError(f"{path.name}:{number}: not a '<receive ns> <json>' line")
        is_depth = line.find(DEPTH_MARK, space, space + _HEAD) >= 0
        is_trade = not is_depth and line.find(TRADE_MARK, space, space + _HEAD) >= 0
        if not (is_depth or is_trade or line.startswith(SNAPSHOT_PREFIX, space + 1)):
            continue
        payload = memoryview(line)[space + 1 :]
        try:
            ts_ns = int(line[:space])
            if is_depth:
                diff = depth_decoder.decode(payload).data
                if last_u is None:
                    held.append((diff, ts_ns))
                    continue
                if diff.pu != last_u:
                    raise TapeError(
                        f"{path.name}:{number}: depth gap: pu {diff.pu} != "
                        f"previous u {last_u}; the book cannot be trusted past it"
                    )
                last_u = diff.u
                yield BookUpdate(ts_ns, diff.b, diff.a, is_snapshot=False)
            elif is_trade:
                trade = trade_decoder.decode(payload).data
                aggressor = Side.SELL if trade.m else Side.BUY
                yield Trade(ts_ns, trade.p, trade.q, aggressor)
            else:
                if last_u is not None:
                    continue  # a later snapshot adds nothing to a book kept by an unbroken chain
                snapshot = snapshot_decoder.decode(payload)
                yield BookUpdate(ts_ns, snapshot.bids, snapshot.asks, is_snapshot=True)
                last_u = snapshot.lastUpdateId
                for diff, held_ts in held:
                    if diff.u >= snapshot.lastUpdateId:
                        last_u = diff.u
                        yield BookUpdate(max(held_ts, ts_ns), diff.b, diff.a, is_snapshot=False)
                held.clear()
        except (msgspec.DecodeError, ValueError) as exc:
            if isinstance(exc, TapeError):
                raise
            raise TapeError(f"{path.name}:{number}: not a Binance stream line: {exc}") from exc
    if last_u is None:
        raise TapeError(
            f"{path.name}: no REST depth snapshot (a line starting "
            "'{\"lastUpdateId\"'): the book has no starting point"
        )
