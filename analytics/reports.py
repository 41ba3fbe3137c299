"""The figures behind the analytics page's four tabs, as tables.

Every number comes from analytics.usage (never an ORM aggregate here). A tab's report is a
few stats and a list of `Table`s; the page draws a chart from a table (analytics.figures),
shows the same table beside it, and the CSV download writes that same table, so a chart,
its numbers and its CSV cannot disagree.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.urls import reverse

from analytics.comparison import Coverage, change_text, coverage, data_start
from analytics.cost_stacks import cost_stack_table
from analytics.report_tables import Column, Stat, Table, priced_cost
from analytics.usage import (
    Totals,
    UsageFilters,
    UsageQuery,
    busiest_hours,
    heatmap,
    hour_start,
    local_midnight,
    peak_minute,
    sum_totals,
    top_requests,
    totals,
    usage,
)
from console.models import Account
from logs import selectors
from logs.ranges import subset
from logs.templatetags.meterlog_format import exact_usd, format_usd, percent

# The page's presets (its form adds "custom"): 24 hours to the end of this hour, the others
# whole local days up to today.
RANGE_PRESETS = subset("24h", "7d", "30d", "90d")
HOUR_BUCKET_MAX_DAYS = 1  # a custom range of one day is drawn by the hour
WEEK_BUCKET_FROM_DAYS = 121  # "week for > 120 days"
TOP_KEYS = 8
TOP_REQUESTS = 10
BUSIEST_HOURS = 10
ALERT_ERROR_RATE = 0.10  # the error-rate alert level drawn on the error chart
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# --- the period and filters of a page -----------------------------------------------------------


@dataclass(frozen=True)
class ReportPeriod:
    """The range an analytics tab shows (in the page's zone) and the same length just before it."""

    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    bucket: str  # hour | day | week
    zone: ZoneInfo
    label: str
    now: datetime | None = None  # when it was resolved: the bucket holding it is still filling

    @property
    def partial_from(self) -> datetime | None:
        """`now` when the range ends after it (the last bucket so far is partial), else None."""
        return self.now if self.now is not None and self.start <= self.now < self.end else None

    @property
    def first_day(self) -> date:
        return self.start.astimezone(self.zone).date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()


def resolve_period(
    *, range_name: str, start: date | None, end: date | None, zone: ZoneInfo, now: datetime
) -> ReportPeriod:
    """The range in `zone`: day ranges run from local midnight to local midnight (today
    included), 24 hours end at the end of the current local hour. The previous period is
    the same length just before."""
    if range_name == "24h":
        upper = hour_start(now, zone) + timedelta(hours=1)
        lower = upper - timedelta(hours=24)
        return ReportPeriod(
            lower, upper, lower - timedelta(hours=24), lower, "hour", zone, RANGE_PRESETS["24h"].label, now
        )
    if range_name in RANGE_PRESETS:
        days = RANGE_PRESETS[range_name].days
        last = now.astimezone(zone).date()
        first = last - timedelta(days=days - 1)
        label = RANGE_PRESETS[range_name].label
    else:
        first, last = start, end
        days = (last - first).days + 1
        label = f"{first.isoformat()} – {last.isoformat()}"
    if days <= HOUR_BUCKET_MAX_DAYS:
        bucket = "hour"
    elif days >= WEEK_BUCKET_FROM_DAYS:
        bucket = "week"
    else:
        bucket = "day"
    lower, upper = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    return ReportPeriod(
        lower, upper, local_midnight(first - timedelta(days=days), zone), lower, bucket, zone, label, now
    )


def _query(
    account, period: ReportPeriod, filters: UsageFilters, *, previous=False, bucket=None, group_by=()
) -> UsageQuery:
    start, end = (period.previous_start, period.previous_end) if previous else (period.start, period.end)
    return UsageQuery(
        account=account, start=start, end=end, zone=period.zone, bucket=bucket, group_by=group_by,
        sums_only=True, **filters.query_kwargs(),
    )  # fmt: skip


@dataclass
class Report:
    tab: str
    period: ReportPeriod
    empty: bool = False
    stats: list[Stat] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    def table(self, name: str) -> Table | None:
        return next((table for table in self.tables if table.name == name), None)


def _time_column(period: ReportPeriod, key: str = "start") -> Column:
    return Column(key, period.bucket.capitalize(), period.bucket)


def _local(moment: datetime, period: ReportPeriod) -> datetime:
    return moment.astimezone(period.zone)


def _previous_coverage(account: Account, period: ReportPeriod) -> Coverage:
    return coverage(first=data_start(account=account), start=period.previous_start, end=period.previous_end)


def _log_list_url(period: ReportPeriod, filters: UsageFilters, **params) -> str:
    """The log list showing the requests behind a bar (same range and filters)."""
    query = [("status", "error")]
    query += [("model", m) for m in ([params["model"]] if "model" in params else filters.models)]
    query += [("api_key", k) for k in filters.api_keys]
    if params.get("error_code"):
        query.append(("error_code", params["error_code"]))
    query += [("start", _local(period.start, period).isoformat()), ("end", _local(period.end, period).isoformat())]
    return f"{reverse('logs:list')}?{urlencode(query)}"


# --- the tabs ----------------------------------------------------------------------------------


def cost_report(*, account: Account, period: ReportPeriod, filters: UsageFilters) -> Report:
    report = Report("cost", period)
    buckets = usage(_query(account, period, filters, bucket=period.bucket))
    # Two reads, not one by (model, api_key): each is answered by a narrow projection of the
    # daily rows (a year of the largest bench account: 28k rows each instead of 255k).
    by_model_groups = usage(_query(account, period, filters, group_by=("model",)))[0].groups
    by_key_groups = usage(_query(account, period, filters, group_by=("api_key",)))[0].groups
    total = sum_totals(by_model_groups.values())
    if not total.requests:
        report.empty = True
        return report
    previous = totals(_query(account, period, filters, previous=True))
    cover = _previous_coverage(account, period)
    cost_sub = change_text(
        total.cost, previous.cost, previous_requests=previous.requests, cover=cover, zone=period.zone,
        shown=format_usd(previous.cost),
    )  # fmt: skip
    report.stats = [
        _cost_stat("Total cost", total, cost_sub),
        Stat("Requests", f"{total.requests:,}"),
        Stat(
            "Cost per 1K requests",
            format_usd(total.cost_per_1k_requests, none="–"),
            "priced requests only",
            exact_usd(total.cost_per_1k_requests, none=""),
        ),
    ]
    if total.unpriced:
        report.stats.append(
            Stat("Unpriced", f"{total.unpriced:,}", "requests without a price; not in the cost figures")
        )

    by_day = Table("cost_by_day", f"Cost by {period.bucket}", [
        _time_column(period), Column("cost", "Cost", "usd"), Column("requests", "Requests", "int"),
        Column("unpriced", "Unpriced", "int"),
    ])  # fmt: skip
    for bucket in buckets:
        t = bucket.total
        by_day.rows.append([_local(bucket.start, period), priced_cost(t), t.requests, t.unpriced])

    by_model = Table("cost_by_model", "Cost by model", [
        Column("model", "Model"), Column("cost", "Cost", "usd"), Column("share", "Share", "percent"),
        Column("requests", "Requests", "int"), Column("unpriced", "Unpriced", "int"),
    ])  # fmt: skip
    for model, t in _ranked(by_model_groups, 0):
        by_model.rows.append([model, priced_cost(t), _share(priced_cost(t), total.cost), t.requests, t.unpriced])

    names = dict(selectors.api_keys_for(account=account).values_list("identifier", "display_name"))
    by_key = Table("cost_by_key", f"Cost by API key (top {TOP_KEYS})", [
        Column("api_key", "API key"), Column("name", "Name"), Column("cost", "Cost", "usd"),
        Column("share", "Share", "percent"), Column("requests", "Requests", "int"),
        Column("unpriced", "Unpriced", "int"),
    ])  # fmt: skip
    ranked = _ranked(by_key_groups, 0)
    for key, t in ranked[:TOP_KEYS]:
        by_key.rows.append(
            [key, names.get(key, ""), priced_cost(t), _share(priced_cost(t), total.cost), t.requests, t.unpriced]
        )
    if len(ranked) > TOP_KEYS:
        rest = sum_totals(t for _key, t in ranked[TOP_KEYS:])
        label = f"other ({len(ranked) - TOP_KEYS} keys)"
        by_key.rows.append(
            [label, "", priced_cost(rest), _share(priced_cost(rest), total.cost), rest.requests, rest.unpriced]
        )

    expensive = Table("top_requests", f"The {TOP_REQUESTS} most expensive requests", [
        Column("request_id", "Request ID"), Column("timestamp", "Time", "time"), Column("model", "Model"),
        Column("api_key", "API key"), Column("total_tokens", "Tokens", "int"), Column("cost", "Cost", "usd"),
    ], chart=False)  # fmt: skip
    for row in top_requests(_query(account, period, filters), n=TOP_REQUESTS):
        expensive.rows.append([row["request_id"], _local(row["timestamp"], period), row["model"], row["api_key"],
                               row["total_tokens"], row["cost"]])  # fmt: skip
        expensive.hrefs.append(reverse("logs:detail", args=[row["request_id"]]))
    stacks = [
        cost_stack_table(
            usage(_query(account, period, filters, bucket=period.bucket, group_by=(column,))),
            name=f"cost_over_time_by_{column}", title=f"Cost by {period.bucket} and {noun}",
            time=_time_column(period), zone=period.zone,
        )
        for column, noun in (("model", "model"), ("api_key", "API key"))
    ]  # fmt: skip
    report.tables = [by_day, *stacks, by_model, by_key, expensive]
    return report


def _cost_stat(label: str, total: Totals, sub: str) -> Stat:
    cost = priced_cost(total)
    return Stat(label, format_usd(cost), sub, exact_usd(cost))


def _share(part: Decimal | None, whole: Decimal) -> float | None:
    # An unpriced part has no share of the cost ("–"), rather than 0%.
    return float(part / whole) if whole and part is not None else None


def _ranked(groups: dict[tuple, Totals], at: int) -> list[tuple[str, Totals]]:
    """Groups added up by one part of their key, most expensive first."""
    merged: dict[str, list[Totals]] = defaultdict(list)
    for key, t in groups.items():
        merged[key[at] if key[at] not in (None, "") else "(none)"].append(t)
    summed = [(name, sum_totals(items)) for name, items in merged.items()]
    return sorted(summed, key=lambda item: (-item[1].cost, -item[1].requests, item[0]))


def trend_report(*, account: Account, period: ReportPeriod, filters: UsageFilters) -> Report:
    report = Report("trend", period)
    current = usage(_query(account, period, filters, bucket=period.bucket))
    total = sum_totals(b.total for b in current)
    if not total.requests:
        report.empty = True
        return report
    # The previous period's buckets are laid on the current ones by position, so both
    # lines share the x-axis.
    previous = [b.total for b in usage(_query(account, period, filters, previous=True, bucket=period.bucket))]
    before = sum_totals(previous)
    cover = _previous_coverage(account, period)

    def compared(now_value, then_value) -> str:
        return change_text(now_value, then_value, previous_requests=before.requests, cover=cover, zone=period.zone)

    report.stats = [
        Stat("Requests", f"{total.requests:,}", compared(total.requests, before.requests)),
        Stat("Tokens", f"{total.total_tokens:,}", compared(total.total_tokens, before.total_tokens)),
        _cost_stat("Cost", total, compared(total.cost, before.cost)),
    ]
    time = _time_column(period)
    requests = Table("requests_over_time", "Requests", [
        time, Column("requests", "Requests", "int"), Column("previous_requests", "Previous period", "int"),
    ])  # fmt: skip
    tokens = Table("tokens_over_time", "Tokens", [
        time, Column("prompt_tokens", "Prompt", "int"), Column("completion_tokens", "Completion", "int"),
        Column("total_tokens", "Total", "int"), Column("previous_total_tokens", "Previous period", "int"),
    ])  # fmt: skip
    cost = Table("cost_over_time", "Cost", [
        time, Column("cost", "Cost", "usd"), Column("previous_cost", "Previous period", "usd"),
    ])  # fmt: skip
    for index, bucket in enumerate(current):
        t, start = bucket.total, _local(bucket.start, period)
        p = previous[index] if index < len(previous) else None
        requests.rows.append([start, t.requests, p.requests if p else None])
        tokens.rows.append([start, t.prompt_tokens, t.completion_tokens, t.total_tokens, p.total_tokens if p else None])
        cost.rows.append([start, priced_cost(t), priced_cost(p) if p else None])
    report.tables = [requests, tokens, cost]
    return report


def peak_report(*, account: Account, period: ReportPeriod, filters: UsageFilters) -> Report:
    report = Report("peak", period)
    q = _query(account, period, filters)
    grid = heatmap(q)
    if not any(any(row) for row in grid):
        report.empty = True
        return report
    hours = busiest_hours(q, n=BUSIEST_HOURS)
    peak_requests, peak_tokens = peak_minute(q)
    busiest = hours[0]
    report.stats = [
        Stat("Busiest hour", _local(busiest.start, period).strftime("%a %Y-%m-%d %H:%M"),
             f"{_count(busiest.total.requests, 'request')} · {_count(busiest.total.total_tokens, 'token')}"),
        Stat("Peak requests per minute", f"{peak_requests:,}"),
        Stat("Peak tokens per minute", f"{peak_tokens:,}"),
    ]  # fmt: skip
    by_weekday = Table(
        "weekday_hour",
        f"Requests by weekday and hour ({period.zone.key})",
        [Column("weekday", "Weekday")] + [Column(f"h{h:02d}", f"{h:02d}", "int") for h in range(24)],
    )
    for name, row in zip(WEEKDAYS, grid, strict=True):
        by_weekday.rows.append([name, *row])
    by_hour = Table("hour_of_day", "Requests by hour of day", [
        Column("hour", "Hour"), Column("requests", "Requests", "int"),
    ])  # fmt: skip
    for hour in range(24):
        by_hour.rows.append([f"{hour:02d}:00", sum(row[hour] for row in grid)])
    top = Table("busiest_hours", f"The {BUSIEST_HOURS} busiest hours", [
        Column("start", "Hour", "hour"), Column("requests", "Requests", "int"),
        Column("total_tokens", "Tokens", "int"), Column("errors", "Errors", "int"),
    ], chart=False)  # fmt: skip
    for bucket in hours[:BUSIEST_HOURS]:
        t = bucket.total
        top.rows.append([_local(bucket.start, period), t.requests, t.total_tokens, t.errors])
    report.tables = [by_weekday, by_hour, top]
    return report


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def errors_report(*, account: Account, period: ReportPeriod, filters: UsageFilters) -> Report:
    report = Report("errors", period)
    buckets = usage(_query(account, period, filters, bucket=period.bucket))
    # Two narrow reads (projections by model and by error code), not one by both.
    model_groups = usage(_query(account, period, filters, group_by=("model",)))[0].groups
    code_groups = usage(_query(account, period, filters, group_by=("status", "error_code")))[0].groups
    total = sum_totals(model_groups.values())
    if not total.requests:
        report.empty = True
        return report
    over = sum(1 for b in buckets if (b.total.error_rate or 0) > ALERT_ERROR_RATE)
    report.stats = [
        Stat("Error rate", percent(total.error_rate, 1), f"{total.errors:,} of {total.requests:,} requests"),
        Stat(f"{period.bucket.capitalize()}s above {ALERT_ERROR_RATE:.0%}", f"{over:,}", "the alert level"),
    ]
    over_time = Table("error_rate", "Error rate", [
        _time_column(period), Column("error_rate", "Error rate", "percent"),
        Column("errors", "Errors", "int"), Column("requests", "Requests", "int"),
    ])  # fmt: skip
    for bucket in buckets:
        t = bucket.total
        over_time.rows.append([_local(bucket.start, period), t.error_rate, t.errors, t.requests])

    codes: dict[str, int] = defaultdict(int)
    for (status, code), t in code_groups.items():
        if status == "error":
            codes[code or ""] += t.errors
    by_code = Table("errors_by_code", "Errors by error code", [
        Column("error_code", "Error code"), Column("errors", "Errors", "int"), Column("share", "Share", "percent"),
    ])  # fmt: skip
    for code, count in sorted(codes.items(), key=lambda item: (-item[1], item[0])):
        by_code.rows.append([code or "(none)", count, count / total.errors if total.errors else None])
        by_code.hrefs.append(_log_list_url(period, filters, error_code=code))
    by_model = Table("errors_by_model", "Error rate by model", [
        Column("model", "Model"), Column("error_rate", "Error rate", "percent"),
        Column("errors", "Errors", "int"), Column("requests", "Requests", "int"),
    ])  # fmt: skip
    summed = [(model, t) for (model,), t in model_groups.items()]
    for model, t in sorted(summed, key=lambda item: (-(item[1].error_rate or 0), -item[1].errors, item[0] or "")):
        by_model.rows.append([model, t.error_rate, t.errors, t.requests])
        by_model.hrefs.append(_log_list_url(period, filters, model=model))
    report.tables = [over_time, by_code, by_model]
    return report


REPORTS = {"cost": cost_report, "trend": trend_report, "peak": peak_report, "errors": errors_report}


def build_report(tab: str, *, account: Account, period: ReportPeriod, filters: UsageFilters) -> Report:
    return REPORTS[tab](account=account, period=period, filters=filters)
