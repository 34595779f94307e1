"""The state directory's files: its lock, their permissions, recovery files; JournalError."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import stat
from collections import Counter
from pathlib import Path
from typing import Any

from engine.journal.records import _parse, _show, check_record

JOURNAL_FILE = "journal.sqlite"
LOCK_FILE = "perpdesk.lock"
_RECOVERY_NAME = re.compile(r"^recovery-(\d+)-(\d+)\.jsonl$")


class JournalError(Exception):
    """The journal cannot be opened or read; the message (one line) names the file and the
    problem."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/perpdesk`, or `~/.local/state/perpdesk`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "perpdesk"


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


lock_state_dir = _lock_state_dir
"""Take the state directory's lock before a session starts (a network venue is connected only
once it is ours); hand the descriptor to `Journal(locked_fd=)`, or close it to let go."""


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
