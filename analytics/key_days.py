"""Daily requests per API key for the API keys page's sparklines (registered with
logs.key_views when Django starts): one usage query by day and key, from the rollups."""

from datetime import timedelta

from django.utils import timezone

from analytics.timekeys import local_midnight
from analytics.usage import UsageQuery, usage
from console.models import Account


def key_days(account: Account, days: int) -> dict[str, list[int]]:
    """{api_key: [requests of each of the last `days` local days, oldest first, today last]}."""
    now = timezone.now()
    today = now.astimezone(account.zone).date()
    start = local_midnight(today - timedelta(days=days - 1), account.zone)
    buckets = usage(
        UsageQuery(
            account=account,
            start=start,
            end=now,
            zone=account.zone,
            bucket="day",
            group_by=("api_key",),
            sums_only=True,
        )
    )
    series: dict[str, list[int]] = {}
    for index, bucket in enumerate(buckets[-days:]):
        for (api_key, *_), figures in bucket.groups.items():
            if api_key:
                series.setdefault(api_key, [0] * days)[index] = figures.requests
    return series
