"""The dashboard home (`/`) and the operator's all-accounts view (`/analytics/operator/`).

Views stay thin: the account comes from the tenant gate, the figures from
analytics.dashboard (which reads through analytics.usage).
"""

import csv

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from analytics import dashboard as figures
from console.tenancy import require_account, require_operator
from logs import ranges
from logs.selectors import QueryTimeout


@require_account()
def dashboard(request):
    timeout_message = None
    try:
        board = figures.dashboard(account=request.account, now=timezone.now(), zone=timezone.get_current_timezone())
    except QueryTimeout as exc:
        board, timeout_message = None, str(exc) or QueryTimeout.message
    context = {"board": board, "account": request.account, "timeout_message": timeout_message}
    return render(request, "analytics/dashboard.html", context)


def _range_key(request) -> str | None:
    """The `range` parameter, the default when absent; None when it is not one we offer."""
    key = request.GET.get("range") or figures.DEFAULT_OPERATOR_RANGE
    return key if key in figures.OPERATOR_RANGES else None


def _range_error() -> str:
    return f"Unknown range; use one of {', '.join(figures.OPERATOR_RANGES)}."


@require_operator
def operator(request):
    range_key = _range_key(request)
    context = {
        "ranges": ranges.choices(figures.OPERATOR_RANGES),
        "range_key": range_key,
        "view": None,
        "error": None,
    }
    if range_key is None:
        context["error"] = _range_error()
        return render(request, "analytics/operator.html", context, status=400)
    try:
        context["view"] = figures.operator_view(range_key=range_key, now=timezone.now())
    except QueryTimeout as exc:
        context["error"] = str(exc) or QueryTimeout.message
    return render(request, "analytics/operator.html", context)


@require_operator
def operator_csv(request):
    range_key = _range_key(request)
    if range_key is None:
        return HttpResponse(_range_error(), status=400, content_type="text/plain; charset=utf-8")
    now = timezone.now()
    try:
        view = figures.operator_view(range_key=range_key, now=now)
    except QueryTimeout as exc:
        return HttpResponse(str(exc) or QueryTimeout.message, status=422, content_type="text/plain; charset=utf-8")
    # One row per account: small enough to build in memory.
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    csv.writer(response).writerows(figures.operator_csv_rows(view))
    response["Content-Disposition"] = f'attachment; filename="{figures.csv_filename(range_key, now)}"'
    return response
