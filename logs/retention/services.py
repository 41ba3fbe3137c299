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

from logs.gate import request_logs, retention_classes_by_account
from logs.partitions import TABLE, class_table, is_postgres
from logs.retention import archiving, deletes
from logs.retention.models import PurgeRun, PurgeStatus
from logs.retention.selectors import (
    AccountCutoff,
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
        busy: set[str] = set()
        if slug is None and is_postgres():
            busy = _drop_partitions(cutoffs, now=now, entries=entries, dropped=run.partitions, held=held)
        # Read after the drops: the leaves left are the ones to delete from.
        bounded = [archiving.bounded(c, held) for c in cutoffs]
        finished = _delete_rows(bounded, entries, batch_rows=batch_rows, deadline=deadline, skip=busy)
        if busy:
            # A DETACH that kept meeting a busy class (ingest holds it for a moment at a
            # time) tries again once the batches are done: emptying a whole period by
            # batches is the slow way. A period still busy then goes by batches.
            still = _drop_partitions(cutoffs, now=now, entries=entries, dropped=run.partitions, held=held, only=busy)
            if still:
                done = _delete_rows(bounded, entries, batch_rows=batch_rows, deadline=deadline, only=still)
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


def _targets_by_table(
    cutoffs: list[AccountCutoff], *, skip: set[str] = frozenset(), only: set[str] | None = None
) -> dict[str, list[tuple[int, datetime]]]:
    """Each table to delete from, with the (account_id, cutoff) of the accounts that can have
    expired rows in it: on PostgreSQL the leaves left after the drops (leaves_of_account),
    but those in `skip` (or only those in `only`), on SQLite the one log table."""
    if not is_postgres():
        return {TABLE: [(c.account.pk, c.cutoff) for c in cutoffs]}
    leaves = [leaf for leaf in log_leaves() if leaf.name not in skip and (only is None or leaf.name in only)]
    classes = retention_classes_by_account([c.account.pk for c in cutoffs])
    targets: dict[str, list[tuple[int, datetime]]] = {}
    for c in cutoffs:
        for leaf in leaves_of_account(classes=classes.get(c.account.pk, ()), cutoff=c.cutoff, leaves=leaves):
            targets.setdefault(leaf.name, []).append((c.account.pk, c.cutoff))
    return targets


def _delete_rows(
    cutoffs: list[AccountCutoff],
    entries: dict,
    *,
    batch_rows: int,
    deadline: float,
    skip: set[str] = frozenset(),
    only: set[str] | None = None,
) -> bool:
    """Batched DELETEs, one table at a time for all its accounts together."""
    finished = True
    for table, targets in _targets_by_table(cutoffs, skip=skip, only=only).items():
        result = deletes.delete_expired_rows(table=table, targets=targets, deadline=deadline, batch_rows=batch_rows)
        for account_id, rows in result.by_account.items():
            entry = entries[account_id]
            entry["deleted"] += rows
            entry["batches"] += result.batches_by_account[account_id]
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


def _drop_partitions(
    cutoffs: list[AccountCutoff],
    *,
    now: datetime,
    entries: dict,
    dropped: list,
    held: dict,
    only: set[str] | None = None,
) -> set[str]:
    """Detach and drop the droppable periods (or those of them in `only`); returns the ones
    whose DETACH never had its lock. A class's periods are detached a few at a time in one
    transaction (deletes.DETACH_GROUP), then each is counted and dropped."""
    leftovers = dict(detached_leftovers(now=now))
    names = [n for n in _droppable(cutoffs, now=now, held=held) if only is None or n in only]
    busy: set[str] = set()
    # name -> (the milliseconds its group's DETACH held the class table, the group's number)
    detached = {name: (0.0, None) for name in names if name in leftovers}
    by_class: dict[int, list[str]] = {}
    for name in names:
        if name not in leftovers:
            by_class.setdefault(int(name.removeprefix(TABLE + "_r").split("_")[0]), []).append(name)
    group = 0
    for days, tables in by_class.items():
        for i in range(0, len(tables), deletes.DETACH_GROUP):
            chunk = tables[i : i + deletes.DETACH_GROUP]
            detach_ms = deletes.detach_partitions(parent=class_table(days), tables=chunk)
            if detach_ms is None:
                busy.update(chunk)
                continue
            group += 1
            detached.update((name, (detach_ms, group)) for name in chunk)
    for name in names:
        if name not in detached:
            continue
        detach_ms, detach_group = detached[name]
        dropped_table = deletes.drop_detached(name)
        counts = dropped_table.counts
        for account_id, rows in counts.items():
            if account_id in entries:
                entries[account_id]["deleted"] += rows
        deletes.pause_after((dropped_table.count_ms + dropped_table.drop_ms) / 1000)
        # "detach_ms": how long the DETACH of its group (detach_group; periods detached in
        # one transaction share it) held or waited for the class table's lock, the one step
        # that blocks ingest and readers of the class; "count_ms" and "drop_ms": the detached
        # table's exact count per account and its DROP, which lock nothing anyone uses.
        dropped.append(
            {
                "name": name,
                "rows": sum(counts.values()),
                "ms": round(detach_ms + dropped_table.count_ms + dropped_table.drop_ms, 1),
                "detach_ms": detach_ms,
                "detach_group": detach_group,
                "count_ms": dropped_table.count_ms,
                "drop_ms": dropped_table.drop_ms,
            }
        )
    return busy
