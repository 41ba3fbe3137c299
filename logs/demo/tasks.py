"""The demo's trickle of new traffic, so the log list's Live switch has something to show.

Scheduled by beat only when METERLOG_DEMO_TRICKLE is on and DEBUG is on (bin/demo turns it
on; console/settings.py): a production install never writes invented rows.
"""

import random

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from console.models import Account
from logs.demo.accounts import DEMO_ACCOUNTS
from logs.demo.traffic import live_records
from logs.ingest.services import ingest_records


@shared_task
def demo_trickle(max_per_account: int = 2) -> int:
    """Ingest 0 to `max_per_account` fresh requests into each demo account through the
    normal ingest service (prices, rollups, dedup as for a gateway's batch)."""
    if not (settings.DEBUG and settings.METERLOG_DEMO_TRICKLE):
        return 0
    rng = random.Random()  # noqa: S311 (demo data, not security)
    accounts = {account.slug: account for account in Account.objects.filter(slug__in=[d.slug for d in DEMO_ACCOUNTS])}
    stored = 0
    now = timezone.now()
    for demo in DEMO_ACCOUNTS:
        account = accounts.get(demo.slug)
        if account is None:  # seed_demo has not run
            continue
        records = live_records(demo, now, rng.randint(0, max_per_account), rng)
        if records:
            stored += ingest_records(account=account, records=records, source="demo").accepted
    return stored
