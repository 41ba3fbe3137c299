"""The retention pages: an account's period, what it means, its oldest kept log and its last
purge (every member); every account's period and the recent purge runs (operators).

They live in logs, not console, because they read the log and the purge's records (console
imports neither logs nor analytics: tests/test_layers.py)."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from console.models import Account
from console.tenancy import require_account, require_operator
from logs.retention import archiving, selectors

OPERATOR_RUNS = 20


def _purge_at() -> str | None:
    """The daily purge's time of day in UTC, "02:15"."""
    at = selectors.purge_time_utc()
    return f"{at[0]:02d}:{at[1]:02d}" if at else None


def _next_purge(now: datetime) -> datetime | None:
    at = selectors.purge_time_utc()
    if at is None:
        return None
    today = now.astimezone(UTC).replace(hour=at[0], minute=at[1], second=0, microsecond=0)
    return today if today > now else today + timedelta(days=1)


@require_account()
def retention(request):
    account = request.account
    now = timezone.now()
    cutoff = now - timedelta(days=account.retention_days)
    oldest = selectors.oldest_kept_log(account=account)
    context = {
        "account": account,
        "cutoff": cutoff,
        "oldest": oldest,
        "oldest_age_days": (now - oldest).days if oldest else None,
        # Rows past the period wait for the next purge (or the purge has not run yet).
        "oldest_is_expired": bool(oldest and oldest < cutoff),
        "last_purge": selectors.last_purge(account=account),
        "purge_at": _purge_at(),
        "next_purge": _next_purge(now),
        "rollup_months": settings.ROLLUP_RETENTION_MONTHS,
    }
    return render(request, "logs/retention.html", context)


@require_operator
def retention_operator(request):
    runs = selectors.recent_purge_runs(limit=OPERATOR_RUNS)
    accounts = list(Account.objects.order_by("name", "slug"))
    last = selectors.last_purges(runs, accounts)
    accounts = [(account, last.get(account.pk)) for account in accounts]
    context = {
        "accounts": accounts,
        "runs": [
            (run, [selectors.AccountPurge.of(run, entry) for entry in run.accounts], archiving.summary(run))
            for run in runs
        ],
        "run_limit": OPERATOR_RUNS,
        "purge_at": _purge_at(),
        "rollup_months": settings.ROLLUP_RETENTION_MONTHS,
    }
    return render(request, "logs/retention_operator.html", context)
