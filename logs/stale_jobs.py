"""The one sweep for background jobs (exports, imports) whose worker died: a job queued or
running with no sign of life (heartbeat_at, else created_at) for METERLOG_JOB_STALE_MINUTES
is marked failed, so its page stops showing a progress bar forever."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Coalesce

BATCH = 500


def fail_stale_jobs(
    jobs: QuerySet,
    *,
    active: tuple[str, ...],
    failed: str,
    message: str,
    fields: tuple[str, ...],
    now: datetime,
    cleanup: Callable[[object], None],
) -> int:
    """Mark failed the stale jobs of `jobs` (in one of the `active` states) with `message`
    (formatted with `minutes`), then `cleanup(job)` each one marked (`fields` loaded).
    Returns how many; safe to run twice, and beside a job that finishes meanwhile: each job
    is marked by its own conditional UPDATE."""
    minutes = settings.METERLOG_JOB_STALE_MINUTES
    stale = (
        jobs.filter(state__in=active)
        .alias(seen=Coalesce("heartbeat_at", "created_at"))
        .filter(seen__lt=now - timedelta(minutes=minutes))
    )
    marked = 0
    for job in stale.only(*fields)[:BATCH]:
        if stale.filter(pk=job.pk).update(state=failed, error=message.format(minutes=minutes), finished_at=now):
            marked += 1
            cleanup(job)
    return marked
