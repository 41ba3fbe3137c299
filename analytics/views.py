"""The analytics page (/analytics/): four tabs of charts, each with its numbers and a CSV.

Views stay thin: the form reads the URL, analytics.reports computes the tables through
analytics.usage, analytics.figures turns tables into plotly figures.
"""

from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone

from analytics import figures, reports, services
from analytics.forms import DEFAULT_RANGE, RANGES, TABS, ZONES, AnalyticsForm
from analytics.usage import UsageError, UsageFilters
from console.audit import Actor
from console.tenancy import require_account
from logs.selectors import QueryTimeout


@require_account()
def analytics_page(request):
    account = request.account
    form = AnalyticsForm(request.GET, account=account)
    tab = form.tab
    wants_csv = request.GET.get("format") == "csv"
    # The zone the topbar chose (active for this request), and the browser's for ?zone=viewer.
    active_zone = timezone.get_current_timezone()
    browser_zone = getattr(getattr(request, "viewer_zones", None), "mine", None) or active_zone
    context = {
        "form": form,
        "tab": tab,
        "tab_label": TABS[tab],
        "tabs": TABS,
        "ranges": RANGES,
        "zones": ZONES,
        "account_zone": account.timezone,
        "viewer_zone": active_zone.key,
        "report": None,
        "charts": [],
        "message": None,
    }
    valid = form.is_valid()
    context["selected_range"] = form.cleaned_data.get("range") or request.GET.get("range") or DEFAULT_RANGE
    if not valid:
        if wants_csv:
            return HttpResponseBadRequest(_error_text(form), content_type="text/plain; charset=utf-8")
        return render(request, "analytics/page.html", context, status=400)

    data = form.cleaned_data
    zone = {"account": account.zone, "viewer": browser_zone}.get(data["zone"], active_zone)
    period = reports.resolve_period(
        range_name=data["range"], start=data.get("start"), end=data.get("end"), zone=zone, now=timezone.now()
    )
    filters = UsageFilters.from_cleaned(data)
    try:
        report = reports.build_report(tab, account=account, period=period, filters=filters)
    except (QueryTimeout, UsageError) as exc:
        message = getattr(exc, "message", None) or str(exc) or QueryTimeout.message
        status = 400 if isinstance(exc, UsageError) else 503
        if wants_csv:
            return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
        context |= {"message": message, "period": period}
        return render(request, "analytics/page.html", context, status=400 if status == 400 else 200)

    if wants_csv:
        response = _csv_response(report, request.GET.get("chart", ""), account=account)
        if response.status_code == 200:
            services.record_chart_csv(
                account=account,
                actor=Actor.from_request(request),
                tab=tab,
                chart=request.GET.get("chart", ""),
                period=report.period,
                params=request.GET,
            )
        return response
    charts = [
        {
            "table": table,
            "figure": figures.figure_json(table, period=report.period),
            "figure_id": f"figure-{table.name}",
        }
        for table in report.tables
    ]
    context |= {"report": report, "period": period, "charts": charts}
    return render(request, "analytics/page.html", context)


def _error_text(form) -> str:
    return "\n".join(f"{name}: {message}" for name, messages in form.errors.items() for message in messages)


def _csv_response(report: reports.Report, chart: str, *, account) -> HttpResponse:
    table = report.table(chart)
    if table is None:
        names = ", ".join(t.name for t in report.tables) or "none (no data in this range)"
        return HttpResponseBadRequest(
            f"chart: no chart {chart!r} on the {report.tab} tab; use one of: {names}",
            content_type="text/plain; charset=utf-8",
        )
    period = report.period
    filename = f"meterlog-{account.slug}-{table.name}-{period.first_day:%Y%m%d}-{period.last_day:%Y%m%d}.csv"
    response = HttpResponse(table.to_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
