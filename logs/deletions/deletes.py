"""Carrying out an approved deletion request: bounded batched DELETEs of the matching rows.

The same shape as the purge's (logs/retention/deletes.py): each batch is its own short
transaction inside `allow_log_writes("deletion")` (the log's trigger refuses any other
DELETE) with a `lock_timeout`, so it never queues ingest and readers behind it for long.
On PostgreSQL a batch names one leaf partition (ctids are unique only within one table)
and only the leaves of the account's retention classes whose period overlaps the request's
range are visited; on SQLite the plain table, by an id subquery. The WHERE comes from the
tenant gate (`request_log_sql`), so a batch cannot reach another account's rows.
"""

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from logs.deletions.models import DeletionRequest
from logs.gate import request_log_sql, retention_classes
from logs.guard import allow_log_writes
from logs.partitions import is_postgres
from logs.retention.selectors import log_leaves

log = logging.getLogger(__name__)

BATCH_ROWS = 5_000
# A batch that cannot get its row locks waits this long, then tries again (ingest only
# inserts, so this is rare: an export or a class move holding the same rows).
LOCK_ATTEMPTS = 5


@dataclass
class DeletionResult:
    deleted: int = 0
    batches: int = 0
    tables: dict[str, int] = field(default_factory=dict)


def _filter(request: DeletionRequest) -> tuple[str, list]:
    """The request's filter as SQL after the gate's WHERE."""
    sql, params = (
        ' AND "timestamp" >= %s AND "timestamp" < %s',
        [
            connection.ops.adapt_datetimefield_value(request.start),
            connection.ops.adapt_datetimefield_value(request.end),
        ],
    )
    if request.api_key:
        sql += " AND api_key = %s"
        params.append(request.api_key)
    if request.request_ids:
        if is_postgres():
            sql += " AND request_id = ANY(%s)"
            params.append(list(request.request_ids))
        else:
            sql += f" AND request_id IN ({', '.join(['%s'] * len(request.request_ids))})"
            params.extend(request.request_ids)
    return sql, params


def _tables(request: DeletionRequest, table: str) -> list[str]:
    """The leaves that can hold the request's rows (PostgreSQL), or the plain table."""
    if not is_postgres():
        return [table]
    classes = set(retention_classes(account=request.account) or [])
    return [
        leaf.name
        for leaf in log_leaves()
        if leaf.retention_days is None
        or (
            leaf.retention_days in classes
            and (leaf.is_default or (leaf.start < request.end and leaf.end > request.start))
        )
    ]


def _batch_sql(table: str, where: str) -> str:
    if is_postgres():
        # ctid = ANY(ARRAY(...)): a TID scan of the rows the index found (see the purge's).
        return f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {where} LIMIT %s))"
    return f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT %s)"


def _delete_batch(sql: str, params: list) -> int:
    for attempt in range(LOCK_ATTEMPTS):
        try:
            with allow_log_writes("deletion"), connection.cursor() as cursor:
                if is_postgres():
                    timeout = int(settings.METERLOG_PURGE_LOCK_TIMEOUT_MS)
                    cursor.execute(f"SET LOCAL lock_timeout = '{timeout}ms'")
                cursor.execute(sql, params)
                return cursor.rowcount
        except OperationalError as exc:
            if "lock" not in str(exc).lower() or attempt == LOCK_ATTEMPTS - 1:
                raise
            log.warning("deletion request: lock timeout, batch tried again")
            time.sleep(0.2 * (attempt + 1))
    return 0


def _heartbeat(request: DeletionRequest, deleted: int) -> None:
    """The rows deleted so far and a sign of life (services.fail_stale_deletions)."""
    DeletionRequest.objects.filter(pk=request.pk).update(rows_deleted=deleted, updated_at=timezone.now())


def delete_matching_rows(request: DeletionRequest, *, batch_rows: int = BATCH_ROWS) -> DeletionResult:
    """Delete every row the request matches, `batch_rows` at a time. Stopped anywhere, only
    whole batches are gone (and counted in the request); running it again deletes what is
    left and nothing else."""
    result = DeletionResult()
    table, where, params = request_log_sql(request.account)
    extra, extra_params = _filter(request)
    where += extra
    for leaf in _tables(request, table):
        sql = _batch_sql(leaf, where)
        while True:
            deleted = _delete_batch(sql, [*params, *extra_params, batch_rows])
            if deleted:
                result.deleted += deleted
                result.batches += 1
                result.tables[leaf] = result.tables.get(leaf, 0) + deleted
                _heartbeat(request, result.deleted)
            if deleted < batch_rows:
                break
    return result
