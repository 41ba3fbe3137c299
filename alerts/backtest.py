"""How often a rule would have fired over the last 30 days, on the account's own figures.

The figures come from analytics.usage (the same reads the analytics pages make, for this
one account and the rule's scope); each day or hour is judged with alerts.rules as the live
rule judges it, and every change from not firing to firing counts as one firing. Where the
backtest differs from the live evaluation:

- cost anomaly: whole local days, each against the `days` before it (the live rule also
  watches today so far, so it can fire during the day);
- error rate: the window rounded up to whole hours, sliding an hour at a time (the live
  rule slides by 15 minutes);
- token spike: the largest request of each hour against the fixed limit; in the p99 mode
  each model's largest request of the hour against factor x its p99 over the days before
  that UTC day (read from raw rows once per day of the backtest, as the live baseline);
- budget: each local day (daily) or month to date at each day's end (monthly).
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import DatabaseError
from django.utils import timezone

from alerts import rules
from alerts.models import AlertRule, RuleKind, RuleState
from analytics import monitoring
from analytics.timekeys import local_midnight
from analytics.usage import UsageError, UsageQuery, usage
from console.errors import QueryTimeout

DAYS = 30
# Firings listed on the page; the count covers all of them.
LISTED = 20


@dataclass(frozen=True)
class Firing:
    start: datetime
    end: datetime
    value: Decimal | None
    threshold: Decimal | None


@dataclass
class Backtest:
    days: int
    unit: str  # "day" or "hour": what one judged slot is
    judged: int = 0  # slots with a verdict (firing or ok)
    breached: int = 0  # slots in breach
    firings: list[Firing] = field(default_factory=list)
    note: str = ""
    error: str = ""

    @property
    def count(self) -> int:
        return len(self.firings)

    @property
    def listed(self) -> list[Firing]:
        return self.firings[-LISTED:][::-1]


class _Judge:
    """Counts firing transitions over consecutive slots."""

    def __init__(self, result: Backtest):
        self.result = result
        self.was_firing = False

    def add(self, start: datetime, end: datetime, verdict: rules.Verdict, *, new_period: bool = False) -> None:
        if verdict.state == RuleState.UNKNOWN:
            # No verdict: the live rule keeps its state unknown and fires on the next breach.
            self.was_firing = False
            return
        self.result.judged += 1
        if new_period:
            self.was_firing = False
        if verdict.firing:
            self.result.breached += 1
            if not self.was_firing:
                self.result.firings.append(Firing(start, end, verdict.value, verdict.threshold))
        self.was_firing = verdict.firing


def _query(rule, start: datetime, end: datetime, bucket: str, *, sums_only: bool) -> list:
    return usage(
        UsageQuery(
            account=rule.account,
            start=start,
            end=end,
            zone=rule.account.zone,
            bucket=bucket,
            models=(rule.model,) if rule.model else (),
            api_keys=(rule.api_key,) if rule.api_key else (),
            sums_only=sums_only,
        )
    )


def backtest(rule: AlertRule, *, now: datetime | None = None, days: int = DAYS) -> Backtest:
    """The rule's firings over the last `days` days (it need not be saved: the edit page
    previews unsaved values). Never raises on a slow or refused read: `error` says why."""
    now = now or timezone.now()
    zone = rule.account.zone
    today = now.astimezone(zone).date()
    params = rules.params_of(rule.kind, rule.params)
    try:
        if rule.kind == RuleKind.COST_ANOMALY:
            return _cost_anomaly(rule, params, today, days)
        if rule.kind == RuleKind.BUDGET:
            return _budget(rule, params, today, days)
        if rule.kind == RuleKind.ERROR_RATE:
            return _error_rate(rule, params, now, days)
        return _token_spike(rule, params, now, days)
    except (UsageError, QueryTimeout, DatabaseError) as exc:
        unit = "day" if rule.kind in (RuleKind.COST_ANOMALY, RuleKind.BUDGET) else "hour"
        return Backtest(days, unit, error=f"The figures could not be read: {exc}")


def _daily(rule, first: date, last: date) -> list[tuple[date, datetime, datetime, Decimal, int]]:
    zone = rule.account.zone
    start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    buckets = _query(rule, start, end, "day", sums_only=True)
    return [
        (bucket.start.astimezone(zone).date(), bucket.start, bucket.end, bucket.total.cost, bucket.total.requests)
        for bucket in buckets
    ]


def _cost_anomaly(rule, params, today: date, days: int) -> Backtest:
    result = Backtest(days, "day", note="Whole days, each against the days before it.")
    first = today - timedelta(days=days)
    rows = _daily(rule, first - timedelta(days=int(params["days"])), today - timedelta(days=1))
    # As the live rule reads them: a day without traffic is missing (it cost nothing, and it
    # does not count towards the minimum history).
    costs = {day: cost for day, _start, _end, cost, requests in rows if requests}
    judge = _Judge(result)
    for day, start, end, _cost, _requests in rows:
        if day < first:
            continue
        # Judged as "yesterday" the day after it; today so far is left out of `costs`.
        known = {d: c for d, c in costs.items() if d <= day}
        judge.add(start, end, rules.cost_anomaly(params, known, day + timedelta(days=1)))
    return result


def _budget(rule, params, today: date, days: int) -> Backtest:
    first = today - timedelta(days=days)
    monthly = params["period"] == "monthly"
    result = Backtest(days, "day", note="Month to date at the end of each day." if monthly else "Each day's spend.")
    rows = _daily(rule, first.replace(day=1) if monthly else first, today - timedelta(days=1))
    judge = _Judge(result)
    spent, month = Decimal(0), None
    for day, start, end, cost, _requests in rows:
        if monthly and (day.year, day.month) != month:
            spent, month = Decimal(0), (day.year, day.month)
        spent = spent + cost if monthly else cost
        if day < first:
            continue
        # A new period starts from nothing: a daily budget can fire again the next day.
        new_period = not monthly or day.day == 1
        period_start = local_midnight(day.replace(day=1), rule.account.zone) if monthly else start
        judge.add(period_start, end, rules.budget(params, spent=spent), new_period=new_period)
    return result


def _hours(rule, now: datetime, days: int, before_hours: int, *, sums_only: bool):
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    return start, _query(rule, start - timedelta(hours=before_hours), end, "hour", sums_only=sums_only)


def _error_rate(rule, params, now: datetime, days: int) -> Backtest:
    hours = max(1, math.ceil(int(params["window_minutes"]) / 60))
    result = Backtest(days, "hour", note=f"Windows of {hours} whole hour{'s' if hours > 1 else ''}, an hour apart.")
    start, buckets = _hours(rule, now, days, hours - 1, sums_only=True)
    judge = _Judge(result)
    for index, bucket in enumerate(buckets):
        if bucket.start < start:
            continue
        window = buckets[max(0, index - hours + 1) : index + 1]
        requests = sum(b.total.requests for b in window)
        errors = sum(b.total.errors for b in window)
        verdict = rules.error_rate(params, requests=requests, errors=errors)
        judge.add(window[0].start, bucket.end, verdict)
    return result


def _token_spike(rule, params, now: datetime, days: int) -> Backtest:
    if params["mode"] == "p99":
        return _token_spike_p99(rule, params, now, days)
    result = Backtest(days, "hour", note="The largest request of each hour.")
    _start, buckets = _hours(rule, now, days, 0, sums_only=False)
    judge = _Judge(result)
    for bucket in buckets:
        total = bucket.total
        verdict = rules.token_spike(params, max_tokens=total.max_total_tokens if total.requests else None)
        judge.add(bucket.start, bucket.end, verdict)
    return result


def _token_spike_p99(rule, params, now: datetime, days: int) -> Backtest:
    """Each hour's largest request of each model against factor x that model's p99 over the
    `days` whole UTC days before the hour's day, as the live rule's daily baseline."""
    result = Backtest(
        days, "hour", note="The largest request of each model and hour, against its p99 of the days before."
    )
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    buckets = usage(
        UsageQuery(
            account=rule.account, start=start, end=end, zone=rule.account.zone, bucket="hour",
            models=(rule.model,) if rule.model else (), group_by=("model",),
        )
    )  # fmt: skip
    baselines: dict[date, dict[str, int]] = {}
    judge = _Judge(result)
    for bucket in buckets:
        day = bucket.start.astimezone(UTC).date()
        if day not in baselines:
            # One raw read per UTC day of the backtest (30 for one account), as
            # alerts.baselines reads one a day for the live rule.
            midnight = datetime.combine(day, time(0), tzinfo=UTC)
            found = monitoring.token_percentiles(
                [rule.account], start=midnight - timedelta(days=int(params["days"])), end=midnight
            )
            baselines[day] = {model: p99 for (_account, model), (p99, _n) in found.items()}
        worst = None
        for (model,), totals in bucket.groups.items():
            if not totals.requests:
                continue
            verdict = rules.token_spike(params, max_tokens=totals.max_total_tokens, p99=baselines[day].get(model))
            if worst is None or (verdict.firing and not worst.firing) or worst.state == RuleState.UNKNOWN:
                worst = verdict
        judge.add(bucket.start, bucket.end, worst or rules.token_spike(params, max_tokens=None, p99=1))
    return result
