"""The rollups' own retention: they outlive the raw rows (ROLLUP_RETENTION_MONTHS, default
25), so analytics and the usage API keep counting days whose raw rows were purged.

Called by the retention purge (logs.retention.services, registered in analytics/apps.py)
in the same run. Whole UTC months go: the cutoff is the first day of the month
ROLLUP_RETENTION_MONTHS before the current one, so a monthly row (UsageDay's month
projections, dated the month's first day) is kept or deleted with all its days. An account
whose raw rows are kept longer than that keeps its rollups at least as long as its rows (the
planner reads rollups wherever they are complete; deleting them under kept raw rows would
make its figures drop).
"""

import time
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import transaction

from analytics.models import UsageDay, UsageHour, UsageMinute, UsageQuarter, UsageSlice, UsageSliceDay, UsageUtcDay

# Each table and its time column: a UTC start (datetime) or a date.
TABLES = (
    (UsageQuarter, "start"),
    (UsageHour, "start"),
    (UsageSlice, "start"),
    (UsageMinute, "minute"),
    (UsageSliceDay, "day"),
    (UsageUtcDay, "day"),
    # Local days of the account's reporting zone: off by at most a day from UTC, inside
    # the month kept whole.
    (UsageDay, "day"),
)


def months_back(day: date, months: int) -> date:
    """The first day of the month `months` before the month of `day`."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def rollup_cutoff(now: datetime) -> date:
    return months_back(now.astimezone(UTC).date(), settings.ROLLUP_RETENTION_MONTHS)


def purge_old_rollups(cutoffs, *, now: datetime, dry_run: bool, batch_rows: int, deadline: float) -> dict:
    """Delete (or, dry, count) rollup rows older than the rollup cutoff, for the accounts
    given as (account, raw cutoff); batched, each batch its own transaction."""
    cutoff = rollup_cutoff(now)
    groups: dict[date, list[int]] = {}
    for account, raw_cutoff in cutoffs:
        # A day of margin for local days; months_back(…, 0) is the month's first day.
        keep_since = min(cutoff, months_back(raw_cutoff.astimezone(UTC).date() - timedelta(days=1), 0))
        groups.setdefault(keep_since, []).append(account.pk)
    tables, finished = {}, True
    for model, column in TABLES:
        rows = 0
        for keep_since, account_ids in sorted(groups.items()):
            bound = keep_since if column == "day" else datetime(keep_since.year, keep_since.month, 1, tzinfo=UTC)
            queryset = model.objects.filter(account_id__in=account_ids, **{f"{column}__lt": bound})
            if dry_run:
                rows += queryset.count()
                continue
            deleted, done = _delete_batched(model, queryset, batch_rows=batch_rows, deadline=deadline)
            rows += deleted
            finished = finished and done
        tables[model.__name__] = rows
    months = settings.ROLLUP_RETENTION_MONTHS
    return {"cutoff": cutoff.isoformat(), "months": months, "tables": tables, "finished": finished}


def _delete_batched(model, queryset, *, batch_rows: int, deadline: float) -> tuple[int, bool]:
    deleted = 0
    while True:
        if time.monotonic() >= deadline:
            return deleted, False
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:batch_rows])
            if not ids:
                return deleted, True
            count, _ = model.objects.filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < batch_rows:
            return deleted, True
