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

from engine.journal.files import (
    JOURNAL_FILE,
    LOCK_FILE,
    JournalError,
    default_state_dir,
    lock_state_dir,
)
from engine.journal.fold import _Fold, ledger_from_state, ledger_state
from engine.journal.reader import (
    Identity,
    OrderHistory,
    Recovered,
    funding_history,
    iter_records,
    order_history,
    recover,
    status,
)
from engine.journal.records import DURABLE, KNOWN_KINDS, SCHEMA_VERSION, check_record
from engine.journal.writer import BUSY_TIMEOUT_MS, CHECKPOINT_EVERY, EXITS, CloseReport, Journal

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CHECKPOINT_EVERY",
    "DURABLE",
    "EXITS",
    "JOURNAL_FILE",
    "KNOWN_KINDS",
    "LOCK_FILE",
    "SCHEMA_VERSION",
    "CloseReport",
    "Identity",
    "Journal",
    "JournalError",
    "OrderHistory",
    "Recovered",
    "_Fold",
    "check_record",
    "default_state_dir",
    "funding_history",
    "iter_records",
    "ledger_from_state",
    "ledger_state",
    "lock_state_dir",
    "order_history",
    "recover",
    "status",
]
