"""The console's export download (/logs/export/), the list of exports (/exports/: a "New
export" form, and Run again / Download again of a past export with its stored filters) and
the files of export jobs (/exports/<id>/download/, /exports/<id>/progress/).

The download takes the log list's URL parameters (the same FilterSet, so it exports exactly
the rows the list shows across all its pages) plus `format`, `compress`, `split` and `csv_safe`; the work
is in logs.exports. A set of more than METERLOG_EXPORT_ASYNC_ROWS rows becomes a job
(logs.exports.jobs) and the browser goes to the Exports page, which shows its progress.

Owners see every export of the account; other members see the exports they started (so a
viewer can follow and download the job they queued).
"""

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from console.login_throttle import client_ip
from console.models import Role
from console.tenancy import require_account
from logs import selectors
from logs.exports import jobs
from logs.exports.request import (
    CONTENT_TYPES,
    GZIP_CONTENT_TYPE,
    ZIP_CONTENT_TYPE,
    filter_params,
    parse_export_request,
    rerun_params,
)
from logs.exports.service import export_records, export_response, is_large, start_export
from logs.models import ExportFormat, ExportRecord, ExportState, Status
from logs.ranges import LOG_RANGES, choices
from logs.selectors import QueryTimeout

EXPORTS_SHOWN = 200
# The Exports page's "New export" form sends origin=exports: its errors come back on that
# page, in the form, rather than as the plain text a hand-edited URL gets.
FROM_EXPORTS_PAGE = "exports"


@require_account()
def log_export(request):
    account = request.account
    export, errors = parse_export_request(account=account, params=request.GET)
    if errors and request.GET.get("origin") == FROM_EXPORTS_PAGE:
        return _export_list_page(request, form_params=request.GET, form_errors=errors, status=400)
    if errors:
        # Only a hand-edited URL gets here (the menu's links carry the list's valid filters).
        lines = [f"{name}: {message}" for name, msgs in errors.items() for message in msgs]
        return HttpResponse("Export not started.\n" + "\n".join(lines) + "\n", status=400, content_type="text/plain")
    try:
        if is_large(filterset=export.filterset):
            jobs.queue_export_job(
                account=account, export=export, params=request.GET, user=request.user, ip=client_ip(request)
            )
            messages.info(
                request,
                "More rows than a download streams at once: the file is being prepared below, "
                "with a download link when it is ready.",
            )
            return redirect("logs:exports")
        body = start_export(
            account=account, export=export, params=request.GET, user=request.user, ip=client_ip(request)
        )
    except QueryTimeout as exc:
        messages.error(request, f"Export not started: {exc}")
        params = request.GET.copy()
        for name in ("format", "compress", "split", "csv_safe"):
            params.pop(name, None)
        query = params.urlencode()
        return redirect(reverse("logs:list") + (f"?{query}" if query else ""))
    return export_response(body, account=account, export=export)


def _visible_exports(request):
    """The tenant gate of this page: the account's exports, a non-owner's own only."""
    is_owner = request.account_role == Role.OWNER
    return export_records(account=request.account, user=None if is_owner else request.user)


def _get_export_for_user(request, pk: int) -> ExportRecord:
    record = _visible_exports(request).filter(pk=pk).first()
    if record is None:
        raise Http404("No such export")
    return record


@require_account()
def export_list(request):
    return _export_list_page(request, open_form=bool(request.GET.get("new")))


def _export_list_page(request, *, form_params=None, form_errors=None, open_form: bool = False, status: int = 200):
    records = list(_visible_exports(request)[:EXPORTS_SHOWN])
    export_url = reverse("logs:export")
    for record in records:
        # Run again: the same filters and options, a new export (and a new access-log entry).
        record.rerun_url = f"{export_url}?{rerun_params(record).urlencode()}"
    context = {
        "records": records,
        "shown": EXPORTS_SHOWN,
        "is_owner": request.account_role == Role.OWNER,
        "any_active": any(record.is_active for record in records),
        "now": timezone.now(),
        "new_export": _new_export_form(request.account, form_params, form_errors or {}, open_form=open_form),
    }
    return render(request, "logs/exports.html", context, status=status)


def _new_export_form(account, params, errors: dict, *, open_form: bool = False) -> dict:
    """What the "New export" form needs: the pickers' choices, and after a refused request
    its values and errors (the form then opens)."""
    params = params if params is not None else {}
    stored = filter_params(params) if params else {}

    def selected(name):
        value = stored.get(name, [])
        return value if isinstance(value, list) else [value]

    return {
        "open": open_form or bool(errors),
        "errors": errors,
        "other_errors": [m for name, ms in errors.items() if name not in _FORM_FIELDS for m in ms],
        "ranges": choices(LOG_RANGES),
        "formats": ExportFormat.choices,
        "statuses": Status.choices,
        "models": list(selectors.models_for(account=account).order_by("model").values_list("model", flat=True)),
        "api_keys": [
            (key.identifier, key.display_name)
            for key in selectors.api_keys_for(account=account).order_by("identifier").only("identifier", "display_name")
        ],
        "values": {
            "range": params.get("range", "") if params else "7d",
            "start": params.get("start", "") if params else "",
            "end": params.get("end", "") if params else "",
            "format": params.get("format", "csv") if params else "csv",
            "compress": bool(params.get("compress")) if params else False,
            "split": bool(params.get("split")) if params else False,
            "csv_safe": bool(params.get("csv_safe")) if params else False,
            "models": selected("model"),
            "api_keys": selected("api_key"),
            "statuses": selected("status"),
        },
    }


_FORM_FIELDS = {"range", "start", "end", "model", "api_key", "status", "format", "compress", "split", "csv_safe"}


def _progress(record: ExportRecord) -> dict:
    expired = jobs.is_expired(record)
    ready = record.state == ExportState.DONE and not expired
    return {
        "id": record.pk,
        "state": ExportState.EXPIRED.value if expired else record.state,
        "rows": record.rows or 0,
        "rows_estimate": record.rows_estimate,
        "percent": record.percent,
        "error": record.error,
        "download_url": reverse("logs:export_download", args=[record.pk]) if ready else None,
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
    }


@require_account()
def export_progress(request, pk: int):
    """The progress bar's data (static/js/exports.js polls it)."""
    response = JsonResponse(_progress(_get_export_for_user(request, pk)))
    response["Cache-Control"] = "no-store"
    return response


@require_account()
def export_download(request, pk: int):
    record = _get_export_for_user(request, pk)
    if jobs.is_expired(record):
        return _unavailable(request, record, 410, "This export has expired and its file was deleted. Export again.")
    if record.state != ExportState.DONE:
        if record.state == ExportState.FAILED:
            return _unavailable(request, record, 404, f"This export failed: {record.error}")
        return _unavailable(request, record, 409, "This export is still being prepared; the Exports page shows it.")
    try:
        handle = open(jobs.export_file_path(record), "rb")  # noqa: SIM115 - FileResponse closes it
    except FileNotFoundError:
        return _unavailable(request, record, 410, "The file of this export is gone. Export again.")
    content_type = ZIP_CONTENT_TYPE if record.split else None
    if content_type is None:
        content_type = GZIP_CONTENT_TYPE if record.compress else CONTENT_TYPES[record.format]
    response = FileResponse(handle, as_attachment=True, filename=record.file_name, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def _unavailable(request, record: ExportRecord, status: int, message: str):
    record.rerun_url = f"{reverse('logs:export')}?{rerun_params(record).urlencode()}"
    return render(
        request, "logs/partials/export_unavailable.html", {"record": record, "message": message}, status=status
    )
