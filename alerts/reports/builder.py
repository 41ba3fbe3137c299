"""The figures of one report: one account, a period of whole local days, optionally one
model and / or one API key.

Every figure comes from analytics.usage for that one account (the tenant gate is under it);
the alerts fired are the account's own AlertEvent rows. The email, the "Generate report"
page and the PDF are all drawn from one `UsageReport`, so they cannot disagree.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.urls import reverse

from alerts.links import absolute
from alerts.models import AlertEvent, EventState
from analytics.report_tables import Column, Table, priced_cost
from analytics.reports import ReportPeriod
from analytics.usage import Bucket, Totals, UsageQuery, busiest_hours, sum_totals, totals, usage
from console.models import Account
from logs import selectors

TOP_KEYS = 10
MAX_ALERTS = 50  # listed in the report; the count above says how many there were in all
NO_VALUE = "(none)"


@dataclass(frozen=True)
class ReportScope:
    """Whose figures: one account, the whole of it or one model and / or API key ("" = all)."""

    account: Account
    model: str = ""
    api_key: str = ""

    def query_kwargs(self) -> dict[str, tuple[str, ...]]:
        return {"models": (self.model,) if self.model else (), "api_keys": (self.api_key,) if self.api_key else ()}

    @property
    def label(self) -> str:
        parts = [f"model {self.model}" if self.model else "", f"API key {self.api_key}" if self.api_key else ""]
        return ", ".join(part for part in parts if part) or "all models and API keys"


@dataclass(frozen=True)
class Change:
    """A figure against the previous period: the ratio for counts and cost, points for a rate."""

    current: object
    previous: object
    ratio: float | None  # (current - previous) / previous; None without a previous value
    points: float | None = None  # error rate only: current - previous, in percentage points


def _change(current, previous) -> Change:
    ratio = float((Decimal(current) - Decimal(previous)) / Decimal(previous)) if previous else None
    return Change(current, previous, ratio)


def _rate_change(current: float | None, previous: float | None) -> Change:
    points = (current - previous) * 100 if current is not None and previous is not None else None
    return Change(current, previous, None, points)


@dataclass
class UsageReport:
    scope: ReportScope
    period: ReportPeriod
    total: Totals
    previous: Totals
    days: list[Bucket]
    by_model: list[tuple[str, Totals]]
    top_keys: list[tuple[str, str, Totals]]  # (identifier, display name, totals)
    other_keys: tuple[int, Totals] | None  # the keys past the top ones: (how many, their sum)
    peak_hour: Bucket | None
    errors_by_code: list[tuple[str, int]]
    alerts: list[AlertEvent]
    alerts_count: int
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def account(self) -> Account:
        return self.scope.account

    @property
    def empty(self) -> bool:
        return not self.total.requests

    @property
    def first_day(self) -> date:
        return self.period.first_day

    @property
    def last_day(self) -> date:
        return self.period.last_day

    @property
    def previous_last_day(self) -> date:
        return (self.period.previous_end - timedelta(microseconds=1)).astimezone(self.period.zone).date()

    @property
    def changes(self) -> dict[str, Change]:
        t, p = self.total, self.previous
        return {
            "requests": _change(t.requests, p.requests),
            "tokens": _change(t.total_tokens, p.total_tokens),
            "cost": _change(t.cost, p.cost),
            "error_rate": _rate_change(t.error_rate, p.error_rate),
        }

    @property
    def peak_hour_local(self) -> datetime | None:
        return self.peak_hour.start.astimezone(self.period.zone) if self.peak_hour else None

    def daily_csv(self) -> bytes:
        """The daily breakdown as CSV (UTF-8, CRLF): one row per local day of the period."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(DAILY_COLUMNS)
        for bucket in self.days:
            t = bucket.total
            writer.writerow([
                bucket.start.astimezone(self.period.zone).date().isoformat(), t.requests, t.errors,
                "" if t.error_rate is None else f"{t.error_rate:.6f}", t.prompt_tokens, t.completion_tokens,
                t.total_tokens, format(t.cost, "f"), t.unpriced,
            ])  # fmt: skip
        return buffer.getvalue().encode()

    def csv_filename(self) -> str:
        return f"meterlog-{self.account.slug}-daily-{self.first_day:%Y%m%d}-{self.last_day:%Y%m%d}.csv"

    def console_query(self) -> list[tuple[str, str]]:
        query = [("start", self.first_day.isoformat()), ("end", self.last_day.isoformat())]
        query += [("model", self.scope.model)] if self.scope.model else []
        query += [("api_key", self.scope.api_key)] if self.scope.api_key else []
        return query

    def console_url(self) -> str:
        """The analytics page for this period and filter, absolute (for the email), through
        /reports/open/ so it opens in the report's account (a reader may be in several)."""
        query = [("tab", "cost"), ("range", "custom"), *self.console_query(), ("zone", "account")]
        target = f"{reverse('analytics:page')}?{urlencode(query)}"
        return absolute(f"{reverse('reports:open')}?{urlencode([('account', self.account.slug), ('next', target)])}")

    def generate_url(self) -> str:
        """The printable report, naming the account (a reader may be in several)."""
        query = [("account", self.account.slug), *self.console_query()]
        return absolute(f"{reverse('reports:generate')}?{urlencode(query)}")


DAILY_COLUMNS = [
    "day", "requests", "errors", "error_rate", "prompt_tokens", "completion_tokens", "total_tokens", "cost",
    "unpriced",
]  # fmt: skip


def _query(scope: ReportScope, start: datetime, end: datetime, period: ReportPeriod, **extra) -> UsageQuery:
    return UsageQuery(
        account=scope.account, start=start, end=end, zone=period.zone, sums_only=True,
        **scope.query_kwargs(), **extra,
    )  # fmt: skip


def _ranked(groups: dict[tuple, Totals]) -> list[tuple[str, Totals]]:
    merged: dict[str, list[Totals]] = {}
    for key, t in groups.items():
        merged.setdefault(key[0] if key[0] not in (None, "") else NO_VALUE, []).append(t)
    summed = [(name, sum_totals(items)) for name, items in merged.items()]
    return sorted(summed, key=lambda item: (-item[1].cost, -item[1].requests, item[0]))


def build_report(scope: ReportScope, period: ReportPeriod) -> UsageReport:
    """Six reads through analytics.usage (days, previous total, by model, by key, by error
    code, busiest hour) and one of the account's alert events."""
    start, end = period.start, period.end
    days = usage(_query(scope, start, end, period, bucket="day"))
    total = sum_totals(bucket.total for bucket in days)
    previous = totals(_query(scope, period.previous_start, period.previous_end, period))
    by_model = _ranked(usage(_query(scope, start, end, period, group_by=("model",)))[0].groups)
    ranked_keys = _ranked(usage(_query(scope, start, end, period, group_by=("api_key",)))[0].groups)
    names = dict(selectors.api_keys_for(account=scope.account).values_list("identifier", "display_name"))
    top_keys = [(key, names.get(key, ""), t) for key, t in ranked_keys[:TOP_KEYS]]
    rest = ranked_keys[TOP_KEYS:]
    other_keys = (len(rest), sum_totals(t for _key, t in rest)) if rest else None

    codes: dict[str, int] = {}
    code_groups = usage(_query(scope, start, end, period, group_by=("status", "error_code")))[0].groups
    for (status, code), t in code_groups.items():
        if status == "error" and t.errors:
            codes[code or NO_VALUE] = codes.get(code or NO_VALUE, 0) + t.errors
    errors_by_code = sorted(codes.items(), key=lambda item: (-item[1], item[0]))
    peak = busiest_hours(_query(scope, start, end, period), n=1) if total.requests else []

    events = _alert_events(scope, start, end)
    report = UsageReport(
        scope=scope, period=period, total=total, previous=previous, days=days, by_model=by_model,
        top_keys=top_keys, other_keys=other_keys, peak_hour=peak[0] if peak else None,
        errors_by_code=errors_by_code, alerts=list(events[:MAX_ALERTS]), alerts_count=events.count(),
    )  # fmt: skip
    report.tables = _tables(report)
    return report


def _alert_events(scope: ReportScope, start: datetime, end: datetime):
    """The account's alerts that fired in the period; for a filtered report, those of rules
    on the whole account or on the same model / key."""
    events = AlertEvent.objects.filter(
        account=scope.account, state=EventState.FIRED, created_at__gte=start, created_at__lt=end
    )
    if scope.model:
        events = events.filter(model__in=("", scope.model))
    if scope.api_key:
        events = events.filter(api_key__in=("", scope.api_key))
    return events.order_by("created_at", "pk")


def _share(part, whole) -> float | None:
    # An unpriced part has no share of the cost ("–"), rather than 0%.
    return float(Decimal(part) / Decimal(whole)) if whole and part is not None else None


def _tables(report: UsageReport) -> dict[str, Table]:
    """The report's figures as analytics tables: the page shows them, analytics.figures
    draws the same ones (the names and columns are those its figures read)."""
    zone, total = report.period.zone, report.total
    daily = Table("cost_by_day", "Daily breakdown", [
        Column("start", "Day", "day"), Column("requests", "Requests", "int"), Column("errors", "Errors", "int"),
        Column("error_rate", "Error rate", "percent"), Column("total_tokens", "Tokens", "int"),
        Column("cost", "Cost", "usd"), Column("unpriced", "Unpriced", "int"),
    ])  # fmt: skip
    for bucket in report.days:
        t = bucket.total
        daily.rows.append([bucket.start.astimezone(zone), t.requests, t.errors, t.error_rate, t.total_tokens,
                           priced_cost(t), t.unpriced])  # fmt: skip
    by_model = Table("cost_by_model", "Cost by model", [
        Column("model", "Model"), Column("cost", "Cost", "usd"), Column("share", "Share", "percent"),
        Column("requests", "Requests", "int"), Column("total_tokens", "Tokens", "int"),
    ])  # fmt: skip
    for model, t in report.by_model:
        by_model.rows.append([model, priced_cost(t), _share(priced_cost(t), total.cost), t.requests, t.total_tokens])
    by_key = Table("cost_by_key", f"Top API keys (by cost, top {TOP_KEYS})", [
        Column("api_key", "API key"), Column("name", "Name"), Column("cost", "Cost", "usd"),
        Column("share", "Share", "percent"), Column("requests", "Requests", "int"),
        Column("total_tokens", "Tokens", "int"),
    ])  # fmt: skip
    for key, name, t in report.top_keys:
        by_key.rows.append([key, name, priced_cost(t), _share(priced_cost(t), total.cost), t.requests, t.total_tokens])
    if report.other_keys:
        count, t = report.other_keys
        by_key.rows.append([f"other ({count} keys)", "", priced_cost(t), _share(priced_cost(t), total.cost), t.requests,
                            t.total_tokens])  # fmt: skip
    by_code = Table("errors_by_code", "Errors by code", [
        Column("error_code", "Error code"), Column("errors", "Errors", "int"), Column("share", "Share", "percent"),
    ])  # fmt: skip
    for code, count in report.errors_by_code:
        by_code.rows.append([code, count, _share(count, total.errors)])
    return {table.name: table for table in (daily, by_model, by_key, by_code)}
