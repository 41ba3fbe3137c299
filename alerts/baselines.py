"""The per-model p99 of request sizes that token-spike rules in mode "p99" compare against.

The rollups keep each slot's largest request, not the spread of sizes, so the p99 is read
from raw rows (analytics.monitoring.token_percentiles, through the tenant gate): once per
UTC day and baseline length (`days`), for every account that has such a rule, in one
set-based query per distinct `days`; kept in TokenBaseline and read from there by each
pass (one query). The baseline covers the `days` whole UTC days before today, so a spike
of today is not in its own baseline. A refresh that runs past the log statement timeout
leaves the old baseline (or none: its rules stay "unknown") and is tried again next pass.
"""

import logging
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

from alerts.models import TokenBaseline
from analytics import monitoring
from console.errors import QueryTimeout

log = logging.getLogger(__name__)


def token_baselines(wanted: dict[int, set[int]], accounts: dict, now: datetime) -> dict[tuple[int, int], dict]:
    """{(account id, days): {model: p99}} for `wanted` ({days: account ids}), refreshed
    where older than today (UTC)."""
    today = now.astimezone(UTC).date()
    account_ids = set().union(*wanted.values()) if wanted else set()
    rows = TokenBaseline.objects.filter(account_id__in=sorted(account_ids), days__in=sorted(wanted))
    found: dict[tuple[int, int], dict] = defaultdict(dict)
    fresh = set()
    for row in rows.values_list("account_id", "days", "model", "through", "p99"):
        account_id, days, model, through, p99 = row
        if through == today:
            fresh.add((account_id, days))
        if model:
            found[(account_id, days)][model] = p99
    for days, ids in wanted.items():
        stale = sorted(account_id for account_id in ids if (account_id, days) not in fresh)
        if stale:
            _refresh(days, [accounts[account_id] for account_id in stale], today, found)
    return found


def _refresh(days: int, stale: list, today, found: dict) -> None:
    end = datetime.combine(today, time(0), tzinfo=UTC)
    try:
        percentiles = monitoring.token_percentiles(stale, start=end - timedelta(days=days), end=end)
    except QueryTimeout:
        log.warning("token baselines of %s accounts (%s days) timed out; kept the old ones", len(stale), days)
        return
    rows, totals = [], defaultdict(int)
    for (account_id, model), (p99, requests) in percentiles.items():
        rows.append(
            TokenBaseline(account_id=account_id, days=days, model=model, through=today, p99=p99, requests=requests)
        )
        totals[account_id] += requests
    rows += [
        TokenBaseline(account_id=account.pk, days=days, model="", through=today, requests=totals[account.pk])
        for account in stale
    ]
    ids = [account.pk for account in stale]
    TokenBaseline.objects.filter(account_id__in=ids, days=days).delete()
    TokenBaseline.objects.bulk_create(rows)
    for account_id in ids:
        found[(account_id, days)] = {}
    for (account_id, model), (p99, _) in percentiles.items():
        found[(account_id, days)][model] = p99
