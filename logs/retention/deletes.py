"""The purge's writes to the request log: bounded batched DELETEs and partition drops.

Every write runs in its own short transaction that says it is the purge
(`logs.guard.allow_log_writes("purge")`): the trigger on the log refuses any DELETE or
UPDATE without it (logs/migrations/0010_no_hand_writes.py). Each transaction also sets a
`lock_timeout`, so a purge waiting for a lock never queues ingest and readers behind it
for long: on a timeout the batch is given up and the next run tries again.
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection

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


def _purge_transaction(cursor, *, lock_timeout_ms: int | None = None) -> None:
    """The lock timeout of every purge write (each runs inside allow_log_writes("purge"))."""
    if is_postgres():
        timeout = int(lock_timeout_ms or settings.METERLOG_PURGE_LOCK_TIMEOUT_MS)
        cursor.execute(f"SET LOCAL lock_timeout = '{timeout}ms'")


def _delete_sql(table: str) -> str:
    if is_postgres():
        # ctid = ANY(ARRAY(...)) is a TID scan of the rows the index found; `ctid IN (SELECT
        # ...)` can plan as a hashed subplan over a sequential scan of the whole partition.
        # ctids are unique only within one table: `table` is always a leaf partition.
        return (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f'SELECT ctid FROM {table} WHERE account_id = %s AND "timestamp" < %s LIMIT %s))'
        )
    return (
        f'DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE account_id = %s AND "timestamp" < %s LIMIT %s)'
    )


def delete_expired_rows(*, table: str, account_id: int, before, deadline: float, batch_rows: int) -> BatchResult:
    """Delete the account's rows older than `before` from one table (a leaf partition on
    PostgreSQL, the log on SQLite), `batch_rows` at a time, each batch its own transaction:
    a run stopped at any point has lost nothing and the next one goes on from there."""
    result = BatchResult()
    sql = _delete_sql(table)
    value = connection.ops.adapt_datetimefield_value(before)
    while True:
        if time.monotonic() >= deadline:
            result.finished = False
            return result
        began = time.monotonic()
        try:
            with allow_log_writes("purge"), connection.cursor() as cursor:
                _purge_transaction(cursor)
                cursor.execute(sql, [account_id, value, batch_rows])
                deleted = cursor.rowcount
        except OperationalError as exc:
            if "lock" not in str(exc).lower():
                raise
            log.warning("purge: lock timeout deleting from %s; the next run continues", table)
            result.finished = False
            return result
        if deleted:
            result.deleted += deleted
            result.batches += 1
            result.max_batch_ms = max(result.max_batch_ms, (time.monotonic() - began) * 1000)
        if deleted < batch_rows:
            return result


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
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT account_id, count(*) FROM {table} GROUP BY account_id")
        return dict(cursor.fetchall())


DETACH_ATTEMPTS = 5


def detach_partition(*, parent: str, table: str) -> float | None:
    """Detach a period partition from its class table; False when its lock was not had.

    DETACH takes an ACCESS EXCLUSIVE lock on the class table for a catalog change only
    (CONCURRENTLY is refused where a DEFAULT partition exists, as in every class). While it
    waits for that lock, every ingest and read of the class queues behind it, so it waits
    at most METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS (100 ms) at a time and tries again a few
    times rather than once for the seconds a DELETE batch may wait. Returns the milliseconds
    the DETACH that succeeded took (its wait for the lock included: the time others queued
    behind it), None when none did."""
    for attempt in range(DETACH_ATTEMPTS):
        try:
            with allow_log_writes("purge"), connection.cursor() as cursor:
                _purge_transaction(cursor, lock_timeout_ms=settings.METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS)
                began = time.monotonic()
                cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {table}")
                elapsed = (time.monotonic() - began) * 1000
            return round(elapsed, 1)
        except OperationalError as exc:
            if "lock" not in str(exc).lower():
                raise
            time.sleep(0.2 * (attempt + 1))
    log.warning("purge: lock timeout detaching %s; its rows go by batched DELETEs", table)
    return None


def drop_detached(table: str) -> dict[int, int]:
    """Count a detached period table's rows per account, then drop it. A run that dies
    between detach and drop leaves the table detached: the next run finds it
    (selectors.detached_leftovers) and ends here."""
    if not table.startswith(TABLE + "_r"):
        raise ValueError(f"not a log partition: {table}")
    counts = rows_by_account(table)
    with allow_log_writes("purge"), connection.cursor() as cursor:
        _purge_transaction(cursor)
        cursor.execute(f"DROP TABLE {table}")
    # This process may have remembered the partition as present (logs.partitions).
    forget_known_partitions()
    return counts
