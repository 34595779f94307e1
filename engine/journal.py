"""The append-only journal: orders, fills, commands, alerts and marks in SQLite; recovery.

One file per state directory (`journal.sqlite`, WAL mode). Writes go through a queue to one
background thread that commits in small batches, so quoting never waits for the disk; `close`
flushes everything and records how the session ended. Rows are never updated or deleted,
except a session's own end marker.

Times in the journal are wall-clock UTC nanoseconds (the shell stamps them), because the
daily loss limit is about the operator's calendar day, whatever clock a session ran on.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engine.events import Fill, Side
from engine.pnl import PnlLedger

JOURNAL_FILE = "journal.sqlite"
_NS_PER_DAY = 86_400 * 1_000_000_000
_BATCH = 256
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started_ns INTEGER NOT NULL,
    ended_ns INTEGER,
    exit TEXT,
    pid INTEGER NOT NULL,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind, seq);
"""
EXITS = ("clean", "signal", "crash")
LOCK_FILE = "perpdesk.lock"
# Records a restart cannot do without: committed before `append` returns (or after this long,
# so a stuck disk slows a fill down but never freezes the engine).
_DURABLE = frozenset({"fill", "state", "funding"})
_DURABLE_WAIT_S = 0.5


class JournalError(Exception):
    """The journal cannot be opened or read; the message names the file and the problem."""


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/perpdesk`, or `~/.local/state/perpdesk`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "perpdesk"


def _lock_state_dir(state_dir: Path) -> IO[str]:
    """One session per state directory: two would journal each other's fills into one account."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock = (state_dir / LOCK_FILE).open("a+")
    except OSError as exc:
        raise JournalError(f"state directory {state_dir}: cannot use it: {exc}") from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise JournalError(
            f"state directory {state_dir} is in use by perpdesk pid {holder}; "
            "stop that session or pass another --state-dir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(f"journal {path}: cannot open: {exc}") from exc
    return conn


class Journal:
    """Writes one session's records; `append` never blocks on the disk."""

    def __init__(self, state_dir: Path, *, venue: str, symbol: str, started_ns: int) -> None:
        self.path = state_dir / JOURNAL_FILE
        self._lock_file = _lock_state_dir(state_dir)
        self._conn = _connect(self.path)
        cursor = self._conn.execute(
            "INSERT INTO sessions (started_ns, pid, venue, symbol) VALUES (?, ?, ?, ?)",
            (started_ns, os.getpid(), venue, symbol),
        )
        self.session = int(cursor.lastrowid or 0)
        self._queue: queue.SimpleQueue[tuple[int, str, str] | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self._closed = False
        self._guard = threading.Lock()
        self.write_errors = 0
        self._thread = threading.Thread(target=self._writer, name="journal", daemon=True)
        self._thread.start()

    # ---- writing ------------------------------------------------------------------------------

    def append(self, kind: str, ts_ns: int, data: dict[str, Any]) -> None:
        """Queue a record; fills and state changes also wait (bounded) until they are on disk,
        so a hard crash cannot lose a trade or un-kill the engine."""
        row = (ts_ns, kind, json.dumps(data, separators=(",", ":")))
        done = threading.Event() if kind in _DURABLE else None
        with self._guard:
            if self._closed:
                return
            self._queue.put(row)
            if done is not None:
                self._queue.put(done)
        if done is not None:
            done.wait(_DURABLE_WAIT_S)

    def fill(self, ts_ns: int, fill: Fill, mid: float | None) -> None:
        self.append("fill", ts_ns, {
            "order_id": fill.order_id, "side": int(fill.side), "price": fill.price,
            "size_base": fill.size_base, "fee_usd": fill.fee_usd, "is_maker": fill.is_maker,
            "leaves_base": fill.leaves_base, "mid": mid,
        })  # fmt: skip

    def mark(self, ts_ns: int, mid: float) -> None:
        self.append("mark", ts_ns, {"mid": mid})

    def close(self, exit: str, ended_ns: int) -> None:
        """Flush every record, then record how the session ended."""
        if exit not in EXITS:
            raise ValueError(f"exit must be one of {EXITS}, got {exit!r}")
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        self._conn.execute(
            "UPDATE sessions SET ended_ns = ?, exit = ? WHERE id = ?",
            (ended_ns, exit, self.session),
        )
        self._conn.close()
        self._lock_file.close()  # releases the state directory

    def _writer(self) -> None:
        conn = self._conn
        get = self._queue.get
        done = False
        while not done:
            batch = [get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            rows = [(self.session, *item) for item in batch if isinstance(item, tuple)]
            if rows:
                try:
                    with conn:
                        conn.execute("BEGIN")
                        conn.executemany(
                            "INSERT INTO records (session, ts_ns, kind, data) VALUES (?, ?, ?, ?)",
                            rows,
                        )
                except sqlite3.Error:
                    # a full disk must not stop quoting; the count is shown, the rows are lost
                    self.write_errors += len(rows)
            for item in batch:  # wake whoever waits for these rows to be committed
                if isinstance(item, threading.Event):
                    item.set()


# ---- reading and recovery ---------------------------------------------------------------------


@dataclass
class Recovered:
    """What the journal says about the account and the risk state, as of its last record."""

    ledger: PnlLedger = field(default_factory=PnlLedger)
    day_start_net_usd: float = 0.0
    killed: bool = False
    kill_reason: str = ""
    open_orders: set[str] = field(default_factory=set)
    last_mid: float | None = None
    last_exit: str | None = None
    """How the previous session ended: clean, signal, crash, running, or None (no session)."""
    sessions: int = 0

    @property
    def position_base(self) -> float:
        return self.ledger.position_base

    def day_pnl_usd(self) -> float:
        return self.ledger.net_usd_at(self.last_mid) - self.day_start_net_usd


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(state_dir: Path, now_ns: int) -> Recovered:
    """Rebuild inventory, P&L, the day's baseline and the kill state from every record."""
    path = state_dir / JOURNAL_FILE
    out = Recovered()
    if not path.exists():
        return out
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        sessions = conn.execute("SELECT id, exit, pid FROM sessions ORDER BY id").fetchall()
        rows = conn.execute("SELECT ts_ns, kind, data FROM records ORDER BY seq").fetchall()
        conn.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot read: {exc}") from exc
    out.sessions = len(sessions)
    if sessions:
        _, exit_, pid = sessions[-1]
        out.last_exit = exit_ or ("running" if _pid_alive(pid) and pid != os.getpid() else "crash")
    day_start_ns = now_ns - now_ns % _NS_PER_DAY
    ledger = out.ledger
    baseline_taken = False
    for ts_ns, kind, text in rows:
        if not baseline_taken and ts_ns >= day_start_ns:
            out.day_start_net_usd = ledger.net_usd_at(out.last_mid)
            baseline_taken = True
        data = json.loads(text)
        if kind == "fill":
            ledger.on_fill(
                side=Side(data["side"]),
                price=data["price"],
                size_base=data["size_base"],
                fee_usd=data["fee_usd"],
                is_maker=data["is_maker"],
                mid=data["mid"],
            )
            if data["leaves_base"] <= 0:
                out.open_orders.discard(data["order_id"])
        elif kind == "mark":
            out.last_mid = data["mid"]
            ledger.mark(data["mid"])
        elif kind == "funding":
            ledger.on_funding(rate=data["rate"], mark_price=data["mark_price"])
        elif kind == "order_sent":
            out.open_orders.add(data["order_id"])
        elif kind == "order_done":
            out.open_orders.discard(data["order_id"])
        elif kind == "cancel_all_done":
            out.open_orders.clear()
        elif kind == "state":
            out.killed = data["state"] == "KILLED"
            out.kill_reason = data.get("reason", "") if out.killed else ""
    if not baseline_taken:
        out.day_start_net_usd = ledger.net_usd_at(out.last_mid)
    return out


def status(state_dir: Path, now_ns: int) -> dict[str, Any]:
    """The last session's state from the journal, without starting anything."""
    rec = recover(state_dir, now_ns)
    mid = rec.last_mid
    inventory = 0.0 if mid is None else rec.position_base * mid
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
    }
