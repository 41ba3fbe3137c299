"""The log browser: list and detail pages (API keys: logs.key_views; pricing: logs.price_views).

Views stay thin: they take the account from the tenant gate (`require_account`), read
through logs.selectors and shape the result for the templates.
"""

import contextlib
import json
from datetime import UTC, datetime

from django.http import JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from console.tenancy import require_account
from logs import encryption, exports, list_prefs, selectors
from logs.api.serializers import log_record
from logs.filter_bar import BAR_FILTERS, filter_bar, filter_chips
from logs.filters import filter_errors
from logs.pagination import InvalidCursor, encode_cursor

PAGE_LIMIT = list_prefs.DEFAULT_PAGE_SIZE
TAIL_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TAIL_LIMIT = 100  # rows per live-tail answer; the script asks again at once when more wait


@require_account()
def log_list(request):
    account = request.account
    filterset = selectors.filter_request_logs(account=account, params=request.GET, request=request)
    if "newer_than" in request.GET:
        return _log_tail(request, filterset)
    api_keys = list(selectors.api_keys_for(account=account).only("identifier", "display_name"))
    models = list(selectors.models_for(account=account).values_list("model", flat=True))
    limit = list_prefs.page_size(request.COOKIES.get(list_prefs.PAGE_SIZE_COOKIE))

    page = totals = timeout_message = None
    errors: dict[str, list[str]] = {}
    if filterset.is_valid():
        try:
            page = selectors.log_page(filterset=filterset, cursor=request.GET.get("cursor") or None, limit=limit)
            totals = selectors.log_totals(filterset=filterset)
        except InvalidCursor as exc:
            errors = {"cursor": [str(exc)]}
        except selectors.QueryTimeout as exc:
            page = totals = None
            timeout_message = str(exc) or selectors.QueryTimeout.message
    else:
        errors = filter_errors(filterset)

    key_names = {key.identifier: key.display_name for key in api_keys if key.display_name}
    rows = page.rows if page else []
    _name_keys(rows, key_names)
    # Errors the bar has no field for (non-field errors) are listed under it.
    errors_elsewhere = [
        m for name, messages in errors.items() if name not in BAR_FILTERS | {"cursor"} for m in messages
    ]
    cleaned = getattr(filterset.form, "cleaned_data", {}) or {}
    context = {
        "page": page,
        "rows": rows,
        "totals": totals,
        "errors": errors,
        "timeout_message": timeout_message,
        "errors_elsewhere": errors_elsewhere,
        "bar": filter_bar(request.GET, filterset, models=models, api_keys=api_keys, errors=errors),
        "chips": filter_chips(request.GET, key_names=key_names, cleaned=cleaned),
        "is_first_page": not request.GET.get("cursor"),
        # The Export menu offers the zip by month for sets spanning more than a month.
        "export_by_month": not errors and exports.spans_months(filterset=filterset),
        "export_filters": exports.filter_pairs(request.GET),
        # The detail links carry this page's query string, so the detail page knows its list.
        "list_query": request.GET.urlencode(),
        # The live tail asks for rows newer than the first one shown (any row, on an empty page).
        "tail_from": rows[0].cursor if rows else encode_cursor(TAIL_EPOCH, 0),
        "page_size": limit,
        "page_sizes": list_prefs.PAGE_SIZES,
        **_column_context(request),
    }
    return render(request, "logs/list.html", context, status=400 if errors else 200)


def _name_keys(rows, key_names: dict[str, str]) -> None:
    for row in rows:
        row.key_name = key_names.get(row.api_key, "")
        row.cursor = encode_cursor(row.timestamp, row.pk)


def _column_context(request) -> dict:
    shown = list_prefs.shown_columns(request.COOKIES.get(list_prefs.COLUMNS_COOKIE))
    return {"columns": list_prefs.COLUMNS, "shown": shown}


def _log_tail(request, filterset):
    """The live tail's poll (?newer_than=<cursor>&<the list's filters>): the rows that
    arrived after the first one shown, as the table's own row HTML, oldest first."""
    if not filterset.is_valid():
        return JsonResponse({"errors": filter_errors(filterset)}, status=400)
    try:
        rows, more = selectors.log_newer(filterset=filterset, cursor=request.GET["newer_than"], limit=TAIL_LIMIT)
    except InvalidCursor as exc:
        return JsonResponse({"errors": {"newer_than": [str(exc)]}}, status=400)
    except selectors.QueryTimeout as exc:
        return JsonResponse({"errors": {"newer_than": [str(exc) or selectors.QueryTimeout.message]}}, status=422)
    key_names = (
        dict(
            selectors.api_keys_for(account=request.account)
            .filter(identifier__in={row.api_key for row in rows if row.api_key}, display_name__gt="")
            .values_list("identifier", "display_name")
        )
        if rows
        else {}
    )
    _name_keys(rows, key_names)
    params = request.GET.copy()
    params.pop("newer_than")
    context = {"list_query": params.urlencode(), **_column_context(request)}
    html = "".join(
        render_to_string("logs/partials/log_row.html", {"row": row, **context}, request=request)
        for row in reversed(rows)  # newest first, as the table is
    )
    return JsonResponse({"html": html, "count": len(rows), "more": more, "newest": rows[-1].cursor if rows else None})


@require_account()
def log_detail(request, request_id):
    account = request.account
    row = encryption.reveal(selectors.get_request_log(account=account, request_id=request_id))
    price = None
    if row.price_id is not None:
        # Through the account's price list, so another account's override never shows.
        price = selectors.prices_for(account=account).filter(pk=row.price_id).first()
    api_key = selectors.api_keys_for(account=account).filter(identifier=row.api_key).first() if row.api_key else None
    # The list this row was opened from: its filters (and page) came along in the query string.
    newer = older = None
    filterset = selectors.filter_request_logs(account=account, params=request.GET, request=request)
    if filterset.is_valid():
        # On a timeout the row still shows; only the previous / next links are left out.
        with contextlib.suppress(selectors.QueryTimeout):
            newer, older = selectors.log_neighbours(filterset=filterset, row=row)
    context = {
        "row": row,
        "price": price,
        "api_key": api_key,
        "newer": newer,
        "older": older,
        "list_query": request.GET.urlencode(),
        "raw_json": json.dumps(log_record(row), indent=2, ensure_ascii=False),
    }
    return render(request, "logs/detail.html", context)
