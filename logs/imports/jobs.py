"""Imports started from the console's import page: the upload is stored under
METERLOG_IMPORT_DIR and a worker runs `services.import_file` on it (logs.tasks.run_import_job),
the same code as `manage.py import_logs`, writing its progress and outcome to an ImportJob.

The file's format is checked when it is uploaded (a file that is not CSV/JSON/NDJSON, or whose
columns match no format, is refused at once), from its first 1 MB of content only: a gzip file
is inflated whole by the worker alone, streamed and capped (see logs.imports.readers). The
file is deleted when the job ends.
"""

import logging
import secrets
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.text import get_valid_filename

from console.errors import EncryptionKeyError
from console.models import Account
from logs import decompress, stale_jobs
from logs.imports import readers
from logs.imports.services import ImportFormatError, ImportReport, import_file, resolve_format
from logs.models import ImportJob, ImportState

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1.0  # seconds between progress writes (a batch is 1,000 rows)
STALE_MESSAGE = (
    "no progress for {minutes} minutes (the worker was restarted or crashed). Rows accepted before "
    "it stopped are kept; upload the file again to import the rest (rows already imported count as duplicates)."
)
_READ_SIZE = 1024 * 1024


class UploadRefused(ValueError):
    """The upload is not importable (too large, empty, unknown format); the message says why."""


def import_dir() -> Path:
    return Path(settings.METERLOG_IMPORT_DIR)


def start_import_job(
    *, account: Account, user, upload, fmt: str = "auto", quota_per_usd: Decimal | None = None
) -> ImportJob:
    """Store an uploaded file, check that it can be read in `fmt`, record the job and queue it
    once committed. Raises UploadRefused (nothing kept) when the file cannot be imported."""
    limit = settings.METERLOG_IMPORT_MAX_BYTES
    if upload.size > limit:
        raise UploadRefused(
            f"The file is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)} "
            "(METERLOG_IMPORT_MAX_BYTES). Split it, or use `manage.py import_logs` on the server."
        )
    if upload.size == 0:
        raise UploadRefused("The file is empty.")
    safe_name = get_valid_filename(Path(upload.name or "upload").name)[-100:] or "upload"
    relative = f"{account.pk}/{secrets.token_hex(8)}-{safe_name}"
    path = import_dir() / relative
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "wb") as handle:
        path.chmod(0o600)  # customer data: readable by the service's user only
        for chunk in upload.chunks():
            handle.write(chunk)
    try:
        detected, _container = resolve_format(path, fmt)
    except ImportFormatError as exc:
        path.unlink(missing_ok=True)
        # The messages name the stored file and the command's option; say it the page's way.
        message = str(exc).replace(path.name, safe_name).replace("; pass --format", "; choose the format")
        raise UploadRefused(message.replace("use --format ", "choose ")) from exc
    job = ImportJob.objects.create(
        account=account,
        user=user if user is not None and user.is_authenticated else None,
        format=fmt,
        detected_format=detected,
        quota_per_usd=quota_per_usd,
        file_name=(upload.name or safe_name)[:255],
        file_path=relative,
        file_size=upload.size,
    )
    transaction.on_commit(partial(_enqueue, job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from logs.tasks import run_import_job  # tasks import this module

    run_import_job.delay(job_id)


def estimate_rows(path: Path, container: str) -> int:
    """The progress bar's total: the (decompressed) file's line count, less the CSV header. A
    row with line breaks inside a quoted value counts more than once, so the bar stops at 99%
    until the job ends."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as raw:
        blocks = iter(partial(raw.read, _READ_SIZE), b"")
        if raw.read(2) == readers.GZIP_MAGIC:
            limit = settings.METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES
            blocks = decompress.inflate(blocks, limit=limit, max_members=readers.MAX_GZIP_MEMBERS)
        raw.seek(0)
        try:
            for block in blocks:
                lines += block.count(b"\n")
                last = block[-1:] or last
        except decompress.DecompressError:
            pass  # a broken or too big gzip file: the import reports it
    lines += last != b"\n"  # a last line without a newline
    return max(lines - 1, 0) if container == readers.CSV else lines


def run_import_job(job_id: int) -> ImportJob | None:
    """Import a queued job's file. Claimed with a conditional UPDATE (queued → running), so a
    task delivered twice imports once (and a second import would only find duplicates)."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, state=ImportState.QUEUED).update(
        state=ImportState.RUNNING, started_at=now, heartbeat_at=now
    )
    if claimed != 1:
        return None
    job = ImportJob.objects.select_related("account").get(pk=job_id)
    path = import_dir() / job.file_path
    try:
        # In the worker, not at upload: counting a big gzip file's lines takes seconds.
        estimate = estimate_rows(path, readers.sniff_container(path))
        ImportJob.objects.filter(pk=job_id).update(rows_estimate=estimate, heartbeat_at=timezone.now())
    except (readers.FileFormatError, OSError, EOFError):
        pass  # the import below reports what is wrong with the file
    last = [0.0]
    latest: list[ImportReport] = []

    def progress(report: ImportReport) -> None:
        latest[:] = [report]
        now = timezone.now()
        if now.timestamp() - last[0] >= PROGRESS_EVERY:
            last[0] = now.timestamp()
            ImportJob.objects.filter(pk=job_id).update(heartbeat_at=now, **_counts(report))

    try:
        report = import_file(
            account=job.account,
            path=path,
            fmt=job.detected_format or job.format,
            progress=progress,
            quota_per_usd=job.quota_per_usd,
        )
        ImportJob.objects.filter(pk=job_id).update(
            state=ImportState.DONE, finished_at=timezone.now(), detected_format=report.format, **_counts(report)
        )
        log.info("import job %s: %d rows, %d accepted", job_id, report.rows, report.accepted)
    except (ImportFormatError, OSError, EncryptionKeyError) as exc:
        # What was accepted before the fault stays (it is valid); the counts say how far it got.
        counts = _counts(latest[0]) if latest else {}
        ImportJob.objects.filter(pk=job_id).update(
            state=ImportState.FAILED,
            finished_at=timezone.now(),
            error=str(exc).replace(path.name, job.file_name),
            **counts,
        )
    except Exception:
        log.exception("import job %s failed", job_id)
        ImportJob.objects.filter(pk=job_id).update(
            state=ImportState.FAILED, finished_at=timezone.now(), error="The import failed on the server."
        )
        raise
    finally:
        path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job


def fail_stale_jobs(*, now: datetime | None = None) -> int:
    """Mark failed the jobs queued or running with no sign of life (heartbeat_at, else
    created_at) for METERLOG_JOB_STALE_MINUTES: their worker was restarted or crashed (the
    task's own `except` never ran), and the job's page would show its progress bar forever.
    A running import writes its heartbeat with its progress (every second or so), so a live
    one is never that quiet. The counts reached stay; the upload is deleted, as when a job
    ends. Returns how many jobs were marked; safe to run twice (conditional UPDATE per job)."""
    now = now or timezone.now()

    def remove_upload(job):
        if job.file_path:
            (import_dir() / job.file_path).unlink(missing_ok=True)

    failed = stale_jobs.fail_stale_jobs(
        ImportJob.objects.all(), active=(ImportState.QUEUED, ImportState.RUNNING), failed=ImportState.FAILED,
        message=STALE_MESSAGE, fields=("pk", "file_path"), now=now, cleanup=remove_upload,
    )  # fmt: skip
    if failed:
        minutes = settings.METERLOG_JOB_STALE_MINUTES
        log.warning("marked %d stale import jobs failed (no heartbeat for %d minutes)", failed, minutes)
    return failed


def _counts(report: ImportReport) -> dict:
    return {
        "rows": report.rows,
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "skipped": report.skipped,
        "rejected_count": report.rejected_count,
        "rejected": report.rejected,
    }
