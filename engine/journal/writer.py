"""Writing the journal: one session's Journal, its writer thread, and how it closes."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.events import Fill
from engine.journal.files import (
    JOURNAL_FILE,
    JournalError,
    _already_journaled,
    _check_wal,
    _compact,
    _lock_state_dir,
    _make_private,
    _one_line,
    _read_recovery_file,
    _recovery_files,
    _session_of,
    _shm,
    _wal,
)
from engine.journal.fold import _Fold, ledger_from_state, ledger_state
from engine.journal.reader import (
    _OPEN_BUSY_TIMEOUT_MS,
    Identity,
    _check_version,
    _read,
    _show_kind,
    _stored_identity,
    _tables,
)
from engine.journal.records import (
    _MAX_TS,
    DURABLE,
    KNOWN_KINDS,
    SCHEMA_VERSION,
    check_record,
)

EXITS = ("clean", "signal", "crash")
CHECKPOINT_EVERY = 2_000
BUSY_TIMEOUT_MS = 100
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


@dataclass(frozen=True)
class CloseReport:
    """What `Journal.close` could not do: records not journaled, where they went instead."""

    unwritten: int
    recovery_file: Path | None
    exit_recorded: bool
    in_flight: int = 0
    """Of `unwritten`, records whose commit was under way and never returned (a hung
    fsync): they may be in the journal too; reading the recovery file skips them then."""


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


def _check_recovery_files_home(
    conn: sqlite3.Connection, path: Path, state_dir: Path, adopt: bool
) -> None:
    """A session whose unwritten records went to a recovery file elsewhere (its disk was full)
    must not be carried on without them: starting would adopt the venue's position at mid, and
    moving the file in later would count the fills twice. With `adopt` the session starts
    without them, and the file is marked so that it is never imported afterwards."""
    missing = conn.execute(
        "SELECT id, unwritten, recovery_file FROM sessions WHERE unwritten > 0 AND "
        "recovery_file IS NOT NULL AND recovery_file NOT IN (SELECT name FROM imported) "
        "ORDER BY id"
    ).fetchall()
    if not missing:
        return
    if not adopt:
        session, unwritten, name = missing[-1]
        raise JournalError(
            f"journal {path}: session {session} left {unwritten} records in {name}, which is "
            f"not in {state_dir} (look in {tempfile.gettempdir()}); move it there, or pass "
            "--adopt-journal to start without them"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT OR IGNORE INTO imported (name, records) VALUES (?, 0)",
            [(name,) for _, _, name in missing],
        )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


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
        locked_fd: int | None = None,
    ) -> None:
        """`locked_fd`: the state directory's lock, already taken (`lock_state_dir`); the
        journal owns it from here on.

        `fsync=True` syncs every commit to the disk (SQLite synchronous=FULL): committed
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
        self._dir_fd = _lock_state_dir(state_dir) if locked_fd is None else locked_fd
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
        _check_recovery_files_home(conn, path, self.state_dir, adopt)
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
        data: dict[str, Any] = {
            "order_id": fill.order_id, "side": int(fill.side), "price": fill.price,
            "size_base": fill.size_base, "fee_usd": fill.fee_usd, "is_maker": fill.is_maker,
            "leaves_base": fill.leaves_base, "mid": mid,
        }  # fmt: skip
        if fill.trade_id:
            data["trade_id"] = fill.trade_id
        self.append("fill", ts_ns, data)

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
        name = f"recovery-{self.session}-{ended_ns}.jsonl"
        # The state directory first (the next start reads it back); if its disk is full, the
        # system's temporary directory, which is often another filesystem.
        problems = []
        for folder in (self.state_dir, Path(tempfile.gettempdir())):
            path = folder / name
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    view = memoryview(body)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                problems.append(f"{path}: {_one_line(exc)}")
                with contextlib.suppress(OSError):
                    if path.exists() and path.stat().st_size < len(body):
                        path.unlink()
                continue
            if folder != self.state_dir:
                print(
                    f"perpdesk: journal {self.path}: {len(lines)} records could not be written "
                    f"there; saved to {path}: move it into {self.state_dir} before the next start",
                    file=sys.stderr,
                )
            return path
        print(
            f"perpdesk: journal {self.path}: {len(lines)} records could not be written (nor a "
            f"recovery file: {'; '.join(problems)}); they follow as JSON lines",
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
