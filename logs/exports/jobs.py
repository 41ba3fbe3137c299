"""Large browser exports as Celery jobs: queued, written to a file, downloaded, expired.

The log list's Export menu streams small sets directly (logs.exports.service); a set of more
than METERLOG_EXPORT_ASYNC_ROWS rows gets an ExportRecord in state "queued" and a task
(logs.tasks.run_export_job) that writes the same bytes to a file under METERLOG_EXPORT_DIR,
counting rows as it goes. The Exports page polls the record's progress and offers the file
until `expires_at` (METERLOG_EXPORT_TTL_HOURS); the beat task `expire_export_files` then
deletes it. The API always streams: programs chunk by start/end themselves.

The job's filters are stored absolute (resolved_filters): the worker has no viewer
time zone, and "last 7 days" must mean the seven days before the click, not before the run.
"""

import contextlib
import json
import logging
import os
import secrets
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.utils import timezone

from console.audit import Actor
from console.errors import EncryptionKeyError
from console.models import Account
from logs import selectors, stale_jobs
from logs.exports.chunks import RowCounter
from logs.exports.request import ExportRequest, file_name, params_querydict, parse_export_request, resolved_filters
from logs.exports.service import audit_export, open_body
from logs.filters import RequestLogFilterSet
from logs.models import ExportRecord, ExportState

log = logging.getLogger(__name__)

# Progress is written at most this often (seconds): a row count per 2,000-row chunk would be
# hundreds of UPDATEs per million rows for a bar nobody reads that fast.
PROGRESS_EVERY = 1.0
EXPIRE_BATCH = 500
STALE_MESSAGE = (
    "The export stopped: no progress for {minutes} minutes (the worker was restarted or crashed). Export again."
)


@transaction.atomic
def queue_export_job(*, account: Account, export: ExportRequest, params, user, ip: str | None = None) -> ExportRecord:
    """Record the job (and its access log entry) and queue it once the record is committed
    (a worker must find it)."""
    record = ExportRecord.objects.create(
        account=account,
        user=user if user is not None and user.is_authenticated else None,
        format=export.format,
        compress=export.compress,
        split=export.split,
        csv_safe=export.csv_safe,
        filters=resolved_filters(export=export, params=params),
        state=ExportState.QUEUED,
    )
    audit_export(record, via="job", actor=Actor(user=record.user, ip=ip))
    transaction.on_commit(partial(_enqueue, record.pk))
    return record


def _enqueue(record_id: int) -> None:
    from logs.tasks import run_export_job  # tasks import this module

    run_export_job.delay(record_id)


def estimate_rows(*, filterset: RequestLogFilterSet) -> int:
    """The progress bar's total: PostgreSQL's planner estimate (EXPLAIN, no rows read; it can
    be off, so the bar stops at 99% until the job ends), an exact count on SQLite."""
    queryset = filterset.qs.order_by()
    if connection.vendor != "postgresql":
        return queryset.count()
    try:
        sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:
        return 0
    with selectors.statement_timeout(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def export_file_path(record: ExportRecord) -> Path:
    """The job's file; the stored relative path is ours, but stay inside the directory anyway."""
    root = Path(settings.METERLOG_EXPORT_DIR).resolve()
    path = (root / record.file_path).resolve()
    if not record.file_path or root not in path.parents:
        raise FileNotFoundError(record.file_path)
    return path


def run_export_job(record_id: int) -> ExportRecord | None:
    """Write the export file of a queued record. Claimed with a conditional UPDATE (queued →
    running), so a task delivered twice writes once; returns None when not claimed."""
    now = timezone.now()
    claimed = ExportRecord.objects.filter(pk=record_id, state=ExportState.QUEUED).update(
        state=ExportState.RUNNING, started_at=now, heartbeat_at=now
    )
    if claimed != 1:
        return None
    record = ExportRecord.objects.select_related("account").get(pk=record_id)
    tmp_path = None
    try:
        params = params_querydict(
            record.filters,
            format=record.format,
            compress="gzip" if record.compress else "",
            split=record.split,
            csv_safe="1" if record.csv_safe else "",
        )
        export, errors = parse_export_request(account=record.account, params=params)
        if errors:
            return _fail(record, "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))
        record.rows_estimate = estimate_rows(filterset=export.filterset)
        record.heartbeat_at = timezone.now()
        record.save(update_fields=["rows_estimate", "heartbeat_at"])

        name = file_name(account=record.account, export=export, now=record.created_at)
        relative = f"{record.account_id}/{record.pk}-{secrets.token_hex(8)}/{name}"
        path = Path(settings.METERLOG_EXPORT_DIR) / relative
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written under a hidden name and moved into place: a crash never leaves a truncated
        # file that looks finished.
        tmp_path = path.with_name(f".{path.name}.tmp")
        counter = RowCounter(on_chunk=_progress_writer(record.pk))
        body = open_body(account=record.account, export=export, params=params, counter=counter)
        with open(tmp_path, "wb") as handle:
            os.chmod(tmp_path, 0o600)  # customer data: readable by the service's user only
            for part in body:
                handle.write(part)
        os.replace(tmp_path, path)
        tmp_path = None
        finished = timezone.now()
        ExportRecord.objects.filter(pk=record.pk, state=ExportState.RUNNING).update(
            state=ExportState.DONE,
            rows=counter.rows,
            file_name=name,
            file_path=relative,
            file_size=path.stat().st_size,
            finished_at=finished,
            expires_at=finished + timedelta(hours=settings.METERLOG_EXPORT_TTL_HOURS),
        )
        log.info("export job %s: %d rows to %s", record.pk, counter.rows, relative)
    except (selectors.QueryTimeout, EncryptionKeyError) as exc:
        return _fail(record, str(exc))
    except Exception:
        log.exception("export job %s failed", record_id)
        _fail(record, "The export failed on the server; try again or narrow the filters.")
        raise
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
    record.refresh_from_db()
    return record


def _progress_writer(record_id: int):
    last = [0.0]

    def write(rows: int) -> None:
        now = timezone.now()
        if now.timestamp() - last[0] >= PROGRESS_EVERY:
            last[0] = now.timestamp()
            ExportRecord.objects.filter(pk=record_id).update(rows=rows, heartbeat_at=now)

    return write


def _fail(record: ExportRecord, message: str) -> ExportRecord:
    ExportRecord.objects.filter(pk=record.pk).update(
        state=ExportState.FAILED, error=message, finished_at=timezone.now()
    )
    record.refresh_from_db()
    return record


def is_expired(record: ExportRecord, now: datetime | None = None) -> bool:
    """Expired, or due and not yet swept (the beat task runs every 15 minutes)."""
    if record.state == ExportState.EXPIRED:
        return True
    return (
        record.state == ExportState.DONE
        and record.expires_at is not None
        and record.expires_at <= (now or timezone.now())
    )


def expire_export_files(*, now: datetime | None = None) -> int:
    """Delete the files of jobs past `expires_at` and mark them expired; at most EXPIRE_BATCH
    per run (the next run takes the rest). Safe to run twice: a record is marked with a
    conditional UPDATE and a missing file is not an error."""
    now = now or timezone.now()
    due = list(
        ExportRecord.objects.filter(state=ExportState.DONE, expires_at__lte=now)
        .order_by("expires_at")
        .only("pk", "file_path")[:EXPIRE_BATCH]
    )
    expired = 0
    for record in due:
        try:
            path = export_file_path(record)
        except FileNotFoundError:
            path = None
        if path is not None:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the job's own directory, empty now
                path.parent.rmdir()
        expired += ExportRecord.objects.filter(pk=record.pk, state=ExportState.DONE).update(state=ExportState.EXPIRED)
    if expired:
        log.info("expired %d export files (cutoff %s)", expired, now.isoformat())
    return expired


def fail_stale_jobs(*, now: datetime | None = None) -> int:
    """Mark failed the jobs queued or running with no sign of life (heartbeat_at, else
    created_at) for METERLOG_JOB_STALE_MINUTES: their worker was restarted or crashed, and
    the Exports page would show their progress bar forever. A running job writes its
    heartbeat with its progress (every second or so), so a live one is never that quiet.
    The partial file a crashed job left (hidden .tmp name) is deleted. Returns how many
    jobs were marked; safe to run twice (conditional UPDATE per job)."""
    now = now or timezone.now()

    def remove_partial_file(record):
        # The job's directory is "<account>/<id>-<random>/" (run_export_job).
        for tmp_path in (Path(settings.METERLOG_EXPORT_DIR) / str(record.account_id)).glob(f"{record.pk}-*/.*.tmp"):
            tmp_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                tmp_path.parent.rmdir()

    failed = stale_jobs.fail_stale_jobs(
        ExportRecord.objects.all(), active=(ExportState.QUEUED, ExportState.RUNNING), failed=ExportState.FAILED,
        message=STALE_MESSAGE, fields=("pk", "account_id"), now=now, cleanup=remove_partial_file,
    )  # fmt: skip
    if failed:
        minutes = settings.METERLOG_JOB_STALE_MINUTES
        log.warning("marked %d stale export jobs failed (no heartbeat for %d minutes)", failed, minutes)
    return failed
