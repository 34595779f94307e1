"""Reading the journal: what it says about the account and risk state (recover, status)."""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from engine.journal.files import (
    JOURNAL_FILE,
    JournalError,
    _already_journaled,
    _check_wal,
    _imported_names,
    _read_recovery_file,
    _recovery_files,
    _session_of,
)
from engine.journal.fold import _NS_PER_DAY, _Fold
from engine.journal.records import KNOWN_KINDS, SCHEMA_VERSION, _parse, _show, check_record
from engine.pnl import PnlLedger

_OPEN_BUSY_TIMEOUT_MS = 2_000


class Identity(NamedTuple):
    """Whose account a journal books: a journal is never silently carried to another one."""

    venue: str
    symbol: str
    account: str = ""

    def describe(self) -> str:
        text = f"{self.venue} {self.symbol}"
        if self.account:
            short = (
                self.account
                if len(self.account) <= 12
                else f"{self.account[:6]}..{self.account[-4:]}"
            )
            text += f" (account {short})"
        return text


@dataclass
class Recovered:
    """What the journal says about the account and the risk state, as of its last record."""

    ledger: PnlLedger = field(default_factory=PnlLedger)
    day_start_net_usd: float = 0.0
    killed: bool = False
    kill_reason: str = ""
    open_orders: dict[str, int] = field(default_factory=dict)
    """Order id -> the session that sent it, for orders the journal never saw done."""
    last_mid: float | None = None
    last_exit: str | None = None
    """How the previous session ended: clean, signal, crash, running, or None (no session)."""
    sessions: int = 0
    identity: Identity | None = None
    """Venue, symbol and account the journal books (None: no journal yet)."""
    unwritten_last_session: int = 0
    """Records the last session could not journal (in its recovery file, or lost)."""
    recovery_files: list[Path] = field(default_factory=list)
    """Recovery files not yet imported (the next session imports them)."""
    exit_note: str | None = None
    """`last_exit` in words: e.g. "clean, 14 records not journaled (see recovery-3-....jsonl)"."""
    last_seq: int = 0
    """The journal's last record (0: none)."""
    replayed: int = 0
    """Journal records folded past the checkpoint used (all of them without one)."""

    @property
    def position_base(self) -> float:
        return self.ledger.position_base

    def day_pnl_usd(self) -> float:
        return self.ledger.net_usd_at(self.last_mid) - self.day_start_net_usd


def _pid_alive(pid: object) -> bool:
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {
        str(name) for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }


def _check_version(conn: sqlite3.Connection, path: Path) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path}: schema version {version} is newer than this perpdesk knows "
            f"({SCHEMA_VERSION}); use a newer perpdesk"
        )
    return int(version)


def _stored_identity(
    conn: sqlite3.Connection, tables: set[str], sessions: list[dict[str, Any]]
) -> Identity | None:
    if "meta" in tables:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if "venue" in meta and "symbol" in meta:
            return Identity(str(meta["venue"]), str(meta["symbol"]), str(meta.get("account", "")))
    if sessions:
        first = sessions[0]
        return Identity(str(first["venue"]), str(first["symbol"]), str(first.get("account") or ""))
    return None


def _exit_words(last: dict[str, Any], unwritten: int, recovery_name: str | None) -> tuple[str, str]:
    """(last_exit, exit_note) for the last session's row."""
    exit_ = last.get("exit")
    pid = last.get("pid")
    running = _pid_alive(pid) and pid != os.getpid()
    if exit_:
        word = str(exit_)
        note = word
        if last.get("ended_ns") is None:
            note += " (shutting down)" if running else " (the shutdown did not finish)"
    else:
        word = "running" if running else "crash"
        note = word
    if unwritten:
        note += f", {unwritten} records not journaled"
        if recovery_name:
            note += f" (see {recovery_name})"
    return word, note


def _fold_rows(
    fold: _Fold, rows: Iterable[tuple[Any, ...]], path: Path, *, start_seq: int = 0
) -> tuple[int, int]:
    """Validate and fold journal rows (seq, session, ts_ns, kind, data); the last seq and the
    number of rows."""
    last = start_seq
    count = 0
    for seq, session, ts, kind, text in rows:
        last = seq
        count += 1
        data = _checked_data(seq, session, ts, kind, text, path)
        try:
            fold.apply(session, ts, kind, data)
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            raise JournalError(
                f"journal {path}: record {seq} ({_show_kind(kind)}): cannot be booked: {exc}"
            ) from exc
    return last, count


def _checked_data(
    seq: object, session: object, ts: object, kind: Any, text: object, path: Path
) -> dict[str, Any] | None:
    """A journal row's data, validated (None for a kind this code does not fold); a bad row is
    a one-line JournalError naming the record."""
    data: dict[str, Any] | None = None
    if kind in KNOWN_KINDS:
        data, problem = _parse(text)
        if problem is None:
            problem = check_record(kind, ts, data)
    else:
        problem = check_record(kind, ts, None)
    if problem is None and type(session) is not int:
        problem = f"session {_show(session)} is not a session id"
    if problem is not None:
        raise JournalError(f"journal {path}: record {seq} ({_show_kind(kind)}): {problem}")
    return data


def _show_kind(kind: object) -> str:
    return kind if isinstance(kind, str) and len(kind) <= 40 else _show(kind)


def _fold_recovery(
    fold: _Fold, files: list[Path], conn: sqlite3.Connection | None = None
) -> dict[Path, int]:
    """Fold the recovery files' records that the journal behind `conn` does not hold yet;
    how many each file added."""
    counts = {}
    for path in files:
        records = _read_recovery_file(path)
        skip = _already_journaled(conn, records)
        for number, (session, ts, kind, data) in enumerate(records, 1):
            if number - 1 in skip:
                continue
            try:
                fold.apply(session, ts, kind, data if kind in KNOWN_KINDS else None)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                raise JournalError(
                    f"recovery file {path}: line {number} ({kind}): cannot be booked: {exc}"
                ) from exc
        counts[path] = len(records) - len(skip)
    return counts


def _read(
    conn: sqlite3.Connection,
    path: Path,
    now_ns: int,
    recovery_files: list[Path],
    *,
    use_checkpoint: bool = True,
) -> tuple[Recovered, _Fold]:
    """Fold the journal behind `conn` (from its newest valid checkpoint) and the recovery
    files; sqlite3.Error propagates."""
    _check_version(conn, path)
    tables = _tables(conn)
    out = Recovered()
    fold = _Fold()
    day_start = now_ns - now_ns % _NS_PER_DAY
    sessions: list[dict[str, Any]] = []
    if tables:
        if not {"sessions", "records"} <= tables:
            raise JournalError(f"journal {path}: not a perpdesk journal (no sessions or records)")
        cursor = conn.execute("SELECT * FROM sessions ORDER BY id")
        names = [d[0] for d in cursor.description]
        sessions = [dict(zip(names, row, strict=True)) for row in cursor]
        out.identity = _stored_identity(conn, tables, sessions)
        start = 0
        checkpoint = None
        if use_checkpoint and "checkpoints" in tables:
            row = conn.execute(
                "SELECT seq, data FROM checkpoints ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                (max_seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
                checkpoint = _Fold.from_json(row[1]) if 0 < row[0] <= max_seq else None
                if checkpoint is not None and checkpoint.max_ts is not None:
                    if checkpoint.max_ts < day_start:  # every record so far precedes today
                        start, fold = row[0], checkpoint
                    elif checkpoint.max_ts // _NS_PER_DAY == now_ns // _NS_PER_DAY:
                        start, fold = row[0], checkpoint
                        fold.base, fold.base_taken = fold.max_day_base, True
                    # else: now is before the checkpoint's day (the clock moved back): replay
        fold.day_start = day_start
        rows = conn.execute(
            "SELECT seq, session, ts_ns, kind, data FROM records WHERE seq > ? ORDER BY seq",
            (start,),
        )
        out.last_seq, out.replayed = _fold_rows(fold, rows, path, start_seq=start)
    fold.day_start = day_start
    done = _imported_names(conn, tables)  # imported, but the rename did not happen (kill -9)
    recovery_files = [p for p in recovery_files if p.name not in done]
    in_files = _fold_recovery(fold, recovery_files, conn if tables else None)
    out.ledger = fold.ledger
    out.killed, out.kill_reason = fold.killed, fold.kill_reason
    out.open_orders = dict(fold.open_orders)
    out.last_mid = fold.last_mid
    out.day_start_net_usd = fold.base if fold.base_taken else fold.ledger.net_usd_at(fold.last_mid)
    out.sessions = len(sessions)
    out.recovery_files = list(recovery_files)
    if sessions:
        last = sessions[-1]
        mine = [p for p in recovery_files if _session_of(p) == last["id"]]
        counted = last.get("unwritten")
        unwritten = max(counted if type(counted) is int else 0, sum(in_files[p] for p in mine))
        name = mine[-1].name if mine else last.get("recovery_file")
        name = name if isinstance(name, str) else None
        out.unwritten_last_session = unwritten
        out.last_exit, out.exit_note = _exit_words(last, unwritten, name)
    return out, fold


def _open_read_only(path: Path) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(str(path)) + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    conn.execute(f"PRAGMA busy_timeout={_OPEN_BUSY_TIMEOUT_MS}")
    return conn


def recover(state_dir: Path, now_ns: int, *, use_checkpoint: bool = True) -> Recovered:
    """Rebuild inventory, P&L, the day's baseline and the kill state from the journal (from
    its newest checkpoint on) and any recovery file. Raises only JournalError, in one line."""
    state_dir = Path(state_dir)
    path = state_dir / JOURNAL_FILE
    _check_wal(path)
    files = _recovery_files(state_dir)
    if not path.exists():
        return _read_nothing(path, now_ns, files)
    conn: sqlite3.Connection | None = None
    try:
        conn = _open_read_only(path)
        rec, _ = _read(conn, path, now_ns, files, use_checkpoint=use_checkpoint)
        return rec
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot read: {exc}") from exc
    finally:
        if conn is not None:
            conn.close()


def _read_nothing(path: Path, now_ns: int, files: list[Path]) -> Recovered:
    fold = _Fold()
    fold.day_start = now_ns - now_ns % _NS_PER_DAY
    _fold_recovery(fold, files)
    rec = Recovered(ledger=fold.ledger, killed=fold.killed, kill_reason=fold.kill_reason)
    rec.open_orders, rec.last_mid, rec.recovery_files = dict(fold.open_orders), fold.last_mid, files
    rec.day_start_net_usd = fold.base if fold.base_taken else fold.ledger.net_usd_at(fold.last_mid)
    return rec


def status(state_dir: Path, now_ns: int) -> dict[str, Any]:
    """The last session's state from the journal, without starting anything: read-only, no
    lock (a running session keeps going), no journal created where there is none."""
    state_dir = Path(state_dir)
    rec = recover(state_dir, now_ns)
    mid = rec.last_mid
    inventory = 0.0 if mid is None else rec.position_base * mid
    identity = rec.identity
    return {
        "journal": str(state_dir / JOURNAL_FILE),
        "sessions": rec.sessions,
        "position_base": rec.position_base,
        "inventory_usd": inventory,
        "mark_usd": mid,
        "day_pnl_usd": rec.day_pnl_usd(),
        "net_pnl_usd": rec.ledger.net_usd_at(mid),
        "killed": rec.killed,
        "kill_reason": rec.kill_reason or None,
        "resting_orders": len(rec.open_orders),
        "last_exit": rec.last_exit,
        "exit_note": rec.exit_note,
        "venue": identity.venue if identity else None,
        "symbol": identity.symbol if identity else None,
        "account": identity.account if identity else None,
        "unwritten": rec.unwritten_last_session,
        "recovery_files": [str(p) for p in rec.recovery_files],
    }


def iter_records(state_dir: Path) -> Iterator[tuple[int, int, int, str, str]]:
    """Every journal row (seq, session, ts_ns, kind, data), for tools and tests."""
    path = Path(state_dir) / JOURNAL_FILE
    conn = _open_read_only(path)
    try:
        yield from conn.execute("SELECT seq, session, ts_ns, kind, data FROM records ORDER BY seq")
    finally:
        conn.close()


@dataclass
class OrderHistory:
    """What the journal holds of one order: when it was sent, its size, and its fills."""

    sent_ns: int | None = None
    size_base: float | None = None
    filled_base: float = 0.0
    trade_ids: set[str] = field(default_factory=set)


def order_history(
    state_dir: Path, order_ids: Iterable[str], since_session: int = 0
) -> dict[str, OrderHistory]:
    """The journal's record of these orders (sent, size, fills with their trade ids), read
    from the records of session `since_session` on: what a restart needs to book, once each,
    the fills the venue made while perpdesk was down."""
    wanted = set(order_ids)
    out = {order_id: OrderHistory() for order_id in wanted}
    path = Path(state_dir) / JOURNAL_FILE
    if not wanted or not path.exists():
        return out
    try:
        conn = _open_read_only(path)
        try:
            rows = conn.execute(
                "SELECT ts_ns, kind, data FROM records WHERE session >= ? AND "
                "kind IN ('order_sent', 'fill') ORDER BY seq",
                (since_session,),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot read: {exc}") from exc
    for ts_ns, kind, text in rows:
        data = json.loads(text)
        history = out.get(data.get("order_id"))
        if history is None:
            continue
        if kind == "order_sent":
            history.sent_ns = ts_ns
            history.size_base = data.get("size_base")
        else:
            history.filled_base += data["size_base"]
            if data.get("trade_id"):
                history.trade_ids.add(data["trade_id"])
    return out


def funding_history(state_dir: Path, before_session: int) -> tuple[int | None, set[int]]:
    """(when the sessions before `before_session` wrote their last record, in ns; the hours,
    ms // 3,600,000 of the venue's time, of the funding payments they booked, one an hour):
    from when, and which not again, a restart books the funding paid while perpdesk was down.
    A payment journaled before records said the venue's time counts in the hour it was
    journaled (funding is paid on the hour and arrives within seconds)."""
    path = Path(state_dir) / JOURNAL_FILE
    if not path.exists():
        return None, set()
    try:
        conn = _open_read_only(path)
        try:
            (last_ns,) = conn.execute(
                "SELECT MAX(ts_ns) FROM records WHERE session < ?", (before_session,)
            ).fetchone()
            rows = conn.execute(
                "SELECT ts_ns, data FROM records WHERE kind = 'funding' AND session < ? "
                "AND ts_ns >= ?",
                (before_session, (last_ns or 0) - _FUNDING_LOOKBACK_NS),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot read: {exc}") from exc
    hours: set[int] = set()
    for ts_ns, text in rows:
        try:
            venue_ms = json.loads(text).get("venue_ms")
            hours.add(int(venue_ms if venue_ms is not None else ts_ns // 1_000_000) // _MS_PER_HOUR)
        except (ValueError, TypeError, AttributeError) as exc:
            raise JournalError(f"journal {path}: a funding record cannot be read: {exc}") from exc
    return last_ns, hours


_MS_PER_HOUR = 3_600_000
_FUNDING_LOOKBACK_NS = 3 * 3_600 * 1_000_000_000
"""How far back before the last record the journal's funding is read to dedupe against."""
