"""The purge's writes to the request log: bounded batched DELETEs and partition drops.

Every write runs in its own short transaction that says it is the purge
(`logs.guard.allow_log_writes("purge")`): the trigger on the log refuses any DELETE or
UPDATE without it (logs/migrations/0010_no_hand_writes.py). Each transaction also sets a
`lock_timeout`, so a purge waiting for a lock never queues ingest and readers behind it
for long: on a timeout the batch is given up and the next run tries again.
"""

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction

from logs.guard import allow_log_writes
from logs.partitions import TABLE, forget_known_partitions, is_postgres

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    deleted: int = 0
    batches: int = 0
    # False when the time budget ran out or a lock timed out with rows left to delete.
    finished: bool = True
    # The longest batch (its transaction held its row locks that long).
    max_batch_ms: float = 0.0
    # Per account: rows deleted, and the batches that deleted some of them.
    by_account: dict[int, int] = field(default_factory=dict)
    batches_by_account: dict[int, int] = field(default_factory=dict)

    def add_batch(self, counts: dict[int, int], elapsed_ms: float) -> int:
        deleted = sum(counts.values())
        if deleted:
            self.deleted += deleted
            self.batches += 1
            self.max_batch_ms = max(self.max_batch_ms, elapsed_ms)
            for account_id, rows in counts.items():
                self.by_account[account_id] = self.by_account.get(account_id, 0) + rows
                self.batches_by_account[account_id] = self.batches_by_account.get(account_id, 0) + 1
        return deleted


def pause_after(seconds: float) -> None:
    """Give way to ingest and readers: sleep a share of the time the step just took
    (METERLOG_PURGE_PAUSE_PERCENT), so a long purge takes at most about half of the
    machine while it runs instead of all it can get."""
    share = settings.METERLOG_PURGE_PAUSE_PERCENT / 100
    if share > 0 and seconds > 0:
        time.sleep(seconds * share)


def _purge_transaction(cursor, *, lock_timeout_ms: int | None = None) -> None:
    """The settings of every purge write (each runs inside allow_log_writes("purge")).

    synchronous_commit off: a commit does not wait for its WAL flush, so a batch holds its
    row locks for the DELETE only. A server crash may lose the last batches' commits; their
    rows are then still there and the next run deletes them again (the run's record is
    written by a normal commit afterwards, which flushes everything before it)."""
    if is_postgres():
        timeout = int(lock_timeout_ms or settings.METERLOG_PURGE_LOCK_TIMEOUT_MS)
        cursor.execute(f"SET LOCAL lock_timeout = '{timeout}ms'")
        cursor.execute("SET LOCAL synchronous_commit = off")


def _batch_sql(table: str) -> str:
    """One batch over every target account of one leaf: at most `limit` rows, each older
    than its account's cutoff, counted per account as they go.

    One statement per batch for all the accounts of a leaf (a class's accounts share one
    cutoff; accounts whose rows wait for a class move bring their own): a daily purge of
    500 accounts was 500 x leaves small statements, most of its time. The LATERAL probe
    is one index range scan per account (every index leads with account_id).
    ctid = ANY(ARRAY(...)) is a TID scan of the rows the probes found; `ctid IN (SELECT
    ...)` can plan as a hashed subplan over a sequential scan of the whole partition.
    ctids are unique only within one table: `table` is always a leaf partition."""
    return (
        f"WITH gone AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        "SELECT v.ctid FROM unnest(%s::bigint[], %s::timestamptz[]) AS a(account_id, cutoff) "
        f"CROSS JOIN LATERAL (SELECT p.ctid FROM {table} p "
        'WHERE p.account_id = a.account_id AND p."timestamp" < a.cutoff LIMIT %s) v LIMIT %s)) '
        "RETURNING account_id) "
        "SELECT account_id, count(*) FROM gone GROUP BY account_id"
    )


def _sqlite_batch(cursor, table: str, targets: list[tuple[int, datetime]], limit: int) -> dict[int, int]:
    """SQLite: the log is one plain table; one account at a time until `limit` rows."""
    counts: dict[int, int] = {}
    for account_id, cutoff in targets:
        left = limit - sum(counts.values())
        if left <= 0:
            break
        cursor.execute(
            f'DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE account_id = %s AND "timestamp" < %s '
            "LIMIT %s)",
            [account_id, connection.ops.adapt_datetimefield_value(cutoff), left],
        )
        if cursor.rowcount:
            counts[account_id] = cursor.rowcount
    return counts


def delete_expired_rows(
    *, table: str, targets: list[tuple[int, datetime]], deadline: float, batch_rows: int
) -> BatchResult:
    """Delete from one table (a leaf partition on PostgreSQL, the log on SQLite) the rows of
    each (account_id, cutoff) in `targets` older than its cutoff, `batch_rows` at a time,
    each batch its own transaction: a run stopped at any point has lost nothing and the next
    one goes on from there. A batch deleting fewer than `batch_rows` found every target
    account's expired rows, so it is the last."""
    result = BatchResult()
    if not targets:
        return result
    sql = _batch_sql(table)
    ids, cutoffs = [a for a, _ in targets], [c for _, c in targets]
    while True:
        if time.monotonic() >= deadline:
            result.finished = False
            return result
        began = time.monotonic()
        try:
            with allow_log_writes("purge"), connection.cursor() as cursor:
                _purge_transaction(cursor)
                if is_postgres():
                    cursor.execute(sql, [ids, cutoffs, batch_rows, batch_rows])
                    counts = dict(cursor.fetchall())
                else:
                    counts = _sqlite_batch(cursor, table, targets, batch_rows)
        except OperationalError as exc:
            if "lock" not in str(exc).lower():
                raise
            log.warning("purge: lock timeout deleting from %s; the next run continues", table)
            result.finished = False
            return result
        took = time.monotonic() - began
        deleted = result.add_batch(counts, took * 1000)
        if deleted < batch_rows:
            return result
        pause_after(took)


def keeps_rows(*, table: str, keepers: list[tuple[int, object]]) -> bool:
    """Whether the table holds a row that is not past its account's cutoff, among
    (account_id, cutoff) of the accounts whose cutoff could leave one there."""
    if not keepers:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table} p "
            "JOIN unnest(%s::bigint[], %s::timestamptz[]) AS k(account_id, cutoff) ON p.account_id = k.account_id "
            'WHERE p."timestamp" >= k.cutoff)',
            [[a for a, _ in keepers], [c for _, c in keepers]],
        )
        return cursor.fetchone()[0]


def rows_by_account(table: str) -> dict[int, int]:
    """Rows per account of a detached table. On PostgreSQL from an index that leads with
    account_id (an index-only scan: old periods are all-visible once autovacuum has seen
    them): the seq scan the planner picks read every heap page, gigabytes in a half-year
    purge, and that read slowed ingest more than the DETACHes (bench/README)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if is_postgres():
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"SELECT account_id, count(*) FROM {table} GROUP BY account_id")
        return dict(cursor.fetchall())


DETACH_ATTEMPTS = 8
# Periods of one class detached in one transaction: one wait for the class table's lock
# instead of one per period (each wait queues the class's ingest behind it), while the
# lock is held for the wait and a few catalog changes of a few milliseconds each.
DETACH_GROUP = 4


def detach_partitions(*, parent: str, tables: list[str]) -> float | None:
    """Detach period partitions of one class table in one transaction; the milliseconds it
    held or waited for the class table's lock, None when no attempt had the lock.

    DETACH takes an ACCESS EXCLUSIVE lock on the class table for a catalog change only
    (CONCURRENTLY is refused where a DEFAULT partition exists, as in every class). While it
    waits for that lock, every ingest and read of the class queues behind it, so it waits
    at most METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS (70 ms) at a time and tries again a few
    times (a run tries twice: services) rather than once for the seconds a DELETE batch may
    wait. The time returned counts from the first statement's start (its wait for the lock
    included: the time others queued behind it) to the commit."""
    for _attempt in range(DETACH_ATTEMPTS):
        try:
            began = time.monotonic()
            with allow_log_writes("purge"), connection.cursor() as cursor:
                _purge_transaction(cursor, lock_timeout_ms=settings.METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS)
                began = time.monotonic()
                for table in tables:
                    cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {table}")
            return round((time.monotonic() - began) * 1000, 1)
        except OperationalError as exc:
            if "lock" not in str(exc).lower():
                raise
            # Jittered, so the tries do not fall into step with a steady ingest rhythm.
            time.sleep(random.uniform(0.05, 0.25))  # noqa: S311 (timing, not a secret)
    log.warning("purge: lock timeout detaching %s (class busy)", ", ".join(tables))
    return None


def detach_partition(*, parent: str, table: str) -> float | None:
    """One period partition (detach_partitions)."""
    return detach_partitions(parent=parent, tables=[table])


@dataclass
class Dropped:
    counts: dict[int, int]
    count_ms: float
    drop_ms: float


def drop_detached(table: str) -> Dropped:
    """Count a detached period table's rows per account, then drop it. A run that dies
    between detach and drop leaves the table detached: the next run finds it
    (selectors.detached_leftovers) and ends here. Counted once detached, when nobody can
    write to it any more, so the count is exact; the count locks nothing anyone else uses."""
    if not table.startswith(TABLE + "_r"):
        raise ValueError(f"not a log partition: {table}")
    began = time.monotonic()
    counts = rows_by_account(table)
    counted = time.monotonic()
    with allow_log_writes("purge"), connection.cursor() as cursor:
        _purge_transaction(cursor)
        cursor.execute(f"DROP TABLE {table}")
    dropped = time.monotonic()
    # This process may have remembered the partition as present (logs.partitions).
    forget_known_partitions()
    return Dropped(counts, round((counted - began) * 1000, 1), round((dropped - counted) * 1000, 1))
