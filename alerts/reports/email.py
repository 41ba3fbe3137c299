"""A report as an email: subject, text and HTML from three templates, built by one function,
with the daily breakdown as a CSV attachment; and the signed unsubscribe link."""

from dataclasses import dataclass

from django.core import signing
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alerts.links import absolute
from alerts.models import Frequency, ReportSubscription
from alerts.reports.builder import Change, UsageReport
from analytics.report_tables import Table, priced_cost
from logs.templatetags.meterlog_format import format_usd, percent

UNSUBSCRIBE_SALT = "meterlog.reports.unsubscribe"


@dataclass(frozen=True)
class ReportEmail:
    subject: str
    text: str
    html: str
    attachments: list[tuple[str, bytes, str]]


@dataclass(frozen=True)
class SummaryLine:
    label: str
    value: str
    change: str  # "+12.5% vs previous period" or "" when there is nothing to compare


def unsubscribe_token(subscription: ReportSubscription) -> str:
    """A signed token naming the subscription: the link works without logging in, and only
    for that one subscription."""
    return signing.dumps({"s": subscription.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def subscription_from_token(token: str) -> ReportSubscription | None:
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    pk = payload.get("s") if isinstance(payload, dict) else None
    if not isinstance(pk, int):
        return None
    return ReportSubscription.objects.select_related("account", "user").filter(pk=pk).first()


def unsubscribe_url(subscription: ReportSubscription) -> str:
    return absolute(reverse("reports:unsubscribe", args=[unsubscribe_token(subscription)]))


def _change_text(change: Change, *, money: bool = False) -> str:
    if change.points is not None:
        return f"{change.points:+.1f} points vs previous period ({percent(change.previous, 1)})"
    if change.ratio is None:
        return "nothing in the previous period" if not change.previous else ""
    previous = format_usd(change.previous) if money else f"{change.previous:,}"
    return f"{change.ratio * 100:+.1f}% vs previous period ({previous})"


def summary(report: UsageReport) -> list[SummaryLine]:
    t, changes = report.total, report.changes
    lines = [
        SummaryLine("Requests", f"{t.requests:,}", _change_text(changes["requests"])),
        SummaryLine("Tokens", f"{t.total_tokens:,}", _change_text(changes["tokens"])),
        SummaryLine("Cost", format_usd(priced_cost(t)), _change_text(changes["cost"], money=True)),
        SummaryLine("Error rate", percent(t.error_rate, 1), _change_text(changes["error_rate"])),
    ]
    if t.unpriced:
        lines.append(SummaryLine("Unpriced requests", f"{t.unpriced:,}", "not in the cost figures"))
    return lines


def text_table(table: Table, *, limit: int | None = None) -> str:
    """A table as aligned plain-text columns (numbers to the right), for the text part."""
    rows = table.display_rows()[:limit]
    header = [column.label for column in table.columns]
    widths = [max([len(header[at]), *(len(row[at].text) for row in rows)]) for at in range(len(header))]

    def line(cells: list[str], numeric: list[bool]) -> str:
        parts = [cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    kinds = [column.kind in ("int", "usd", "percent") for column in table.columns]
    out = [line(header, kinds), line(["-" * w for w in widths], [False] * len(widths))]
    out += [line([cell.text for cell in row], kinds) for row in rows]
    return "\n".join(out)


@dataclass(frozen=True)
class BarTable:
    """A table for the mail: no share column; a bar in the first cell shows the share instead."""

    title: str
    columns: list
    rows: list[dict]  # {"cells": [Cell], "width": percent of the bar or None}


def bar_table(table: Table) -> BarTable:
    keys = [column.key for column in table.columns]
    share_at = keys.index("share") if "share" in keys else None
    rows = []
    for values, cells in zip(table.rows, table.display_rows(), strict=True):
        share = values[share_at] if share_at is not None else None
        kept = [cell for at, cell in enumerate(cells) if at != share_at]
        rows.append({"cells": kept, "width": None if share is None else max(1, round(share * 100))})
    columns = [column for at, column in enumerate(table.columns) if at != share_at]
    return BarTable(table.title, columns, rows)


def _peak_text(report: UsageReport) -> str:
    if report.peak_hour is None:
        return ""
    t = report.peak_hour.total
    return f"{t.requests:,} request{'' if t.requests == 1 else 's'} · {t.total_tokens:,} tokens"


def report_context(report: UsageReport, *, frequency: str = "", unsubscribe: str = "") -> dict:
    """What the email templates, the report page and the PDF show."""
    title = f"{Frequency(frequency).label.split(' ')[0]} usage report" if frequency else "Usage report"
    return {
        "report": report,
        "title": title,
        "account": report.account,
        "scope_label": report.scope.label,
        "filtered": bool(report.scope.model or report.scope.api_key),
        "period": report.period,
        "zone": report.period.zone.key,
        "summary": summary(report),
        "tables": report.tables,
        "mail_tables": {name: bar_table(table) for name, table in report.tables.items()},
        "text_tables": {name: text_table(table) for name, table in report.tables.items()},
        "peak_hour": report.peak_hour_local,
        "peak": _peak_text(report),
        "console_url": report.console_url(),
        "generate_url": report.generate_url(),
        "unsubscribe_url": unsubscribe,
        "alerts": report.alerts,
        "alerts_count": report.alerts_count,
    }


def render_report_email(
    report: UsageReport, *, frequency: str = "", subscription: ReportSubscription | None = None
) -> ReportEmail:
    context = report_context(
        report, frequency=frequency, unsubscribe=unsubscribe_url(subscription) if subscription else ""
    )
    # Times in the mail (alerts, peak hour) in the account's zone, whoever sends it.
    with timezone.override(report.period.zone):
        subject = " ".join(render_to_string("alerts/reports/email/subject.txt", context).split())
        text = render_to_string("alerts/reports/email/body.txt", context)
        html = render_to_string("alerts/reports/email/body.html", context)
    return ReportEmail(subject, text, html, [(report.csv_filename(), report.daily_csv(), "text/csv")])
