"""Scheduled upkeep of the request log's partitions (PostgreSQL; no-ops on SQLite).

Both tasks are safe to run twice or concurrently: partition creation takes an advisory lock
and skips what exists, and the check only reads.
"""

import logging

from celery import shared_task

from console.models import TIER_RETENTION_DAYS, Account
from logs.partitions import default_partition_rows, ensure_upcoming_partitions

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
    log.info("partition upkeep: %d retention classes %s, created %d", len(classes), classes, len(created))
    return created


@shared_task
def check_default_partitions() -> dict[str, int]:
    """Alarm when rows sit in a DEFAULT partition: the purge cannot drop them by period and
    they block creating the partition they belong in."""
    rows = default_partition_rows()
    for name, count in sorted(rows.items()):
        log.error(
            "ALARM: %d rows in default partition %s; create the missing partition and move them",
            count,
            name,
        )
    return rows
