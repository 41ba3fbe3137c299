"""Figures for the dashboard home (`/`) and the operator's all-accounts view.

Every number comes from analytics.usage (the one place usage queries live), so the cards,
the small trend charts and the operator table agree with the analytics pages, the usage API
and the log list's totals bar. Periods ("today", "this month") are days and months in the
viewer's chosen zone (console.zones); the comparison period has the same elapsed length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from analytics.comparison import Coverage, change_or_reason, coverage, data_start
from analytics.dashboard_top import TopRow, top_models_and_keys
from analytics.models import UsageQuarter
from analytics.plotting import go, plain
from analytics.usage import Bucket, Totals, UsageQuery, hour_start, local_midnight, sum_totals, totals, usage
from console.models import Account
from logs import gate, ranges
from logs.templatetags.meterlog_format import format_usd

TREND_DAYS = 30
TREND_HOURS = 24
TOP_ACCOUNTS = 10
OPERATOR_RANGES = ranges.subset("24h", "7d", "30d", "90d", "1y")  # windows ending now
DEFAULT_OPERATOR_RANGE = "30d"
# Small charts: no toolbar clutter, the same look as the analytics pages' plotly_white.
_SMALL_LAYOUT = {
    "template": "plotly_white",
    "height": 220,
    "margin": {"l": 48, "r": 12, "t": 8, "b": 36},
    "showlegend": False,
    "bargap": 0.15,
}


# --- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparedPeriod:
    """A period to date beside the same elapsed time of the period before it."""

    key: str  # "today" | "month"
    title: str  # "Today"
    previous_title: str  # "yesterday"
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime

    zone: ZoneInfo | None = None

    @property
    def previous_label(self) -> str:
        """Which dates the comparison reads: "vs Nov 1–6, same elapsed time"."""
        zone = self.zone or UTC
        first = self.previous_start.astimezone(zone)
        last = (self.previous_end - timedelta(microseconds=1)).astimezone(zone)
        if self.previous_end <= self.previous_start:
            return f"vs {self.previous_title}: nothing elapsed yet"
        if self.key == "today":
            return f"vs {self.previous_title} {first:%b} {first.day} to {self.previous_end.astimezone(zone):%H:%M}"
        span = f"{first:%b} {first.day}" if first.date() == last.date() else f"{first:%b} {first.day}–{last.day}"
        whole = self.previous_end == self.start
        return f"vs {span}, {'the whole month' if whole else 'same elapsed time'}"


@dataclass
class PeriodFigures:
    period: ComparedPeriod
    current: Totals
    previous: Totals
    cover: Coverage | None = None  # how much of the previous period the account's data covers

    def _change(self, current, previous) -> tuple[float | None, str]:
        cover = self.cover or coverage(first=None, start=self.period.previous_start, end=self.period.previous_end)
        zone = self.period.zone or UTC
        return change_or_reason(current, previous, previous_requests=self.previous.requests, cover=cover, zone=zone)

    @property
    def comparable(self) -> bool:
        """False when the previous period is empty or only partly covered by the data."""
        return not self.previous_note

    @property
    def previous_note(self) -> str:
        """Why there is no change shown ("no data in the previous period"), or ""."""
        _change, reason = self._change(self.current.requests, self.previous.requests)
        return "" if reason == "none in the previous period" else reason

    @property
    def cost_change(self) -> float | None:
        return self._change(self.current.cost, self.previous.cost)[0]

    @property
    def requests_change(self) -> float | None:
        return self._change(self.current.requests, self.previous.requests)[0]

    @property
    def error_rate_change(self) -> float | None:
        """In percentage points (0.02 = +2 points); None when either side has no requests
        or the previous period is only partly covered."""
        if self.current.error_rate is None or self.previous.error_rate is None or not self.comparable:
            return None
        # float(): on PostgreSQL the engine's counts (and so the rate) come back as Decimal.
        return float(self.current.error_rate) - float(self.previous.error_rate)

    @property
    def cost_change_text(self) -> str:
        return _signed(self.cost_change, "%")

    @property
    def requests_change_text(self) -> str:
        return _signed(self.requests_change, "%")

    @property
    def error_rate_change_text(self) -> str:
        return _signed(self.error_rate_change, " pts", places=1)


def _signed(value: float | None, unit: str, places: int = 0) -> str:
    """+12% / -3% / +1.5 pts; "" when there is nothing to compare with."""
    if value is None:
        return ""
    return f"{value * 100:+.{places}f}{unit}"


def periods(*, now: datetime, zone: ZoneInfo) -> tuple[ComparedPeriod, ComparedPeriod]:
    """Today and this month to `now` in `zone`, each beside the previous day / month to the
    same elapsed time (capped at that period's end: 31 March compares with all of February)."""
    today = now.astimezone(zone).date()
    day_start = local_midnight(today, zone)
    yesterday_start = local_midnight(today - timedelta(days=1), zone)
    month_first = today.replace(day=1)
    month_start = local_midnight(month_first, zone)
    last_month_start = local_midnight((month_first - timedelta(days=1)).replace(day=1), zone)
    day = ComparedPeriod(
        "today",
        "Today",
        "yesterday",
        day_start,
        now,
        yesterday_start,
        min(yesterday_start + (now - day_start), day_start),
        zone,
    )
    month = ComparedPeriod(
        "month",
        "This month",
        "last month",
        month_start,
        now,
        last_month_start,
        min(last_month_start + (now - month_start), month_start),
        zone,
    )
    return day, month


def _totals(account: Account, start: datetime, end: datetime, zone: ZoneInfo) -> Totals:
    if end <= start:  # the first instant of a day or month: nothing has elapsed yet
        return Totals()
    return totals(UsageQuery(account=account, start=start, end=end, zone=zone))


# --- dashboard -------------------------------------------------------------------------------


@dataclass
class Chart:
    """A plotly figure and the numbers it draws (shown as a table beside it)."""

    id: str  # the json_script element id the chart's data-figure attribute names
    title: str
    figure: dict  # plain JSON data of the plotly figure
    label: str  # heading of the bucket column ("Day" / "Hour")
    column: str  # heading of the value column
    rows: list[tuple[str, str]]  # (bucket label, exact value as text)


@dataclass
class Dashboard:
    zone: ZoneInfo
    has_usage: bool
    periods: list[PeriodFigures]
    days: list[Bucket]  # the last TREND_DAYS local days, today (to now) last
    hours: list[Bucket]  # the last TREND_HOURS local hours, the current one last
    charts: list[Chart]
    top_models: list[TopRow] = field(default_factory=list)  # last TREND_DAYS days, most expensive first
    top_keys: list[TopRow] = field(default_factory=list)


def has_usage(*, account: Account) -> bool:
    # The quarter rollups outlive raw rows after a retention purge, so they, not the log
    # table, say whether the account has ever sent a request.
    return gate.rollup_rows(UsageQuarter, account).exists()


def dashboard(*, account: Account, now: datetime, zone: ZoneInfo | None = None) -> Dashboard:
    """The dashboard's figures in `zone` (the viewer's chosen zone; the account's by default)."""
    zone = zone or account.zone
    # The first slot with a request answers both "any usage?" and how much of the previous
    # periods the data covers, in one read.
    first = data_start(account=account)
    if first is None:
        return Dashboard(zone, False, [], [], [], [])
    day, month = periods(now=now, zone=zone)
    today = now.astimezone(zone).date()
    # One daily series answers the 30-day charts, today and this month to date (it starts on
    # the 1st when the month is longer than the chart): fewer reads than one per figure.
    first_day = min(today - timedelta(days=TREND_DAYS - 1), today.replace(day=1))
    all_days = usage(
        UsageQuery(account=account, start=local_midnight(first_day, zone), end=now, zone=zone, bucket="day")
    )
    days = all_days[-TREND_DAYS:]
    hours = usage(
        UsageQuery(
            account=account,
            start=hour_start(now - timedelta(hours=TREND_HOURS - 1), zone),
            end=now,
            zone=zone,
            bucket="hour",
        )
    )
    today_figures = PeriodFigures(
        day,
        all_days[-1].total,
        _totals(account, day.previous_start, day.previous_end, zone),
        coverage(first=first, start=day.previous_start, end=day.previous_end),
    )
    month_figures = PeriodFigures(
        month,
        sum_totals(bucket.total for bucket in all_days if bucket.start >= month.start),
        _totals(account, month.previous_start, month.previous_end, zone),
        coverage(first=first, start=month.previous_start, end=month.previous_end),
    )
    day_labels = [_day_label(bucket, zone) for bucket in days]
    hour_labels = [_hour_label(bucket, zone) for bucket in hours]
    charts = [
        Chart(
            "fig-requests-by-day",
            f"Requests by day, last {TREND_DAYS} days",
            requests_by_day_figure(days, zone),
            "Day",
            "Requests",
            [(label, f"{bucket.total.requests:,}") for label, bucket in zip(day_labels, days, strict=True)],
        ),
        Chart(
            "fig-cost-by-day",
            f"Cost by day, last {TREND_DAYS} days",
            cost_by_day_figure(days, zone),
            "Day",
            "Cost (USD)",
            [(label, decimal_text(bucket.total.cost)) for label, bucket in zip(day_labels, days, strict=True)],
        ),
        Chart(
            "fig-requests-by-hour",
            f"Requests by hour, last {TREND_HOURS} hours",
            requests_by_hour_figure(hours, zone),
            "Hour",
            "Requests",
            [(label, f"{bucket.total.requests:,}") for label, bucket in zip(hour_labels, hours, strict=True)],
        ),
    ]
    top_models, top_keys = top_models_and_keys(account=account, start=days[0].start, end=now, zone=zone)
    return Dashboard(zone, True, [today_figures, month_figures], days, hours, charts, top_models, top_keys)


def _count_axis(counts: list[int]) -> dict:
    # Small counts would get ticks at 0.2, 0.4, ...: a request is whole.
    return {"rangemode": "tozero", "tickformat": ",d", **({"dtick": 1} if max(counts, default=0) < 5 else {})}


def _figure_data(fig: go.Figure) -> dict:
    # to_json() does plotly's own encoding; json_script then embeds the plain data safely.
    return json.loads(fig.to_json())


def _day_label(bucket: Bucket, zone: ZoneInfo) -> str:
    return bucket.start.astimezone(zone).date().isoformat()


def _hour_label(bucket: Bucket, zone: ZoneInfo) -> str:
    return bucket.start.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def requests_by_day_figure(days: list[Bucket], zone: ZoneInfo) -> dict:
    return _requests_bars(days, [_day_label(b, zone) for b in days], hover="%a %d %b", tickformat="%d %b")


def cost_by_day_figure(days: list[Bucket], zone: ZoneInfo) -> dict:
    fig = go.Figure(
        go.Scatter(
            x=[_day_label(b, zone) for b in days],
            # Floats for drawing only; the tables beside the charts show the exact decimals.
            y=[float(bucket.total.cost) for bucket in days],
            name="Cost",
            mode="lines+markers",
            line={"color": "#1a7f37"},
            text=[format_usd(bucket.total.cost) for bucket in days],
            hovertemplate="%{x|%a %d %b}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        **_SMALL_LAYOUT,
        xaxis={"type": "date", "tickformat": "%d %b"},
        yaxis={"rangemode": "tozero", "tickprefix": "$"},
    )
    return _figure_data(fig)


def requests_by_hour_figure(hours: list[Bucket], zone: ZoneInfo) -> dict:
    return _requests_bars(hours, [_hour_label(b, zone) for b in hours], hover="%H:%M", tickformat="%H:%M")


def _requests_bars(buckets: list[Bucket], labels: list[str], *, hover: str, tickformat: str) -> dict:
    counts = [int(bucket.total.requests) for bucket in buckets]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=counts,
            name="Requests",
            marker_color="#2f6fed",
            hovertemplate=f"%{{x|{hover}}}: %{{y:,}} requests<extra></extra>",
        )
    )
    fig.update_layout(**_SMALL_LAYOUT, xaxis={"type": "date", "tickformat": tickformat}, yaxis=_count_axis(counts))
    return _figure_data(fig)


# --- operator: all accounts ------------------------------------------------------------------


@dataclass
class AccountRow:
    account: Account
    totals: Totals


@dataclass
class OperatorView:
    range_key: str
    start: datetime
    end: datetime
    rows: list[AccountRow]  # every account, most expensive first
    total: Totals
    figure: dict


def operator_window(range_key: str, *, now: datetime) -> tuple[datetime, datetime]:
    """The range's length of whole UTC hours, ending with the current hour (which holds
    every request so far): the view reads UTC days and hours, never quarters or raw rows."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - ranges.PRESETS[range_key].length, end


def accounts_usage(*, start: datetime, end: datetime) -> list[AccountRow]:
    """Every account with its totals for [start, end), most expensive first (then by
    requests and name); accounts without requests in the range are listed with zeros.

    One usage query over all accounts' quarter rollups, not one per account."""
    (bucket,) = usage(
        UsageQuery(account=gate.all_accounts(), start=start, end=end, zone=ZoneInfo("UTC"), group_by=("account",))
    )
    by_account = {int(key[0]): figures for key, figures in bucket.groups.items()}
    rows = [
        AccountRow(account, by_account.get(account.pk, Totals())) for account in Account.objects.order_by("name", "pk")
    ]
    rows.sort(key=lambda row: (-row.totals.cost, -row.totals.requests, row.account.name.lower(), row.account.pk))
    return rows


def operator_view(*, range_key: str, now: datetime) -> OperatorView:
    start, end = operator_window(range_key, now=now)
    rows = accounts_usage(start=start, end=end)
    return OperatorView(range_key, start, end, rows, sum_totals(row.totals for row in rows), top_accounts_figure(rows))


def top_accounts_figure(rows: list[AccountRow]) -> dict:
    top = [row for row in rows if row.totals.cost > 0][:TOP_ACCOUNTS]
    top.reverse()  # plotly draws a horizontal bar chart bottom-up: the most expensive on top
    fig = go.Figure(
        go.Bar(
            x=[float(row.totals.cost) for row in top],
            y=[plain(row.account.name) for row in top],  # a name is text, not plotly's HTML
            orientation="h",
            marker_color="#1a7f37",
            text=[format_usd(row.totals.cost) for row in top],
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        template="plotly_white",
        height=max(160, 40 + 28 * len(top)),
        margin={"l": 12, "r": 12, "t": 8, "b": 36},
        showlegend=False,
        xaxis={"tickprefix": "$", "rangemode": "tozero"},
        yaxis={"automargin": True},
    )
    return _figure_data(fig)


CSV_HEADER = ("account", "name", "requests", "errors", "error_rate", "total_tokens", "cost", "unpriced_requests")


def decimal_text(value: Decimal) -> str:
    """An exact cost without exponent or trailing zeros ("0.0012", "0")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def operator_csv_rows(view: OperatorView):
    """The operator table as CSV rows: header, one row per account, then the totals row
    (account column empty). Costs are exact decimal strings, the error rate a fraction."""
    yield CSV_HEADER
    for row in view.rows:
        yield (row.account.slug, row.account.name, *_csv_measures(row.totals))
    yield ("", "All accounts", *_csv_measures(view.total))


def _csv_measures(figures: Totals) -> tuple:
    rate = "" if figures.error_rate is None else f"{figures.error_rate:.6f}"
    return (figures.requests, figures.errors, rate, figures.total_tokens, decimal_text(figures.cost), figures.unpriced)


def csv_filename(range_key: str, now: datetime) -> str:
    return f"meterlog-accounts-{range_key}-{now.astimezone(UTC):%Y%m%dT%H%M%S}.csv"
