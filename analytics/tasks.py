"""Background work of the analytics app."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from analytics.rollups import compact_month, purge_minutes, rebuild
from analytics.timekeys import previous_month
from console.models import Account

log = logging.getLogger(__name__)


@shared_task
def rebuild_after_zone_change(account_id: int) -> int:
    """Move the account's daily rows to its (new) reporting zone, for every day whose raw
    rows are still kept; returns the rows read."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return 0
    today = timezone.now().astimezone(account.zone).date()
    result = rebuild(account, today - timedelta(days=account.retention_days), today)
    log.info("rollups of %s moved to %s: %s rows", account.slug, account.timezone, result.rows)
    return result.rows


def zone_changed(account: Account) -> None:
    """Call after saving an account whose reporting zone changed."""
    from django.db import transaction

    transaction.on_commit(lambda: rebuild_after_zone_change.delay(account.pk))


def on_account_zone_changed(sender, *, account: Account, **kwargs) -> None:
    """Receiver of console.signals.account_zone_changed (connected in analytics.apps)."""
    zone_changed(account)


@shared_task
def purge_old_minutes() -> int:
    """Hourly: drop per-minute counts older than METERLOG_MINUTE_ROLLUP_HOURS."""
    return purge_minutes()


@shared_task
def compact_last_month() -> int:
    """Monthly (on the 3rd): rewrite every account's slices and daily rows of last month (in
    its reporting zone) in value order; rows of records arriving later are appended."""
    moved = 0
    for account in Account.objects.order_by("pk"):
        today = timezone.now().astimezone(account.zone).date()
        moved += compact_month(account, previous_month(today))
    log.info("rollups compacted: %s rows", moved)
    return moved
