"""The journal read back for people: the fills, orders and alerts blotter, and a day's report.

Read-only and lock-free like `perpdesk status`: a running session keeps writing while these
read, and nothing here creates a journal or takes the state directory's lock.

Markouts: a fill's 5 s (30 s) markout is taken at the first `mark` record of the same session,
journaled after the fill, whose time is at or after the fill's time + 5 s (30 s); in bps of the
fill price, signed so that positive means the fill was good for us: for a buy
(mid_later - price) / price * 1e4, for a sell the opposite. It is None while no such mark exists
(a fill of the last 30 s; a fill within 30 s of its session's end keeps None for good).

The day report's P&L terms are the fold recovery uses (`_Fold`, exact rationals, in the same
order: the journal's rows, then any recovery file) taken just before the first record of the
day it books and just before the first of the next day; their difference is exact, its terms
sum to its net exactly, and consecutive days add up to the ledger recovery rebuilds, exactly.
The exact values are terminating decimals (every journaled number is booked as the decimal it
prints as), so `exact_decimal_text` shows them in full.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.journal.files import (
    JOURNAL_FILE,
    JournalError,
    _already_journaled,
    _check_wal,
    _imported_names,
    _read_recovery_file,
    _recovery_files,
)
from engine.journal.fold import _NS_PER_DAY, _Fold
from engine.journal.reader import (
    _check_version,
    _checked_data,
    _fold_recovery,
    _fold_rows,
    _open_read_only,
    _tables,
)
from engine.journal.records import _MAX_TS
from engine.pnl import PnlTerms

_NS_PER_S = 1_000_000_000
MARKOUT_HORIZONS_S = (5, 30)
_HORIZONS_NS = tuple(h * _NS_PER_S for h in MARKOUT_HORIZONS_S)
_ORDER_EVENTS = {
    "order_sent": "sent",
    "order_done": "done",
    "cancel_sent": "cancel_sent",
    "cancel_refused": "cancel_refused",
    "cancel_all_sent": "cancel_all_sent",
    "cancel_all_done": "cancel_all_done",
}
"""Journal kind -> the order event a blotter shows."""


class NoJournal(JournalError):
    """The state directory holds no journal, or one with no records yet."""


@dataclass(frozen=True, slots=True)
class FillRow:
    """One journaled fill. `fee_usd` is as journaled: positive paid, negative a rebate."""

    ts_ns: int
    session: int
    order_id: str
    trade_id: str | None
    side: str
    """"buy" or "sell"."""
    price: float
    size_base: float
    notional_usd: float
    """price * size_base."""
    fee_usd: float
    is_maker: bool
    markout_5s_bps: float | None
    markout_30s_bps: float | None
    record_id: int | None
    """The journal row (seq); None for a record still in a recovery file (the next session
    reads it into the journal)."""

    @property
    def kind(self) -> str:
        return "maker" if self.is_maker else "taker"

    @property
    def markouts_known(self) -> bool:
        return self.markout_5s_bps is not None and self.markout_30s_bps is not None


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order event: side, price and size are on "sent" events only (None on the others;
    a hedge is sent without a price)."""

    ts_ns: int
    session: int
    order_id: str
    """"" for cancel_all_sent / cancel_all_done."""
    side: str | None
    price: float | None
    size_base: float | None
    event: str
    """sent, done, cancel_sent, cancel_refused, cancel_all_sent, cancel_all_done."""
    detail: str
    """sent: quote or hedge (and what it replaces, or why); done: why, when not filled;
    cancel_refused / cancel_all_sent: the reason."""
    record_id: int | None


@dataclass(frozen=True, slots=True)
class AlertRow:
    ts_ns: int
    session: int
    severity: str
    control: str
    message: str
    value: float | None
    threshold: float | None
    record_id: int | None


@dataclass(frozen=True, slots=True)
class Blotter:
    """Fills, order events and alerts, oldest first. `last_record` is the newest journal row
    read (the `after_record` of the next, incremental, read; 0 when there was none)."""

    fills: tuple[FillRow, ...]
    orders: tuple[OrderRow, ...]
    alerts: tuple[AlertRow, ...]
    last_record: int


def markout_bps(side: str | int, price: float, mid_later: float) -> float:
    """The markout of a fill at `price` against a later mid, in bps, positive when the fill
    was good for us."""
    buy = side == "buy" or side == 1
    move = mid_later - price if buy else price - mid_later
    return move / price * 1e4


@dataclass(slots=True)
class _Waiting:
    ts_ns: int
    side: int
    price: float
    bps: list[float | None]


class _Markouts:
    """Fills waiting for the marks that settle their markouts, by session."""

    def __init__(self) -> None:
        self._waiting: dict[int, list[_Waiting]] = {}

    def wait(
        self, session: int, ts_ns: int, side: int, price: float, known: Sequence[float | None]
    ) -> list[float | None]:
        """The fill's markouts per horizon: a list the marks still to come fill in."""
        bps = list(known)
        if None in bps:
            self._waiting.setdefault(session, []).append(_Waiting(ts_ns, side, price, bps))
        return bps

    def on_mark(self, session: int, ts_ns: int, mid: float) -> None:
        waiting = self._waiting.get(session)
        if not waiting:
            return
        still = []
        for fill in waiting:
            for i, horizon in enumerate(_HORIZONS_NS):
                if fill.bps[i] is None and ts_ns >= fill.ts_ns + horizon:
                    fill.bps[i] = markout_bps(fill.side, fill.price, mid)
            if None in fill.bps:
                still.append(fill)
        if still:
            self._waiting[session] = still
        else:
            del self._waiting[session]

    def sessions(self) -> set[int]:
        return set(self._waiting)


# ---- the blotter --------------------------------------------------------------------------


def _connect(state_dir: Path) -> tuple[sqlite3.Connection, Path]:
    path = Path(state_dir) / JOURNAL_FILE
    _check_wal(path)
    if not path.exists():
        raise NoJournal(f"no journal in {state_dir}: no session has run with this state directory")
    try:
        return _open_read_only(path), path
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot read: {exc}") from exc


def _journal_tables(conn: sqlite3.Connection, path: Path) -> set[str]:
    _check_version(conn, path)
    tables = _tables(conn)
    if tables and not {"sessions", "records"} <= tables:
        raise JournalError(f"journal {path}: not a perpdesk journal (no sessions or records)")
    return tables


_Record = tuple[int | None, int, int, str, dict[str, Any]]
"""(record_id, session, ts_ns, kind, data), validated."""


def _unimported(conn: sqlite3.Connection, state_dir: Path, tables: set[str]) -> list[Path]:
    """Recovery files the journal has not imported yet (recovery reads them after it)."""
    done = _imported_names(conn, tables)
    return [p for p in _recovery_files(Path(state_dir)) if p.name not in done]


def _recovery_records(
    conn: sqlite3.Connection, files: list[Path], kinds: Iterable[str]
) -> Iterator[_Record]:
    """The records of recovery files that the journal does not hold already."""
    wanted = set(kinds)
    for path in files:
        records = _read_recovery_file(path)
        skip = _already_journaled(conn, records)
        for i, (session, ts, kind, data) in enumerate(records):
            if i not in skip and kind in wanted:
                yield None, session, ts, kind, data


def read_blotter(
    state_dir: Path,
    *,
    since_ns: int | None = None,
    after_record: int | None = None,
    fills: bool = True,
    orders: bool = True,
    alerts: bool = True,
) -> Blotter:
    """Fills, order events and alerts of every session, oldest first, in one query.

    `since_ns`: only rows at or after this wall time. `after_record`: only journal rows after
    this one (a `last_record`): the console reads only what is new, each second. A full read
    (no `after_record`) also includes records still in a recovery file (record_id None).
    `fills`/`orders`/`alerts` False leaves those kinds out (fills: their marks too; faster,
    but the next incremental read with them must not start from this read's `last_record`).
    Markouts of fills of the last 30 s are None until their marks exist: `refresh_markouts`
    fills them in later. NoJournal when there is no journal; JournalError (one line) for a
    record that cannot be read."""
    kinds = (
        *(("fill", "mark") if fills else ()),
        *(("alert",) if alerts else ()),
        *(_ORDER_EVENTS if orders else ()),
    )
    conn, path = _connect(state_dir)
    try:
        try:
            recovery: list[_Record] = []
            full = after_record is None
            if full and not _journal_tables(conn, path):
                return Blotter((), (), (), 0)
            marks = ",".join("?" * len(kinds))
            rows = conn.execute(
                f"SELECT seq, session, ts_ns, kind, data FROM records WHERE kind IN ({marks}) "
                "AND seq > ? AND ts_ns >= ? ORDER BY seq",
                (*kinds, after_record or 0, _clamp_ts(since_ns or 0)),
            ).fetchall()
            if full:
                files = _unimported(conn, state_dir, _tables(conn))
                recovery = list(_recovery_records(conn, files, kinds))
        except sqlite3.Error as exc:
            raise JournalError(f"journal {path}: cannot read: {exc}") from exc
    finally:
        conn.close()
    blotter = _Blotting(since_ns)
    for seq, session, ts, kind, text in rows:
        data = _checked_data(seq, session, ts, kind, text, path)
        assert data is not None  # every blotter kind is a known one
        blotter.take(seq, session, ts, kind, data)
    for record in recovery:
        blotter.take(*record)
    last = rows[-1][0] if rows else (after_record or 0)
    return blotter.result(last)


class _Blotting:
    """Blotter rows built from records in journal order."""

    def __init__(self, since_ns: int | None) -> None:
        self.since_ns = since_ns or 0
        self.markouts = _Markouts()
        self.fills: list[tuple[FillRow, list[float | None]]] = []
        self.orders: list[OrderRow] = []
        self.alerts: list[AlertRow] = []

    def take(
        self, record_id: int | None, session: int, ts: int, kind: str, data: dict[str, Any]
    ) -> None:
        if kind == "mark":
            self.markouts.on_mark(session, ts, data["mid"])
            return
        if ts < self.since_ns:
            return
        if kind == "fill":
            self.fills.append(_fill_row(record_id, session, ts, data, self.markouts))
        elif kind == "alert":
            self.alerts.append(
                AlertRow(
                    ts_ns=ts,
                    session=session,
                    severity=data["severity"],
                    control=data["control"],
                    message=data["message"],
                    value=_float_or_none(data.get("value")),
                    threshold=_float_or_none(data.get("threshold")),
                    record_id=record_id,
                )
            )
        else:
            self.orders.append(_order_row(record_id, session, ts, kind, data))

    def result(self, last_record: int) -> Blotter:
        fills = tuple(
            replace(row, markout_5s_bps=bps[0], markout_30s_bps=bps[1]) for row, bps in self.fills
        )
        return Blotter(fills, tuple(self.orders), tuple(self.alerts), last_record)


def _fill_row(
    record_id: int | None,
    session: int,
    ts: int,
    data: dict[str, Any],
    markouts: _Markouts,
    known: Sequence[float | None] = (None, None),
) -> tuple[FillRow, list[float | None]]:
    price, size_base = float(data["price"]), float(data["size_base"])
    row = FillRow(
        ts_ns=ts,
        session=session,
        order_id=data["order_id"],
        trade_id=data.get("trade_id") or None,
        side="buy" if data["side"] == 1 else "sell",
        price=price,
        size_base=size_base,
        notional_usd=price * size_base,
        fee_usd=float(data["fee_usd"]),
        is_maker=data["is_maker"],
        markout_5s_bps=None,
        markout_30s_bps=None,
        record_id=record_id,
    )
    return row, markouts.wait(session, ts, data["side"], price, known)


def _order_row(
    record_id: int | None, session: int, ts: int, kind: str, data: dict[str, Any]
) -> OrderRow:
    side = data.get("side")
    detail = ""
    if kind == "order_sent":
        detail = str(data.get("kind") or "")
        if data.get("replaces"):
            detail += f", replaces {data['replaces']}"
        if data.get("reason"):
            detail += f": {data['reason']}"
    elif kind == "order_done":
        detail = str(data.get("why") or "")
    elif kind in ("cancel_refused", "cancel_all_sent"):
        detail = str(data.get("reason") or "")
    return OrderRow(
        ts_ns=ts,
        session=session,
        order_id=str(data.get("order_id") or ""),
        side=None if side is None else ("buy" if side == 1 else "sell"),
        price=_float_or_none(data.get("price")),
        size_base=_float_or_none(data.get("size_base")),
        event=_ORDER_EVENTS[kind],
        detail=detail.strip(", "),
        record_id=record_id,
    )


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def refresh_markouts(state_dir: Path, fills: Sequence[FillRow]) -> tuple[FillRow, ...]:
    """The same fills, with the markouts whose marks the journal holds now filled in (one
    query, over the marks journaled since the oldest fill still waiting). Pass recent fills
    only: a fill whose session ended within 30 s of it never gets its 30 s markout."""
    todo = sorted(
        (f for f in fills if not f.markouts_known and f.record_id is not None),
        key=lambda f: f.record_id or 0,
    )
    if not todo:
        return tuple(fills)
    first = todo[0].record_id or 0
    conn, path = _connect(state_dir)
    try:
        rows = conn.execute(
            "SELECT seq, session, ts_ns, kind, data FROM records WHERE kind = 'mark' AND seq > ? "
            "ORDER BY seq",
            (first,),
        ).fetchall()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot read: {exc}") from exc
    finally:
        conn.close()
    markouts = _Markouts()
    found: dict[int, list[float | None]] = {}
    queue = iter(todo)
    upcoming = next(queue, None)
    for seq, session, ts, kind, text in rows:
        while upcoming is not None and (upcoming.record_id or 0) < seq:  # marks after it only
            known = (upcoming.markout_5s_bps, upcoming.markout_30s_bps)
            side = 1 if upcoming.side == "buy" else -1
            found[id(upcoming)] = markouts.wait(
                upcoming.session, upcoming.ts_ns, side, upcoming.price, known
            )
            upcoming = next(queue, None)
        data = _checked_data(seq, session, ts, kind, text, path)
        assert data is not None
        markouts.on_mark(session, ts, data["mid"])
    out = []
    for fill in fills:
        bps = found.get(id(fill))
        out.append(fill if bps is None else replace(fill, markout_5s_bps=bps[0],
                                                    markout_30s_bps=bps[1]))  # fmt: skip
    return tuple(out)


# ---- a day's report ---------------------------------------------------------------------


_Terms = tuple[Fraction, Fraction, Fraction, Fraction, Fraction]


@dataclass(frozen=True, slots=True)
class DayPnl:
    """A day's P&L terms, exact (rationals): the change of each ledger term over the day."""

    spread_usd: Fraction
    rebates_usd: Fraction
    inventory_usd: Fraction
    hedge_usd: Fraction
    funding_usd: Fraction

    @property
    def net_usd(self) -> Fraction:
        return (
            self.spread_usd + self.rebates_usd + self.inventory_usd + self.hedge_usd
            + self.funding_usd
        )  # fmt: skip

    def terms(self) -> PnlTerms:
        """As floats, each the nearest to its exact value (as `PnlLedger.terms` gives them)."""
        return PnlTerms(
            spread_usd=float(self.spread_usd),
            rebates_usd=float(self.rebates_usd),
            inventory_usd=float(self.inventory_usd),
            hedge_usd=float(self.hedge_usd),
            funding_usd=float(self.funding_usd),
            net_usd=float(self.net_usd),
        )

    def exact(self) -> dict[str, Fraction]:
        """Every term and the net, exact, by PnlTerms's names."""
        return {
            "spread_usd": self.spread_usd,
            "rebates_usd": self.rebates_usd,
            "inventory_usd": self.inventory_usd,
            "hedge_usd": self.hedge_usd,
            "funding_usd": self.funding_usd,
            "net_usd": self.net_usd,
        }


@dataclass(frozen=True, slots=True)
class DayReport:
    """One UTC day of the journal. Counts are of records timed within the day."""

    day: date
    pnl: DayPnl
    volume_usd: float
    maker_volume_usd: float
    taker_volume_usd: float
    maker_fills: int
    taker_fills: int
    quotes_sent: int
    quotes_filled: int
    """Of the quotes sent that day, those filled (at least partly) the same day."""
    markout_5s_bps: float | None
    """Mean over the day's fills (maker and taker) whose 5 s markout is known."""
    markout_30s_bps: float | None
    markouts_5s: int
    """How many fills the 5 s mean is over."""
    markouts_30s: int
    max_inventory_usd: float
    """The largest |position * mark| after a mark, fill or reconcile of the day."""
    alerts: Mapping[str, Mapping[str, int]]
    """control -> severity -> count."""
    sessions: tuple[int, ...]
    """Sessions with records that day."""
    records: int
    journal: Path

    @property
    def fills(self) -> int:
        return self.maker_fills + self.taker_fills

    @property
    def fill_rate(self) -> float | None:
        """quotes_filled / quotes_sent (None without quotes)."""
        return self.quotes_filled / self.quotes_sent if self.quotes_sent else None


@dataclass(slots=True)
class _Tally:
    records: int = 0
    maker_fills: int = 0
    taker_fills: int = 0
    maker_notional: list[float] = field(default_factory=list)
    taker_notional: list[float] = field(default_factory=list)
    quotes: set[str] = field(default_factory=set)
    filled: set[str] = field(default_factory=set)
    markouts: list[list[float | None]] = field(default_factory=list)
    max_inventory_usd: float = 0.0
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    sessions: set[int] = field(default_factory=set)


class _DayFold(_Fold):
    """The recovery fold, with the ledger's terms taken at the day's edges and the day's
    fills, quotes, markouts, inventory and alerts tallied on the way."""

    __slots__ = ("end", "from_files", "hi", "latest_session", "lo", "markouts", "start", "tally")

    def __init__(self, lo_ns: int, hi_ns: int) -> None:
        super().__init__()
        self.lo, self.hi = lo_ns, hi_ns
        self.start: _Terms | None = None
        self.end: _Terms | None = None
        self.markouts = _Markouts()
        self.latest_session = 0
        self.tally = _Tally()
        self.from_files = False

    def carry_on(self, fold: _Fold) -> None:
        """Start from a checkpoint's fold."""
        for name in _Fold.__slots__:
            setattr(self, name, getattr(fold, name))

    def terms_now(self) -> _Terms:
        ledger = self.ledger
        return (ledger.spread, ledger.rebates, ledger.inventory, ledger.hedge, ledger.funding)

    def done(self) -> bool:
        """The day has ended and every fill of it has its markouts, or its session is over
        (sessions run one at a time: a later session's record means the earlier one ended)."""
        return self.end is not None and all(
            s < self.latest_session for s in self.markouts.sessions()
        )

    def apply(self, session: int, ts: int, kind: str, data: dict[str, Any] | None) -> None:
        self.latest_session = max(self.latest_session, session)
        if self.start is None and ts >= self.lo:
            self.start = self.terms_now()
        if self.end is None and ts >= self.hi:
            self.end = self.terms_now()
        super().apply(session, ts, kind, data)
        if data is None:
            return
        if kind == "mark":
            self.markouts.on_mark(session, ts, data["mid"])
        if not self.lo <= ts < self.hi:
            return
        tally = self.tally
        if self.from_files:  # the journal's rows are counted in SQL
            tally.records += 1
            tally.sessions.add(session)
        if kind == "fill":
            price, size_base = data["price"], data["size_base"]
            if data["is_maker"]:
                tally.maker_fills += 1
                tally.maker_notional.append(price * size_base)
                if data["order_id"] in tally.quotes:
                    tally.filled.add(data["order_id"])
            else:
                tally.taker_fills += 1
                tally.taker_notional.append(price * size_base)
            tally.markouts.append(self.markouts.wait(session, ts, data["side"], price, (None,) * 2))
        elif kind == "order_sent":
            quote = data.get("kind", "quote" if data.get("price") is not None else "hedge")
            if quote == "quote":
                tally.quotes.add(data["order_id"])
        elif kind == "alert":
            tally.alerts[(data["control"], data["severity"])] += 1
        if kind in ("mark", "fill", "reconcile"):
            mark = self.ledger.mark_price or 0.0
            tally.max_inventory_usd = max(
                tally.max_inventory_usd, abs(self.ledger.position_base * mark)
            )

    def report(self, day: date, journal: Path, in_journal: dict[int, int]) -> DayReport:
        """`in_journal`: session -> how many of its journal rows are timed within the day."""
        now = self.terms_now()
        start = self.start or now  # nothing on or after the day: it changed nothing
        end = self.end or now
        pnl = DayPnl(*(b - a for a, b in zip(start, end, strict=True)))
        tally = self.tally
        five = [bps[0] for bps in tally.markouts if bps[0] is not None]
        thirty = [bps[1] for bps in tally.markouts if bps[1] is not None]
        alerts: dict[str, dict[str, int]] = {}
        for (control, severity), count in sorted(tally.alerts.items()):
            alerts.setdefault(control, {})[severity] = count
        maker_volume = math.fsum(tally.maker_notional)
        taker_volume = math.fsum(tally.taker_notional)
        return DayReport(
            day=day,
            pnl=pnl,
            volume_usd=math.fsum(tally.maker_notional + tally.taker_notional),
            maker_volume_usd=maker_volume,
            taker_volume_usd=taker_volume,
            maker_fills=tally.maker_fills,
            taker_fills=tally.taker_fills,
            quotes_sent=len(tally.quotes),
            quotes_filled=len(tally.filled),
            markout_5s_bps=math.fsum(five) / len(five) if five else None,
            markout_30s_bps=math.fsum(thirty) / len(thirty) if thirty else None,
            markouts_5s=len(five),
            markouts_30s=len(thirty),
            max_inventory_usd=tally.max_inventory_usd,
            alerts=alerts,
            sessions=tuple(sorted(tally.sessions | set(in_journal))),
            records=tally.records + sum(in_journal.values()),
            journal=journal,
        )


def _until(done: Callable[[], bool], rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        if done():
            return
        yield row


_DAY_KINDS = (
    "mark", "fill", "funding", "reconcile", "order_sent", "order_done", "cancel_all_done",
    "state", "alert",
)  # fmt: skip
"""What a day report reads of the journal: every kind `_Fold` books, and alerts (the others,
a cancel_sent most of all, change nothing it reports)."""
_CHECKPOINT_MAX_TS = re.compile(r'"max_ts":(\d+)')


def _checkpoint_before(conn: sqlite3.Connection, tables: set[str], lo_ns: int) -> tuple[int, _Fold]:
    """The newest checkpoint holding only records before `lo_ns` (seq, its fold), so a day
    long after the journal began is not replayed from the start; (0, an empty fold) if none."""
    if "checkpoints" not in tables:
        return 0, _Fold()
    (max_seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
    rows = conn.execute(
        "SELECT seq, data FROM checkpoints WHERE seq > 0 AND seq <= ? ORDER BY seq DESC",
        (max_seq,),
    )
    for seq, text in rows:
        found = _CHECKPOINT_MAX_TS.search(text) if isinstance(text, str) else None
        if found is None or int(found[1]) >= lo_ns:  # a look before parsing it all
            continue
        fold = _Fold.from_json(text)
        if fold is not None and fold.max_ts is not None and fold.max_ts < lo_ns:
            return seq, fold
    return 0, _Fold()


def _clamp_ts(ts_ns: int) -> int:
    """A time SQLite can take (a day in year 1 or 9999 is before or after every record)."""
    return min(max(ts_ns, -1), _MAX_TS + 1)


def day_report(state_dir: Path, day: date | None = None) -> DayReport:
    """One UTC day of the journal (default: the day of its latest record): P&L by term, exact,
    volume, fills, fill rate, markouts, max inventory, alerts by control, sessions. NoJournal
    when there is no journal or it holds no records; JournalError (one line) otherwise."""
    state_dir = Path(state_dir)
    conn, path = _connect(state_dir)
    try:
        try:
            tables = _journal_tables(conn, path)
            if not tables:
                raise NoJournal(f"journal {path} holds no records yet")
            files = _unimported(conn, state_dir, tables)
            (latest,) = conn.execute("SELECT MAX(ts_ns) FROM records").fetchone()
            if latest is None or day is None:
                in_files = [ts for p in files for _, ts, _, _ in _read_recovery_file(p)]
                if latest is None and not in_files:
                    raise NoJournal(f"journal {path} holds no records yet")
                if day is None:
                    latest_ns = max([latest or 0, *in_files])
                    day = datetime.fromtimestamp(latest_ns // _NS_PER_S, UTC).date()
            lo = (day - date(1970, 1, 1)).days * _NS_PER_DAY
            hi = lo + _NS_PER_DAY
            start_seq, fold = _checkpoint_before(conn, tables, lo)
            day_fold = _DayFold(lo, hi)
            day_fold.carry_on(fold)
            marks = ",".join("?" * len(_DAY_KINDS))
            rows = conn.execute(
                f"SELECT seq, session, ts_ns, kind, data FROM records WHERE seq > ? "
                f"AND kind IN ({marks}) ORDER BY seq",
                (start_seq, *_DAY_KINDS),
            )
            _fold_rows(day_fold, _until(day_fold.done, rows), path, start_seq=start_seq)
            if not day_fold.done():  # recovery reads these after the journal's rows
                day_fold.from_files = True
                _fold_recovery(day_fold, files, conn)
            in_journal = dict(
                conn.execute(
                    "SELECT session, COUNT(*) FROM records WHERE ts_ns >= ? AND ts_ns < ? "
                    "GROUP BY session",
                    (_clamp_ts(lo), _clamp_ts(hi)),
                ).fetchall()
            )
        except sqlite3.Error as exc:
            raise JournalError(f"journal {path}: cannot read: {exc}") from exc
    finally:
        conn.close()
    return day_fold.report(day, path, in_journal)


# ---- text for the command line ---------------------------------------------------------


def exact_decimal_text(value: Fraction) -> str:
    """A rational as exact decimal text ("-12.34125"); "num/den" if it has no finite decimal
    expansion (never for a ledger term: they are sums of products of decimals)."""
    den = value.denominator
    twos = fives = 0
    rest = den
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return f"{value.numerator}/{den}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // den
    sign = "-" if value < 0 else ""
    digits = str(scaled).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


FILL_COLUMNS = (
    "ts_ns", "session", "order_id", "trade_id", "side", "price", "size_base", "notional_usd",
    "fee_usd", "is_maker", "kind", "markout_5s_bps", "markout_30s_bps", "record_id",
)  # fmt: skip
"""The columns of `perpdesk fills --csv` / `--json`: FillRow's fields and its kind."""


def fill_as_dict(fill: FillRow) -> dict[str, Any]:
    """A fill as `perpdesk fills --json` prints it (FILL_COLUMNS, in order)."""
    values = asdict(fill)
    values["kind"] = fill.kind
    return {name: values[name] for name in FILL_COLUMNS}


def report_as_dict(report: DayReport) -> dict[str, Any]:
    """The report as `perpdesk report --json` prints it: P&L terms as floats (`pnl_usd`, as
    `PnlLedger.terms` gives them) and as exact decimal text (`pnl_usd_exact`, which sums to
    its net exactly)."""
    return {
        "journal": str(report.journal),
        "day": report.day.isoformat(),
        "sessions": list(report.sessions),
        "records": report.records,
        "pnl_usd": asdict(report.pnl.terms()),
        "pnl_usd_exact": {k: exact_decimal_text(v) for k, v in report.pnl.exact().items()},
        "volume_usd": report.volume_usd,
        "maker_volume_usd": report.maker_volume_usd,
        "taker_volume_usd": report.taker_volume_usd,
        "fills": report.fills,
        "maker_fills": report.maker_fills,
        "taker_fills": report.taker_fills,
        "quotes_sent": report.quotes_sent,
        "quotes_filled": report.quotes_filled,
        "fill_rate": report.fill_rate,
        "markout_5s_bps": report.markout_5s_bps,
        "markout_30s_bps": report.markout_30s_bps,
        "markouts_5s": report.markouts_5s,
        "markouts_30s": report.markouts_30s,
        "max_inventory_usd": report.max_inventory_usd,
        "alerts": {control: dict(counts) for control, counts in report.alerts.items()},
    }


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_since(text: str, now_ns: int) -> int:
    """A `--since` as wall-clock ns: an ISO time (2026-12-05T13:00, UTC unless it says its
    offset), a UTC time of day (13:00: today), or a duration back from `now_ns` (30m, 2h, 45s,
    1d). ValueError, in one line, otherwise."""
    text = text.strip()
    duration = _DURATION.match(text.lower())
    of_day = _TIME_OF_DAY.match(text)
    try:
        if duration:
            return now_ns - round(float(duration[1]) * _UNIT_S[duration[2]] * _NS_PER_S)
        if of_day:
            hour, minute, second, fraction = of_day.groups()
            at = time(int(hour), int(minute), int(second or 0), int(float(fraction or 0) * 1e6))
            today = datetime.fromtimestamp(now_ns // _NS_PER_S, UTC).date()
            moment = datetime.combine(today, at, UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1_000
    except (ValueError, OverflowError):
        pass
    raise ValueError(
        f"--since {text!r} is not a time: give an ISO time (2026-12-05T13:00, UTC), a UTC time "
        "of day (13:00) or a duration back from now (30m, 2h)"
    )
