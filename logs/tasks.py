"""Scheduled upkeep of the request log's partitions (PostgreSQL; no-ops on SQLite).

Both tasks are safe to run twice or concurrently: partition creation takes an advisory lock
and skips what exists, and the check only reads.
"""

import logging

from celery import shared_task

from console.models import TIER_RETENTION_DAYS, Account
from logs.deletions import services as deletion_services
from logs.exports import jobs as export_jobs
from logs.imports import jobs as import_jobs
from logs.partitions import default_partition_rows, ensure_upcoming_partitions, guard_partitions
from logs.retention import moves as retention_moves
from logs.retention import services as retention

log = logging.getLogger(__name__)


def retention_classes_in_use() -> list[int]:
    """Every retention class a row can be stamped with today: the tier defaults (so a new
    account of any tier finds its partitions ready) plus each account's override."""
    classes = {int(days) for days in TIER_RETENTION_DAYS.values()}
    overrides = (
        Account.objects.filter(retention_days_override__isnull=False)
        .values_list("retention_days_override", flat=True)
        .distinct()
    )
    classes.update(int(days) for days in overrides)
    return sorted(classes)


@shared_task
def create_upcoming_partitions(periods_ahead: int = 2) -> list[str]:
    """Create the current and next partitions of every retention class in use, so ingest
    rarely pays for DDL and rows never fall into a default partition."""
    classes = retention_classes_in_use()
    created = ensure_upcoming_partitions(classes, periods_ahead=periods_ahead)
    # A catalog query: repairs a partition made by hand without the trigger.
    guard_partitions()
    log.info("partition upkeep: %d retention classes %s, created %d", len(classes), classes, len(created))
    return created


@shared_task
def check_default_partitions() -> dict[str, int]:
    """Alarm when rows the purge will not empty sit in a DEFAULT partition (rows past
    retention wait there on purpose): they block creating the partition they belong in."""
    rows = default_partition_rows()
    for name, count in sorted(rows.items()):
        log.error(
            "ALARM: %d rows in default partition %s; create the missing partition and move them",
            count,
            name,
        )
    return rows


@shared_task
def purge_expired_logs() -> dict:
    """Beat, daily: the retention purge (logs.retention.services); a run that finds another
    under way does nothing."""
    try:
        run = retention.purge_expired_logs()
    except retention.PurgeBusy as exc:
        log.info("purge: %s", exc)
        return {"status": "busy"}
    return {"run": run.pk, "status": run.status, "deleted": run.deleted, "partitions": len(run.partitions)}


@shared_task
def move_retention_classes() -> dict:
    """Beat, hourly: rows of accounts whose period changed move to their new class."""
    results = retention_moves.move_retention_classes()
    return {r.account.slug: {"moved": r.moved, "finished": r.finished} for r in results}


# Exports and imports (issue 4): thin wrappers that take ids and call the services.


@shared_task
def run_export_job(record_id: int) -> int | None:
    """Write a queued browser export to its file (logs.exports.jobs); returns the rows written,
    None when the record was not queued (already taken by another delivery)."""
    record = export_jobs.run_export_job(record_id)
    return record.rows if record is not None else None


@shared_task
def expire_export_files() -> int:
    """Beat: delete export files past METERLOG_EXPORT_TTL_HOURS and mark their records expired."""
    return export_jobs.expire_export_files()


@shared_task
def fail_stale_jobs() -> dict[str, int]:
    """Beat: mark failed the export and import jobs and the deletion requests whose worker
    stopped (no heartbeat for METERLOG_JOB_STALE_MINUTES), so their pages stop showing them
    as running."""
    return {
        "exports": export_jobs.fail_stale_jobs(),
        "imports": import_jobs.fail_stale_jobs(),
        "deletions": deletion_services.fail_stale_deletions(),
    }


@shared_task
def run_import_job(job_id: int) -> int | None:
    """Import an uploaded file (logs.imports.jobs); returns the accepted count, None when the
    job was not queued."""
    job = import_jobs.run_import_job(job_id)
    return job.accepted if job is not None else None


@shared_task
def run_deletion_request(request_id: int) -> int | None:
    """Carry out an approved deletion request (queued on its approval). Safe to deliver
    twice: the request is claimed once (approved -> running); the rows it deleted, or None."""
    request = deletion_services.deletion_run(request_id)
    return request.rows_deleted if request else None
