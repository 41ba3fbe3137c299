"""The retention purge: every row older than its account's retention period goes.

On PostgreSQL (logs/partitions.py): a period partition of a retention class that lies
wholly before the class's cutoff (now minus the class's days) goes by DETACH + DROP, a
catalog change, unless it still holds a row some account must keep (below). The rest (the
partition straddling the cutoff, the class DEFAULT partitions where rows already past
retention wait, partitions kept for another account, an `--account` run) goes by bounded
batched DELETEs aimed at one leaf partition and the account's time bound at a time.
SQLite: the same batched DELETEs on the plain table.

Rows of an account that sit in a class other than its current one (its period changed
since they were stored, and no class move has run yet) follow the account's *current*
period: an upgrade keeps them for the longer period (their partition is then not dropped
while they are kept: `deletes.keeps_rows`), a downgrade expires them at the next purge.

With METERLOG_ARCHIVE_BEFORE_PURGE on, every account's rows about to go are first written to
verified archive files (archiving.py); an account whose archive fails loses nothing this run.

One run at a time: a session advisory lock (PostgreSQL); a second run returns at once
saying so. Each run is recorded (PurgeRun). A run stopped anywhere (killed, time budget,
lock timeout) leaves only whole batches deleted and whole partitions dropped or detached;
the next run deletes the rest and drops what was left detached.

Rollups outlive raw rows: they are purged by their own, longer period
(ROLLUP_RETENTION_MONTHS) in the same run, by the analytics app's purge registered with
`register_rollup_purge` when Django starts (logs does not import analytics).
"""

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from logs.gate import request_logs
from logs.partitions import TABLE, class_table, is_postgres
from logs.retention import archiving, deletes
from logs.retention.models import PurgeRun, PurgeStatus
from logs.retention.selectors import (
    AccountCutoff,
    Leaf,
    account_cutoffs,
    detached_leftovers,
    leaves_of_account,
    log_leaves,
)

log = logging.getLogger(__name__)

_LOCK_KEY = "hashtext('meterlog.purge')"

# The analytics app's rollup purge: (cutoffs, now=, dry_run=, batch_rows=, deadline=) ->
# {"cutoff": ..., "tables": {name: rows}}.
RollupPurge = Callable[..., dict]
_rollup_purge: RollupPurge | None = None


def register_rollup_purge(purge: RollupPurge) -> None:
    global _rollup_purge
    _rollup_purge = purge


class PurgeBusy(Exception):
    """Another purge holds the lock."""


@contextmanager
def _purge_lock():
    """Hold the purge's session advisory lock (PostgreSQL) for the whole run; it is released
    at the end, or by the server when the process dies."""
    if not is_postgres():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({_LOCK_KEY})")
        if not cursor.fetchone()[0]:
            raise PurgeBusy("another purge run holds the lock (meterlog.purge); nothing done")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})")


def purge_expired_logs(
    *, dry_run: bool = False, slug: str | None = None, now: datetime | None = None, batch_rows: int | None = None
) -> PurgeRun:
    """Purge (or, dry, count) the rows past retention of every account, or of one (which
    then drops no partition: partitions are shared by all accounts of a class). Returns
    the recorded run; raises PurgeBusy when another run is under way."""
    now = now or timezone.now()
    batch_rows = batch_rows or settings.METERLOG_PURGE_BATCH_ROWS
    deadline = time.monotonic() + settings.METERLOG_PURGE_TIME_BUDGET_SECONDS
    with _purge_lock():
        # Holding the lock: a run still marked running lost its process.
        PurgeRun.objects.filter(status=PurgeStatus.RUNNING).update(status=PurgeStatus.INTERRUPTED)
        run = PurgeRun.objects.create(started_at=now, dry_run=dry_run, only_account=slug or "")
        try:
            _run(run, now=now, slug=slug, batch_rows=batch_rows, deadline=deadline)
        except Exception as exc:
            # What was done before the failure is recorded too (run.accounts, run.partitions
            # are filled as the run goes).
            run.status, run.error = PurgeStatus.FAILED, repr(exc)
            _total(run)
            run.finished_at = timezone.now()
            run.save()
            raise
        _total(run)
        run.finished_at = timezone.now()
        run.save()
    log.info("purge run %s: %s, %d rows, %d partitions", run.pk, run.status, run.deleted, len(run.partitions))
    return run


def _run(run: PurgeRun, *, now: datetime, slug: str | None, batch_rows: int, deadline: float) -> None:
    cutoffs = account_cutoffs(now=now, slug=slug)
    entries = {
        c.account.pk: {
            "account_id": c.account.pk,  # the slug can change; the id names the account
            "slug": c.account.slug,
            "retention_days": c.retention_days,
            "cutoff": c.cutoff.isoformat(),
            ("would_delete" if run.dry_run else "deleted"): 0,
            "batches": 0,
        }
        for c in cutoffs
    }
    run.accounts = list(entries.values())  # the same dicts, counted into as the run goes
    finished = True
    held = {}
    if run.dry_run:
        for c in cutoffs:
            expired = request_logs(account=c.account).filter(timestamp__lt=c.cutoff)
            entries[c.account.pk]["would_delete"] = expired.count()
        if slug is None and is_postgres():
            run.partitions = [{"name": name, "rows": None} for name in _droppable(cutoffs, now=now)]
    else:
        # Archive before purge (archiving.py): what an account's archive did not cover stays.
        held = archiving.archive_expired(run, cutoffs, entries, deadline=deadline)
        if slug is None and is_postgres():
            _drop_partitions(cutoffs, now=now, entries=entries, dropped=run.partitions, held=held)
        # Read after the drops: the leaves left are the ones to delete from.
        leaves = log_leaves() if is_postgres() else []
        for c in cutoffs:
            entry = entries[c.account.pk]
            done = _delete_account_rows(
                archiving.bounded(c, held), entry, leaves=leaves, batch_rows=batch_rows, deadline=deadline
            )
            finished = finished and done
    if _rollup_purge is not None:
        run.rollups = _rollup_purge(
            [(c.account, c.cutoff) for c in cutoffs],
            now=now,
            dry_run=run.dry_run,
            batch_rows=batch_rows,
            deadline=deadline,
        )
        finished = finished and run.rollups.get("finished", True)
    run.status = PurgeStatus.DONE if finished else PurgeStatus.PARTIAL
    archiving.finish(run, held)


def _total(run: PurgeRun) -> None:
    run.deleted = sum(e.get("deleted", 0) for e in run.accounts)
    run.batches = sum(e["batches"] for e in run.accounts)


def _tables(c: AccountCutoff, leaves: list[Leaf]) -> list[str]:
    if not is_postgres():
        return [TABLE]
    return [leaf.name for leaf in leaves_of_account(account=c.account, cutoff=c.cutoff, leaves=leaves)]


def _delete_account_rows(
    c: AccountCutoff, entry: dict, *, leaves: list[Leaf], batch_rows: int, deadline: float
) -> bool:
    finished = True
    for table in _tables(c, leaves):
        result = deletes.delete_expired_rows(
            table=table, account_id=c.account.pk, before=c.cutoff, deadline=deadline, batch_rows=batch_rows
        )
        entry["deleted"] += result.deleted
        entry["batches"] += result.batches
        if result.batches:
            entry["max_batch_ms"] = round(max(entry.get("max_batch_ms", 0), result.max_batch_ms), 1)
        finished = finished and result.finished
    return finished


def _keepers(cutoffs: list[AccountCutoff], end: datetime, held: dict) -> list[tuple[int, datetime]]:
    """Accounts whose cutoff lies before `end`: they may still keep rows of a period ending
    there (rows stored while their period was shorter); and what an archive did not cover."""
    return [(c.account.pk, c.cutoff) for c in cutoffs if c.cutoff < end and c.account.pk not in held] + (
        archiving.keepers(held)
    )


def _droppable(cutoffs: list[AccountCutoff], *, now: datetime, held: dict | None = None) -> list[str]:
    """Period partitions wholly before their class's cutoff that hold no row to keep, and
    detached leftovers of an earlier run."""
    names = [name for name, _ in detached_leftovers(now=now)]
    for leaf in log_leaves():
        if leaf.retention_days is None or leaf.is_default:
            continue
        class_cutoff = now - timedelta(days=leaf.retention_days)
        if leaf.end <= class_cutoff and not deletes.keeps_rows(
            table=leaf.name, keepers=_keepers(cutoffs, leaf.end, held or {})
        ):
            names.append(leaf.name)
    return names


def _drop_partitions(cutoffs: list[AccountCutoff], *, now: datetime, entries: dict, dropped: list, held: dict) -> None:
    leftovers = dict(detached_leftovers(now=now))
    for name in _droppable(cutoffs, now=now, held=held):
        began = time.monotonic()
        detach_ms = 0.0
        if name not in leftovers:
            days = int(name.removeprefix(TABLE + "_r").split("_")[0])
            detach_ms = deletes.detach_partition(parent=class_table(days), table=name)
            if detach_ms is None:
                continue  # the rows stay; the batched DELETEs below take the account rows
        counts = deletes.drop_detached(name)
        for account_id, rows in counts.items():
            if account_id in entries:
                entries[account_id]["deleted"] += rows
        elapsed_ms = round((time.monotonic() - began) * 1000, 1)
        # "ms": detach, count and drop; "detach_ms": the one step that locks the class table.
        dropped.append({"name": name, "rows": sum(counts.values()), "ms": elapsed_ms, "detach_ms": detach_ms})
