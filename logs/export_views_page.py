"""The console's export download (/logs/export/) and the owners' list of exports (/exports/).

The download takes the log list's URL parameters (the same FilterSet, so it exports exactly
the rows the list shows across all its pages) plus `format` and `compress`; the work is in
logs.exports.
"""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from console.tenancy import require_account
from logs import exports
from logs.selectors import QueryTimeout

EXPORTS_SHOWN = 200


@require_account()
def log_export(request):
    account = request.account
    export, errors = exports.parse_export_request(account=account, params=request.GET)
    if errors:
        # Only a hand-edited URL gets here (the menu's links carry the list's valid filters).
        lines = [f"{name}: {message}" for name, msgs in errors.items() for message in msgs]
        return HttpResponse("Export not started.\n" + "\n".join(lines) + "\n", status=400, content_type="text/plain")
    try:
        body = exports.start_export(account=account, export=export, params=request.GET, user=request.user)
    except QueryTimeout as exc:
        messages.error(request, f"Export not started: {exc}")
        params = request.GET.copy()
        for name in ("format", "compress"):
            params.pop(name, None)
        query = params.urlencode()
        return redirect(reverse("logs:list") + (f"?{query}" if query else ""))
    return exports.export_response(body, account=account, export=export)


@require_account(min_role="owner")
def export_list(request):
    records = list(exports.export_records(account=request.account)[:EXPORTS_SHOWN])
    return render(request, "logs/exports.html", {"records": records, "shown": EXPORTS_SHOWN})
