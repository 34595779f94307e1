"""The append-only journal: orders, fills, commands, alerts and marks in SQLite; recovery.

One file per state directory (`journal.sqlite`, WAL mode, schema version in `user_version`),
owned by one session at a time (an OS lock on the directory itself) and readable by its owner
only. Writes go to one background thread that commits them in batches, in order. A write that
fails (full disk, I/O error, another process holding the write lock) is retried with backoff
and the records stay in memory: nothing is ever dropped. Fills, state changes, funding and
order lifecycle records are durable: `append` waits (at most min(`stall_s`, 0.25 s)) until
they are committed, and `failure` says, in one line, when the journal cannot keep up (a
durable record waiting `stall_s`, or appends blocked more than a quarter of the last 10 s),
so the engine can stop trading; `failure_count` counts failures, even one that came and went
between two looks. What `close` still cannot write goes to a recovery file that the next open
imports; a record the journal already holds (a commit that landed after `close` gave up on
it) is skipped, when reading or importing the file, and a file already imported is never
folded again.

Reading validates every record before folding it, so a corrupt or absurd row is a one-line
`JournalError` naming the file, the record and the problem, never a traceback. The writer
thread keeps a running fold of what it commits and stores it every few thousand records as a
checkpoint (exact rationals as "num/den" text), so start-up and `perpdesk status` fold only
what came after the newest checkpoint.

Times in the journal are wall-clock UTC nanoseconds (the shell stamps them), because the
daily loss limit is about the operator's calendar day, whatever clock a session ran on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import sqlite3
import stat
import sys
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from engine.events import Fill, Side
from engine.pnl import PnlLedger

JOURNAL_FILE = "journal.sqlite"
LOCK_FILE = "perpdesk.lock"
SCHEMA_VERSION = 1
EXITS = ("clean", "signal", "crash")
DURABLE = frozenset(
    {"fill", "state", "funding", "order_sent", "order_done", "cancel_all_done", "reconcile"}
)
"""Kinds `append` waits for (bounded by `stall_s`): a restart cannot do without them."""
CHECKPOINT_EVERY = 2_000
BUSY_TIMEOUT_MS = 100
_OPEN_BUSY_TIMEOUT_MS = 2_000
_NS_PER_DAY = 86_400 * 1_000_000_000
_MAX_TS = 2**62
_BATCH = 512
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0
_BACKOFF_DURABLE_MAX_S = 0.08
"""While a durable record waits, a failed write is retried at least this often."""
_APPEND_WAIT_S = 0.25
"""The longest a durable `append` blocks its caller (the event loop), whatever `stall_s`."""
_BLOCKED_WINDOW_S = 10.0
_BLOCKED_SHARE = 0.25
"""`failure` is set when appends spent more than this share of the last window blocked."""
_CLOSE_COMMIT_WAIT_S = 10.0
"""How long `close` waits for a commit under way (a hung fsync) before it gives up on it."""
_RECOVERY_NAME = re.compile(r"^recovery-(\d+)-(\d+)\.jsonl$")

_SESSION_TS_INDEX = "CREATE INDEX IF NOT EXISTS records_session_ts ON records (session, ts_ns)"
"""For recovery files: is a record already in the journal? (Created on open if missing.)"""
_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY,
        started_ns INTEGER NOT NULL,
        ended_ns INTEGER,
        exit TEXT,
        pid INTEGER NOT NULL,
        venue TEXT NOT NULL,
        symbol TEXT NOT NULL,
        account TEXT NOT NULL DEFAULT '',
        exit_ns INTEGER,
        unwritten INTEGER NOT NULL DEFAULT 0,
        recovery_file TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY,
        session INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS records_kind ON records (kind, seq)",
    _SESSION_TS_INDEX,
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        seq INTEGER PRIMARY KEY,
        session INTEGER NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS imported (name TEXT PRIMARY KEY, records INTEGER NOT NULL)",
)
# columns the version-0 journal (the first release) lacks
_V0_MISSING_COLUMNS = (
    ("account", "TEXT NOT NULL DEFAULT ''"),
    ("exit_ns", "INTEGER"),
    ("unwritten", "INTEGER NOT NULL DEFAULT 0"),
    ("recovery_file", "TEXT"),
)


class JournalError(Exception):
    """The journal cannot be opened or read; the message (one line) names the file and the
    problem."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


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


@dataclass(frozen=True)
class CloseReport:
    """What `Journal.close` could not do: records not journaled, where they went instead."""

    unwritten: int
    recovery_file: Path | None
    exit_recorded: bool
    in_flight: int = 0
    """Of `unwritten`, records whose commit was under way and never returned (a hung
    fsync): they may be in the journal too; reading the recovery file skips them then."""


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/perpdesk`, or `~/.local/state/perpdesk`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "perpdesk"


# ---- validation -------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _g(bound: float) -> str:
    return f"{bound:g}".replace("e+0", "e").replace("e+", "e")


def _number(
    data: dict[str, Any],
    name: str,
    lo: float,
    hi: float,
    *,
    lo_closed: bool = False,
    hi_closed: bool = False,
    nullable: bool = False,
    optional: bool = False,
) -> str | None:
    """A problem with `data[name]` as a finite number in the interval, or None."""
    if name not in data:
        return None if optional else f"{name} is missing"
    v = data[name]
    if v is None and nullable:
        return None
    interval = f"{'[' if lo_closed else '('}{_g(lo)}, {_g(hi)}{']' if hi_closed else ')'}"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"{name} {_show(v)} is not a number in {interval}"
    if isinstance(v, float) and not math.isfinite(v):
        return f"{name} {_show(v)} is not a number in {interval}"
    above = v >= lo if lo_closed else v > lo
    below = v <= hi if hi_closed else v < hi
    if not (above and below):
        return f"{name} {_show(v)} is not a number in {interval}"
    return None


def _text(data: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    if name not in data:
        return None if optional else f"{name} is missing"
    v = data[name]
    if not isinstance(v, str) and not (optional and v is None):
        return f"{name} {_show(v)} is not text"
    return None


def _side(data: dict[str, Any], *, optional: bool = False) -> str | None:
    if "side" not in data:
        return None if optional else "side is missing"
    v = data["side"]
    if isinstance(v, bool) or not isinstance(v, int) or v not in (1, -1):
        return f"side {_show(v)} is not 1 (buy) or -1 (sell)"
    return None


def _check_fill(d: dict[str, Any]) -> str | None:
    if "is_maker" not in d:
        maker = "is_maker is missing"
    elif not isinstance(d["is_maker"], bool):
        maker = f"is_maker {_show(d['is_maker'])} is not true or false"
    else:
        maker = None
    return (
        _text(d, "order_id")
        or _side(d)
        or _number(d, "price", 0, 1e9)
        or _number(d, "size_base", 0, 1e6)
        or _number(d, "fee_usd", -1e7, 1e7)
        or maker
        or _number(d, "leaves_base", 0, 1e6, lo_closed=True)
        or _number(d, "mid", 0, 1e9, nullable=True)
    )


def _check_order_sent(d: dict[str, Any]) -> str | None:
    return (
        _text(d, "order_id")
        or _side(d, optional=True)
        or _number(d, "price", 0, 1e9, optional=True, nullable=True)
        or _number(d, "size_base", 0, 1e6, optional=True, nullable=True)
    )


_CHECKS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "fill": _check_fill,
    "mark": lambda d: _number(d, "mid", 0, 1e9),
    "funding": lambda d: (
        _number(d, "rate", -0.05, 0.05, lo_closed=True, hi_closed=True)
        or _number(d, "mark_price", 0, 1e9)
    ),
    "order_sent": _check_order_sent,
    "order_done": lambda d: _text(d, "order_id"),
    "cancel_sent": lambda d: _text(d, "order_id"),
    "cancel_refused": lambda d: _text(d, "order_id"),
    "cancel_all_sent": lambda d: _text(d, "reason", optional=True),
    "cancel_all_done": lambda d: None,
    "reconcile": lambda d: (
        _number(d, "position_base", -1e6, 1e6, lo_closed=True, hi_closed=True)
        or _number(d, "mid", 0, 1e9)
    ),
    "state": lambda d: _text(d, "state") or _text(d, "reason", optional=True),
    "alert": lambda d: _text(d, "severity") or _text(d, "control") or _text(d, "message"),
    "command": lambda d: _text(d, "command"),
}
KNOWN_KINDS = frozenset(_CHECKS)


def check_record(kind: str, ts_ns: object, data: object) -> str | None:
    """What is wrong with a record of a known kind, in a few words; None if it can be folded.
    Unknown kinds pass (a newer perpdesk may write kinds this one does not know)."""
    if isinstance(ts_ns, bool) or not isinstance(ts_ns, int) or not 0 <= ts_ns <= _MAX_TS:
        return f"ts_ns {_show(ts_ns)} is not an integer in [0, 2**62]"
    check = _CHECKS.get(kind)
    if check is None:
        return None
    if not isinstance(data, dict):
        return f"data {_show(data)} is not a JSON object"
    return check(data)


def _parse(text: object) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(text, str | bytes):
        return None, f"data {_show(text)} is not JSON text"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"data is not JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"data {_show(data)} is not a JSON object"
    return data, None


# ---- exact state: the ledger and the fold -----------------------------------------------------


def _frac_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _frac(value: object) -> Fraction:
    if not isinstance(value, str) or len(value) > 10_000:
        raise ValueError(f"not a fraction: {_show(value)}")
    return Fraction(value)


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {_show(value)}")
    return float(value)


_LEDGER_TERMS = ("cash", "position", "spread", "rebates", "inventory", "hedge", "funding")
_LEDGER_FLOATS = ("fees_paid_usd", "maker_volume_usd", "taker_volume_usd")


def ledger_state(ledger: PnlLedger) -> dict[str, Any]:
    """The ledger's exact state: rationals as "num/den" text, float totals as floats."""
    state: dict[str, Any] = {name: _frac_text(getattr(ledger, name)) for name in _LEDGER_TERMS}
    state["mark"] = None if ledger._mark is None else _frac_text(ledger._mark)
    for name in _LEDGER_FLOATS:
        state[name] = getattr(ledger, name)
    state["fills"] = ledger.fills
    return state


def ledger_from_state(state: dict[str, Any]) -> PnlLedger:
    """The ledger `ledger_state` described, exactly; ValueError/TypeError/KeyError if the state
    is not one."""
    ledger = PnlLedger()
    for name in _LEDGER_TERMS:
        setattr(ledger, name, _frac(state[name]))
    ledger._mark = None if state["mark"] is None else _frac(state["mark"])
    for name in _LEDGER_FLOATS:
        setattr(ledger, name, _finite(state[name]))
    fills = state["fills"]
    if isinstance(fills, bool) or not isinstance(fills, int) or fills < 0:
        raise ValueError(f"fills {_show(fills)} is not a count")
    ledger.fills = fills
    ledger._refresh_floats()
    return ledger


class _Fold:
    """Every record folded in order: the account, the risk state and two day baselines.

    `max_day_base` is the net P&L just before the first record whose ts is on or after the
    start of the UTC day of the latest ts seen (`max_ts`), which is what a checkpoint needs to
    answer "today's baseline" for a `now` on that day. `day_start`/`base` are the same for the
    day of the `now` a recovery was asked for."""

    __slots__ = (
        "base",
        "base_taken",
        "day_start",
        "kill_reason",
        "killed",
        "last_mid",
        "ledger",
        "max_day_base",
        "max_ts",
        "open_orders",
    )

    def __init__(self) -> None:
        self.ledger = PnlLedger()
        self.last_mid: float | None = None
        self.killed = False
        self.kill_reason = ""
        self.open_orders: dict[str, int] = {}
        self.max_ts: int | None = None
        self.max_day_base = 0.0
        self.day_start: int | None = None
        self.base = 0.0
        self.base_taken = False

    def apply(self, session: int, ts: int, kind: str, data: dict[str, Any] | None) -> None:
        ledger = self.ledger
        if not self.base_taken and self.day_start is not None and ts >= self.day_start:
            self.base = ledger.net_usd_at(self.last_mid)
            self.base_taken = True
        max_ts = self.max_ts
        if max_ts is None or ts > max_ts:
            if max_ts is None or ts // _NS_PER_DAY != max_ts // _NS_PER_DAY:
                self.max_day_base = ledger.net_usd_at(self.last_mid)
            self.max_ts = ts
        if data is None:
            return
        if kind == "mark":
            self.last_mid = data["mid"]
            ledger.mark(data["mid"])
        elif kind == "fill":
            ledger.on_fill(
                side=Side(data["side"]),
                price=data["price"],
                size_base=data["size_base"],
                fee_usd=data["fee_usd"],
                is_maker=data["is_maker"],
                mid=data["mid"],
            )
            if data["leaves_base"] <= 0:
                self.open_orders.pop(data["order_id"], None)
        elif kind == "funding":
            ledger.on_funding(rate=data["rate"], mark_price=data["mark_price"])
        elif kind == "reconcile":  # the venue's position adopted at mid: no fee, no P&L jump
            self.last_mid = data["mid"]
            ledger.reconcile(data["position_base"], data["mid"])
        elif kind == "order_sent":
            self.open_orders[data["order_id"]] = session
        elif kind == "order_done":
            self.open_orders.pop(data["order_id"], None)
        elif kind == "cancel_all_done":
            self.open_orders.clear()
        elif kind == "state":
            self.killed = data["state"] == "KILLED"
            self.kill_reason = (data.get("reason") or "") if self.killed else ""

    def to_json(self) -> str:
        state = {
            "version": SCHEMA_VERSION,
            "ledger": ledger_state(self.ledger),
            "last_mid": self.last_mid,
            "killed": self.killed,
            "kill_reason": self.kill_reason,
            "open_orders": [[order_id, s] for order_id, s in self.open_orders.items()],
            "max_ts": self.max_ts,
            "day": None if self.max_ts is None else self.max_ts // _NS_PER_DAY,
            "day_base": self.max_day_base,
        }
        return json.dumps(state, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: object) -> _Fold | None:
        """The fold a checkpoint stored, or None if it is not a valid one."""
        try:
            state, problem = _parse(text)
            if state is None or problem or state.get("version") != SCHEMA_VERSION:
                return None
            fold = cls()
            fold.ledger = ledger_from_state(state["ledger"])
            last_mid = state["last_mid"]
            if last_mid is not None and _number(state, "last_mid", 0, 1e9):
                return None
            fold.last_mid = last_mid
            killed, reason = state["killed"], state["kill_reason"]
            if not isinstance(killed, bool) or not isinstance(reason, str):
                return None
            fold.killed, fold.kill_reason = killed, reason
            for order_id, session in state["open_orders"]:
                if not isinstance(order_id, str) or type(session) is not int:
                    return None
                fold.open_orders[order_id] = session
            max_ts = state["max_ts"]
            if type(max_ts) is not int or not 0 <= max_ts <= _MAX_TS:
                return None
            if state["day"] != max_ts // _NS_PER_DAY:
                return None
            fold.max_ts = max_ts
            fold.max_day_base = _finite(state["day_base"])
            return fold
        except (ValueError, TypeError, KeyError, ZeroDivisionError, OverflowError):
            return None


# ---- files: the lock, permissions, recovery files ---------------------------------------------


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _shm(path: Path) -> Path:
    return path.with_name(path.name + "-shm")


def _check_wal(path: Path) -> None:
    if not path.exists() and _wal(path).exists():
        raise JournalError(
            f"journal {path} is missing but its write-ahead log {_wal(path).name} is there "
            "(the last records of a session); restore the journal file or move the log away"
        )


def _make_private(path: Path, mode: int) -> None:
    """Strip group and other permissions (never add any: a read-only file stays read-only)."""
    with contextlib.suppress(FileNotFoundError):
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & ~mode & 0o777:
            os.chmod(path, current & mode)


def _is_default_state_dir(state_dir: Path) -> bool:
    try:
        return state_dir.resolve() == default_state_dir().resolve()
    except (OSError, RuntimeError):
        return False


def _private_state_dir(state_dir: Path) -> None:
    """Create the state directory (0700), or check an existing one: one that other users can
    read or write is refused (it may be `.`, a shared directory, /tmp: not ours to chmod),
    except the default state directory, which is ours and is made private."""
    try:
        state_dir.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    else:
        _make_private(state_dir, 0o700)  # mkdir's mode is already that, less the umask
        return
    mode = stat.S_IMODE(os.stat(state_dir).st_mode)
    if not mode & 0o066 or not stat.S_ISDIR(os.stat(state_dir).st_mode):
        return  # private already (or not a directory: opening it says so)
    if _is_default_state_dir(state_dir):
        _make_private(state_dir, 0o700)
        return
    raise JournalError(
        f"state directory {state_dir} can be read or written by other users (mode "
        f"{mode:04o}); run `chmod 700 {state_dir}` or pass another --state-dir"
    )


def _lock_state_dir(state_dir: Path) -> int:
    """One session per state directory, enforced by a lock on the directory itself (deleting
    the lock file does not release it); the lock file only says who holds it."""
    try:
        _private_state_dir(state_dir)
        fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise JournalError(f"state directory {state_dir}: cannot use it: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        try:
            holder = (state_dir / LOCK_FILE).read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise JournalError(
            f"state directory {state_dir} is in use by perpdesk pid {holder[:20]}; "
            "stop that session or pass another --state-dir"
        ) from None
    try:
        lock = os.open(state_dir / LOCK_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(lock, 0o600)
            os.write(lock, str(os.getpid()).encode())
        finally:
            os.close(lock)
    except OSError as exc:
        os.close(fd)
        raise JournalError(f"state directory {state_dir}: cannot write in it: {exc}") from exc
    return fd


def _recovery_files(state_dir: Path) -> list[Path]:
    """Recovery files not yet imported, oldest session first."""
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise JournalError(f"state directory {state_dir}: cannot list it: {exc}") from exc
    found = []
    for name in names:
        match = _RECOVERY_NAME.match(name)
        if match:
            found.append((int(match[1]), int(match[2]), state_dir / name))
    return [path for _, _, path in sorted(found)]


def _session_of(recovery_file: Path) -> int:
    match = _RECOVERY_NAME.match(recovery_file.name)
    return int(match[1]) if match else 0


Row = tuple[int, int, str, dict[str, Any] | None]
"""(session, ts_ns, kind, data): data is None for a kind this code does not fold."""


_RecoveryRecord = tuple[int, int, str, dict[str, Any]]
"""(session, ts_ns, kind, data) of a recovery file's line."""


def _read_recovery_file(path: Path) -> list[_RecoveryRecord]:
    """The records of a recovery file, each validated; a bad line is a one-line error."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(f"recovery file {path}: cannot read it: {exc}") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        obj, problem = _parse(line)
        kind = obj.get("kind") if obj is not None else None
        if obj is not None:
            session, ts, data = obj.get("session"), obj.get("ts_ns"), obj.get("data")
            if not isinstance(kind, str):
                problem = f"kind {_show(kind)} is not text"
            elif type(session) is not int or session < 0:
                problem = f"session {_show(session)} is not a session id"
            elif not isinstance(data, dict):
                problem = f"data {_show(data)} is not a JSON object"
            else:
                problem = check_record(kind, ts, data)
        if problem is not None:
            label = f" ({kind})" if isinstance(kind, str) else ""
            raise JournalError(f"recovery file {path}: line {number}{label}: {problem}")
        assert obj is not None
        records.append((obj["session"], obj["ts_ns"], obj["kind"], obj["data"]))
    return records


def _compact(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


def _canonical(text: object) -> object:
    try:
        return _compact(json.loads(text))  # type: ignore[arg-type]
    except (ValueError, TypeError, RecursionError):
        return text


def _already_journaled(conn: sqlite3.Connection | None, records: list[_RecoveryRecord]) -> set[int]:
    """Which records of a recovery file (indexes) the journal already holds: same session,
    ts_ns, kind and data (a batch whose commit landed after `close` gave up waiting for it).
    Each journal row accounts for one recovery record at most."""
    if conn is None or not records:
        return set()
    spans: dict[int, tuple[int, int]] = {}
    for session, ts, _, _ in records:
        lo, hi = spans.get(session, (ts, ts))
        spans[session] = (min(lo, ts), max(hi, ts))
    there: Counter[tuple[int, int, str, object]] = Counter()
    for session, (lo, hi) in spans.items():
        rows = conn.execute(
            "SELECT ts_ns, kind, data FROM records WHERE session = ? AND ts_ns BETWEEN ? AND ?",
            (session, lo, hi),
        )
        for ts, kind, text in rows:
            there[(session, ts, kind, _canonical(text))] += 1
    skip = set()
    if there:
        for i, (session, ts, kind, data) in enumerate(records):
            key = (session, ts, kind, _compact(data))
            if there[key] > 0:
                there[key] -= 1
                skip.add(i)
    return skip


def _imported_names(conn: sqlite3.Connection, tables: set[str]) -> set[str]:
    if "imported" not in tables:
        return set()
    return {str(name) for (name,) in conn.execute("SELECT name FROM imported")}


# ---- reading and recovery ---------------------------------------------------------------------


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
        try:
            fold.apply(session, ts, kind, data)
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            raise JournalError(
                f"journal {path}: record {seq} ({_show_kind(kind)}): cannot be booked: {exc}"
            ) from exc
    return last, count


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


# ---- writing ----------------------------------------------------------------------------------


def _default_connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, check_same_thread=False, isolation_level=None)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _ensure_schema(conn: sqlite3.Connection, path: Path, identity: Identity) -> Identity:
    """Create the schema in a new journal or migrate a version-0 one in place; the identity
    the journal stores."""
    version = _check_version(conn, path)
    tables = _tables(conn)
    if version < SCHEMA_VERSION:
        if tables and not {"sessions", "records"} <= tables:
            raise JournalError(f"journal {path}: not a perpdesk journal (no sessions or records)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if "sessions" in tables:
                have = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
                for name, decl in _V0_MISSING_COLUMNS:
                    if name not in have:
                        conn.execute(f"ALTER TABLE sessions ADD COLUMN {name} {decl}")
            for statement in _SCHEMA_V1:
                conn.execute(statement)
            first = conn.execute(
                "SELECT venue, symbol FROM sessions ORDER BY id LIMIT 1"
            ).fetchone()
            stored = identity if first is None else Identity(str(first[0]), str(first[1]), "")
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                list(stored._asdict().items()),
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        tables = _tables(conn)
    conn.execute(_SESSION_TS_INDEX)  # a journal of an earlier build of schema version 1
    stored_or_none = _stored_identity(conn, tables, [])
    return identity if stored_or_none is None else stored_or_none


def _insert_rows(conn: sqlite3.Connection, rows: list[tuple[int, int, str, str]]) -> int:
    """Append (session, ts_ns, kind, data) rows in one transaction; the last seq. The caller
    rolls back on error."""
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
    conn.executemany(
        "INSERT INTO records (seq, session, ts_ns, kind, data) VALUES (?, ?, ?, ?, ?)",
        [(last + i, *row) for i, row in enumerate(rows, 1)],
    )
    return int(last) + len(rows)


def _import_recovery_files(conn: sqlite3.Connection, state_dir: Path) -> None:
    """Records a session could not journal come back as that session's records; each file is
    imported once (the import is recorded in the same transaction) and renamed."""
    for path in _recovery_files(state_dir):
        records = _read_recovery_file(path)
        session = _session_of(path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM imported WHERE name = ?", (path.name,)).fetchone()
            if done is None:
                skip = _already_journaled(conn, records)
                rows = [
                    (s, ts, kind, _compact(data))
                    for i, (s, ts, kind, data) in enumerate(records)
                    if i not in skip
                ]
                if rows:
                    _insert_rows(conn, rows)
                conn.execute(
                    "INSERT INTO imported (name, records) VALUES (?, ?)", (path.name, len(rows))
                )
                conn.execute(
                    "UPDATE sessions SET unwritten = ?, recovery_file = ? "
                    "WHERE id = ? AND unwritten < ?",
                    (len(rows), path.name, session, len(rows)),
                )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        try:
            os.replace(path, path.with_name(path.name + ".imported"))
        except OSError as exc:
            raise JournalError(
                f"recovery file {path}: imported but cannot rename it: {exc}"
            ) from exc


_Pending = tuple[int, int, str, str, float]
"""(n, ts_ns, kind, data as JSON, monotonic time appended)"""


class Journal:
    """Writes one session's records. `append` never raises and never drops a record; durable
    kinds wait (bounded) until committed; `failure` says when the journal cannot keep up."""

    def __init__(
        self,
        state_dir: Path,
        *,
        venue: str,
        symbol: str,
        started_ns: int,
        account: str = "",
        adopt: bool = False,
        stall_s: float = 2.0,
        connect: Callable[[Path], sqlite3.Connection] | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        fsync: bool = False,
    ) -> None:
        """`fsync=True` syncs every commit to the disk (SQLite synchronous=FULL): committed
        records then survive a power loss, at ~0.3 ms per durable append on a virtual disk.
        By default (synchronous=NORMAL in WAL mode) a committed record survives the process
        being killed, and a power loss can roll back only the last commits."""
        state_dir = Path(state_dir)
        self.state_dir = state_dir
        self.path = state_dir / JOURNAL_FILE
        self.identity = Identity(venue, symbol, account)
        self.stall_s = stall_s
        self.checkpoint_every = max(1, checkpoint_every)
        self._failure: str | None = None
        self.failure_count = 0
        """How many times `failure` went from None to set: a failure that came and went
        between two looks at `failure` still shows here."""
        self.last_failure: str | None = None
        """The most recent failure's text (kept after it clears)."""
        self.recovered_note: str | None = None
        """Set when a failure clears ("journal writable again: N records written late")."""
        self.write_errors = 0
        """Failed write attempts (each retried)."""
        self._dir_fd = _lock_state_dir(state_dir)
        self._conn: sqlite3.Connection | None = None
        try:
            self._open(connect, started_ns, adopt, fsync)
        except BaseException as exc:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            os.close(self._dir_fd)
            if isinstance(exc, JournalError):
                raise
            if isinstance(exc, OSError | sqlite3.Error):
                raise JournalError(f"journal {self.path}: cannot open: {exc}") from exc
            raise
        self._cond = threading.Condition()
        self._db_lock = threading.Lock()
        self._pending: deque[_Pending] = deque()
        self._durable: deque[tuple[int, float, str]] = deque()  # (n, appended at, kind)
        self._appended = 0
        self._written = 0
        self._failing_since: float | None = None
        self._error: str | None = None
        self._refused: str | None = None
        self._late = 0
        self._closing = False
        self._stop = False
        self._kick = False
        self._report: CloseReport | None = None
        self._exit_recorded = False
        self._inflight: list[_Pending] | None = None  # the batch being committed
        self._blocked: deque[tuple[float, float]] = deque()  # (start, end) of append waits
        self._blocked_sum = 0.0
        self._writer_done = False
        self._handoff = False  # close left the connection and the lock to the writer
        self._close_commit_wait_s = _CLOSE_COMMIT_WAIT_S
        self._stderr_header = False
        self._thread = threading.Thread(target=self._writer, name="journal", daemon=True)
        self._thread.start()
        if self.recovered.identity is not None and self.recovered.identity != self.identity:
            old = self.recovered.identity
            self.append(
                "adopted",
                started_ns,
                {"venue": old.venue, "symbol": old.symbol, "account": old.account},
            )

    def _open(
        self,
        connect: Callable[[Path], sqlite3.Connection] | None,
        started_ns: int,
        adopt: bool,
        fsync: bool,
    ) -> None:
        path = self.path
        _check_wal(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # before SQLite: -wal/-shm copy it
        os.close(fd)
        for name in (path, _wal(path), _shm(path)):
            _make_private(name, 0o600)
        conn = (connect or _default_connect)(path)
        self._conn = conn
        conn.isolation_level = None
        conn.execute(f"PRAGMA busy_timeout={_OPEN_BUSY_TIMEOUT_MS}")
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise JournalError(f"journal {path}: cannot switch to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        stored = _ensure_schema(conn, path, self.identity)
        if stored != self.identity:
            if not adopt:
                raise JournalError(
                    f"journal {path} belongs to {stored.describe()}, not "
                    f"{self.identity.describe()}; pass --adopt-journal to carry it on anyway"
                )
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                list(self.identity._asdict().items()),
            )
        _import_recovery_files(conn, self.state_dir)
        rec, fold = _read(conn, path, started_ns, [])
        rec.identity = stored
        # The writer thread goes on folding into `fold`: the engine gets copies of its own
        # (the core's ledger must never be shared with another thread's bookkeeping).
        rec.ledger = ledger_from_state(ledger_state(fold.ledger))
        rec.open_orders = dict(rec.open_orders)
        self.recovered = rec
        """What the journal held when this session opened it (as `recover` would say)."""
        fold.day_start = None
        self._fold: _Fold | None = fold
        self._last_seq = rec.last_seq
        self._since_checkpoint = rec.replayed  # a long replay: checkpoint after the first batch
        cursor = conn.execute(
            "INSERT INTO sessions (started_ns, pid, venue, symbol, account) VALUES (?, ?, ?, ?, ?)",
            (started_ns, os.getpid(), *self.identity),
        )
        self.session = int(cursor.lastrowid or 0)
        for name in (_wal(path), _shm(path)):
            _make_private(name, 0o600)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    # ---- appending ----------------------------------------------------------------------------

    @property
    def unwritten(self) -> int:
        """Records appended but not yet committed."""
        return len(self._pending)

    def append(self, kind: str, ts_ns: int, data: dict[str, Any]) -> None:
        """Queue a record. Durable kinds also wait until committed, at most min(`stall_s`,
        0.25 s), and not at all once the journal is failing. A record that would make the
        journal unreadable (NaN price, absurd size, ...) is kept as a `refused` record and
        sets `failure`."""
        problem: str | None
        try:
            problem = check_record(kind, ts_ns, data)
            # NaN/inf pass in fields nothing folds (an alert's value); folded ones are checked
            text = "" if problem else json.dumps(data, separators=(",", ":"))
        except Exception as exc:  # append never raises
            problem = f"cannot be written as JSON: {exc}"
        refused = ""
        if problem is not None:
            problem = _one_line(problem)
            refused = f"journal refused a {_show_kind(kind)} record: {problem}"
            text = json.dumps(
                {"kind": repr(kind), "ts_ns": repr(ts_ns), "data": repr(data), "problem": problem}
            )
            ts_ns = ts_ns if type(ts_ns) is int and 0 <= ts_ns <= _MAX_TS else 0
            kind = "refused"
        cond = self._cond
        with cond:
            if problem is not None:
                self._refused = self._refused or refused
                self._raise_failure(refused)
            if self._report is not None or self._stop:
                self._late_append(kind, ts_ns, text)
                return
            self._appended += 1
            n = self._appended
            now = time.monotonic()
            self._pending.append((n, ts_ns, kind, text, now))
            durable = kind in DURABLE
            if durable:
                self._durable.append((n, now, kind))
            cond.notify_all()
            if not durable:
                return
            self._check_stall(now)  # appends blocked too long already: do not block again
            if self._failure is not None:
                return
            deadline = now + min(self.stall_s, _APPEND_WAIT_S)
            while self._written < n and self._failure is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                cond.wait(remaining)
            end = time.monotonic()
            self._blocked.append((now, end))
            self._blocked_sum += end - now
            self._check_stall(end)

    def fill(self, ts_ns: int, fill: Fill, mid: float | None) -> None:
        self.append("fill", ts_ns, {
            "order_id": fill.order_id, "side": int(fill.side), "price": fill.price,
            "size_base": fill.size_base, "fee_usd": fill.fee_usd, "is_maker": fill.is_maker,
            "leaves_base": fill.leaves_base, "mid": mid,
        })  # fmt: skip

    def mark(self, ts_ns: int, mid: float) -> None:
        self.append("mark", ts_ns, {"mid": mid})

    def take_recovered_note(self) -> str | None:
        """The "journal writable again" note, once."""
        with self._cond:
            note, self.recovered_note = self.recovered_note, None
        return note

    def _late_append(self, kind: str, ts_ns: int, text: str) -> None:
        """After close nothing can be journaled: the record goes to stderr, never nowhere."""
        if not self._stderr_header:
            self._stderr_header = True
            print(f"perpdesk: journal {self.path} is closed; records appended after close follow "
                  "as JSON lines", file=sys.stderr)  # fmt: skip
        line = {"session": self.session, "ts_ns": ts_ns, "kind": kind, "data": json.loads(text)}
        print(json.dumps(line, separators=(",", ":")), file=sys.stderr)

    @property
    def failure(self) -> str | None:
        """One line while the journal cannot keep up: a durable record not committed within
        `stall_s`, writes failing that long, or appends blocked more than a quarter of the
        last 10 s; None again once every record is written (a refused record keeps it)."""
        with self._cond:
            if self._failure is None and self._report is None:  # a commit may be stuck
                self._check_stall(time.monotonic(), blocked=False)
            return self._failure

    def _raise_failure(self, text: str) -> None:
        """Called with the condition held."""
        if self._failure is None:
            self._failure = text
            self.failure_count += 1
            self.last_failure = text

    def _set_failure(self, now: float, reason: str | None = None) -> None:
        """Called with the condition held."""
        if self._failure is not None:
            return
        waiting = f"({len(self._pending)} records waiting)"
        why = "; ".join(x for x in (self._error, reason) if x) or "not written"
        if self._durable or self._pending:
            kind = self._durable[0][2] if self._durable else self._pending[0][2]
            article = "an" if kind[:1] in "aeiou" else "a"
            text = f"journal cannot record {article} {kind}: {why} {waiting}"
        else:
            text = f"journal cannot keep up: {why} {waiting}"
        self._raise_failure(_one_line(text))

    def _stalled(self, now: float) -> bool:
        """Called with the condition held: writes failing, or a durable record waiting, for
        `stall_s`."""
        if self._failing_since is not None and now - self._failing_since >= self.stall_s:
            return True
        return bool(self._durable) and now - self._durable[0][1] >= self.stall_s

    def _blocked_s(self, now: float) -> float:
        """Called with the condition held: seconds appends spent blocked in the last window."""
        start = now - _BLOCKED_WINDOW_S
        blocked = self._blocked
        while blocked and blocked[0][1] <= start:
            begin, end = blocked.popleft()
            self._blocked_sum -= end - begin
        if not blocked:
            self._blocked_sum = 0.0
            return 0.0
        return self._blocked_sum - max(0.0, start - blocked[0][0])  # the first one, clipped

    def _check_stall(self, now: float, *, blocked: bool = True) -> None:
        """Called with the condition held: set `failure` if the journal cannot keep up (the
        share of time appends spent blocked is looked at only when `blocked`)."""
        if self._failure is not None:
            return
        if self._stalled(now):
            waited = f"not written within {self.stall_s:g} s" if self._durable else None
            self._set_failure(now, waited)
            return
        spent = self._blocked_s(now) if blocked else 0.0
        if spent > _BLOCKED_SHARE * _BLOCKED_WINDOW_S:
            self._set_failure(
                now, f"appends blocked {spent:.1f} s of the last {_BLOCKED_WINDOW_S:g} s"
            )

    # ---- the writer thread --------------------------------------------------------------------

    def _writer(self) -> None:
        cond = self._cond
        backoff = _BACKOFF_FIRST_S
        while True:
            with cond:
                while not self._pending and not self._stop:
                    cond.wait()
                if self._stop:  # close has waited for the queue; it takes what is left
                    break
                batch = [self._pending[i] for i in range(min(_BATCH, len(self._pending)))]
                self._inflight = batch
            try:
                with self._db_lock:
                    last_seq = self._commit(batch)
            except Exception as exc:  # any failure is retried; the records stay queued
                with cond:
                    self._inflight = None  # rolled back: close may take the batch
                    self.write_errors += 1
                    self._error = _one_line(exc) or type(exc).__name__
                    now = time.monotonic()
                    if self._failing_since is None:
                        self._failing_since = now
                    if self._stalled(now):
                        self._set_failure(now)
                    cond.notify_all()
                    if self._closing:
                        backoff = min(backoff, 0.1)
                    self._retry_wait(now, backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            backoff = _BACKOFF_FIRST_S
            with cond:
                self._inflight = None
                last = batch[-1][0]
                pending = self._pending
                while pending and pending[0][0] <= last:  # close may have taken them already
                    pending.popleft()
                self._written = max(self._written, last)
                durable = self._durable
                while durable and durable[0][0] <= last:
                    durable.popleft()
                self._failing_since = None
                self._error = None
                if self._failure is not None:
                    self._late += len(batch)
                    if not pending and self._failure != self._refused:
                        self.recovered_note = (
                            f"journal writable again: {self._late} records written late"
                        )
                        self._failure = self._refused
                        self._late = 0
                elif self._stalled(time.monotonic()):  # commits go through, too slowly
                    self._set_failure(time.monotonic(), f"not written within {self.stall_s:g} s")
                cond.notify_all()
            self._fold_committed(batch, last_seq)
        self._checkpoint(final=True)
        with cond:
            self._writer_done = True
            release = self._handoff
        if release:  # close gave up waiting for this thread: it releases what close left
            self._release()

    def _retry_wait(self, failed_at: float, backoff: float) -> None:
        """Called with the condition held, after a failed write: wait before the retry, at
        most `_BACKOFF_DURABLE_MAX_S` while a durable record waits, and waking up when a stall
        is due, to say so."""
        cond = self._cond
        self._kick = False
        while not self._stop and not self._kick:
            now = time.monotonic()
            wait = min(backoff, _BACKOFF_DURABLE_MAX_S) if self._durable else backoff
            deadline = failed_at + wait
            if self._failure is None:
                assert self._failing_since is not None
                due = [self._failing_since + self.stall_s]
                if self._durable:
                    due.append(self._durable[0][1] + self.stall_s)
                deadline = min(deadline, max(min(due), failed_at + 0.01))
            remaining = deadline - now
            if remaining <= 0:
                break
            cond.wait(remaining)  # an append notifies: a durable record shortens the wait
        if self._failure is None and self._stalled(time.monotonic()):
            self._set_failure(time.monotonic())

    def _commit(self, batch: list[_Pending]) -> int:
        conn = self._conn
        assert conn is not None
        _rollback(conn)  # a transaction a failed rollback left open
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = _insert_rows(
                conn, [(self.session, ts, kind, text) for _, ts, kind, text, _ in batch]
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return last

    def _fold_committed(self, batch: list[_Pending], last_seq: int) -> None:
        """The writer's running fold (off the event loop) and, every `checkpoint_every`
        records, a checkpoint of it."""
        fold = self._fold
        self._last_seq = last_seq
        if fold is None:
            return
        try:
            for _, ts, kind, text, _ in batch:
                data = json.loads(text) if kind in KNOWN_KINDS else None
                fold.apply(self.session, ts, kind, data)
        except Exception:  # no more checkpoints; recovery replays instead
            self._fold = None
            return
        self._since_checkpoint += len(batch)
        if self._since_checkpoint >= self.checkpoint_every:
            self._checkpoint()

    def _checkpoint(self, *, final: bool = False) -> None:
        fold, conn = self._fold, self._conn
        if fold is None or conn is None or self._since_checkpoint == 0 or fold.max_ts is None:
            return
        try:
            text = fold.to_json()
            with self._db_lock:
                _rollback(conn)
                conn.execute(
                    "INSERT OR REPLACE INTO checkpoints (seq, session, data) VALUES (?, ?, ?)",
                    (self._last_seq, self.session, text),
                )
            self._since_checkpoint = 0
        except (sqlite3.Error, ValueError, TypeError, OverflowError):
            pass  # a checkpoint is a shortcut: the next one, or a replay, does without it

    # ---- ending -------------------------------------------------------------------------------

    def _bounded_update(self, sql: str, params: tuple[Any, ...], deadline: float) -> bool:
        """Run one statement on the sessions row, retrying until `deadline` (one try at
        least)."""
        conn = self._conn
        if conn is None:
            return False
        backoff = 0.02
        while True:
            got = self._db_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            if got:
                try:
                    _rollback(conn)
                    conn.execute(sql, params)
                    return True
                except Exception:  # retried, then reported
                    pass
                finally:
                    self._db_lock.release()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, 0.5)

    def mark_exit(self, exit: str, ts_ns: int) -> bool:
        """Record how the session is ending, now, before the shutdown (cancel all) starts, so
        a crash or hang during it still shows the exit. Waits at most `stall_s` (one try when
        the journal is already failing; `close` tries again). True if recorded."""
        if exit not in EXITS:
            raise ValueError(f"exit must be one of {EXITS}, got {exit!r}")
        bound = 0.0 if self._failure is not None else self.stall_s
        self._exit_recorded = self._bounded_update(
            "UPDATE sessions SET exit = ?, exit_ns = ? WHERE id = ?",
            (exit, ts_ns, self.session),
            time.monotonic() + bound,
        )
        return self._exit_recorded

    def close(self, exit: str, ended_ns: int) -> CloseReport:
        """Flush every record (retrying for up to max(stall_s, 2 s)), then record how the
        session ended and how many records could not be journaled; those go to a recovery
        file (or, failing that, to stderr).

        A record is never both journaled and in the recovery file for good: a commit under
        way is waited for (up to 10 s), and a batch whose commit neither lands nor fails by
        then (a hung fsync) goes to the file marked `in_flight`; reading and importing the
        file skip any record the journal holds already."""
        if exit not in EXITS:
            raise ValueError(f"exit must be one of {EXITS}, got {exit!r}")
        cond = self._cond
        with cond:
            if self._report is not None:
                return self._report
            self._closing = True
            self._kick = True
            cond.notify_all()
            start = time.monotonic()
            deadline = start + max(self.stall_s, 2.0)
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                cond.wait(remaining)
            self._stop = True  # the writer starts no other batch
            cond.notify_all()
            commit_deadline = max(deadline, start + self._close_commit_wait_s)
            while self._inflight is not None:  # what it commits must not go to the file too
                remaining = commit_deadline - time.monotonic()
                if remaining <= 0:
                    break
                cond.wait(remaining)
            in_flight = {n for n, *_ in self._inflight or ()}
            left = list(self._pending)
            self._pending.clear()
            self._durable.clear()
        if not in_flight:  # the writer's last checkpoint
            self._thread.join(timeout=max(0.5, deadline - time.monotonic()))
        recovery = self._write_recovery(left, ended_ns, in_flight) if left else None
        name = None if recovery is None else recovery.name
        recorded = self._bounded_update(
            "UPDATE sessions SET exit = ?, ended_ns = ?, unwritten = ?, recovery_file = ? "
            "WHERE id = ?",
            (exit, ended_ns, len(left), name, self.session),
            max(deadline, time.monotonic() + 0.5),
        )
        report = CloseReport(
            unwritten=len(left),
            recovery_file=recovery,
            exit_recorded=recorded,
            in_flight=len(in_flight),
        )
        with cond:
            self._report = report
            release = self._writer_done
            self._handoff = not release
        if release:
            self._release()
        # else the writer is stuck in a commit: it releases the state directory when it
        # returns, so no other session imports the recovery file before that commit lands
        return report

    def _release(self) -> None:
        """Close the connection and release the state directory (once the writer is done)."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        with contextlib.suppress(OSError):
            os.close(self._dir_fd)

    def _write_recovery(
        self, left: list[_Pending], ended_ns: int, in_flight: set[int]
    ) -> Path | None:
        lines = []
        for n, ts, kind, text, _ in left:
            obj: dict[str, Any] = {
                "session": self.session, "ts_ns": ts, "kind": kind, "data": json.loads(text)
            }  # fmt: skip
            if n in in_flight:  # its commit may still land: importing skips it then
                obj["in_flight"] = True
            lines.append(json.dumps(obj, separators=(",", ":")))
        body = "".join(line + "\n" for line in lines).encode()
        path = self.state_dir / f"recovery-{self.session}-{ended_ns}.jsonl"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            return path
        except OSError as exc:
            with contextlib.suppress(OSError):
                if path.exists() and path.stat().st_size < len(body):
                    path.unlink()
            print(
                f"perpdesk: journal {self.path}: {len(lines)} records could not be written "
                f"(nor the recovery file {path.name}: {_one_line(exc)}); they follow as JSON lines",
                file=sys.stderr,
            )
            for line in lines:
                print(line, file=sys.stderr)
            return None

    # ---- tests --------------------------------------------------------------------------------

    def _halt(self) -> None:
        """Stop as `kill -9` would: the writer finishes its batch, nothing else is recorded."""
        with self._cond:
            self._stop = True
            self._fold = None
            self._cond.notify_all()
        self._thread.join()
        self._release()


def iter_records(state_dir: Path) -> Iterator[tuple[int, int, int, str, str]]:
    """Every journal row (seq, session, ts_ns, kind, data), for tools and tests."""
    path = Path(state_dir) / JOURNAL_FILE
    conn = _open_read_only(path)
    try:
        yield from conn.execute("SELECT seq, session, ts_ns, kind, data FROM records ORDER BY seq")
    finally:
        conn.close()
