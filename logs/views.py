"""The log browser: list and detail pages (API keys: logs.key_views; pricing: logs.price_views).

Views stay thin: they take the account from the tenant gate (`require_account`), read
through logs.selectors and shape the result for the templates.
"""

from datetime import datetime

from django.shortcuts import render
from django.utils import timezone

from console.tenancy import require_account
from logs import encryption, exports, selectors
from logs.filters import filter_errors
from logs.models import Status
from logs.pagination import InvalidCursor
from logs.ranges import LOG_RANGES, choices

PAGE_LIMIT = 50


@require_account()
def log_list(request):
    account = request.account
    filterset = selectors.filter_request_logs(account=account, params=request.GET, request=request)
    api_keys = list(selectors.api_keys_for(account=account).only("identifier", "display_name"))
    models = list(selectors.models_for(account=account).values_list("model", flat=True))

    page = totals = timeout_message = None
    errors: dict[str, list[str]] = {}
    if filterset.is_valid():
        try:
            page = selectors.log_page(filterset=filterset, cursor=request.GET.get("cursor") or None, limit=PAGE_LIMIT)
            totals = selectors.log_totals(filterset=filterset)
        except InvalidCursor as exc:
            errors = {"cursor": [str(exc)]}
        except selectors.QueryTimeout as exc:
            page = totals = None
            timeout_message = str(exc) or selectors.QueryTimeout.message
    else:
        errors = filter_errors(filterset)

    key_names = {key.identifier: key.display_name for key in api_keys if key.display_name}
    for row in page.rows if page else []:
        row.key_name = key_names.get(row.api_key, "")
    # Errors the bar has no field for (non-field errors) are listed under it.
    errors_elsewhere = [
        m for name, messages in errors.items() if name not in _BAR_FILTERS | {"cursor"} for m in messages
    ]
    context = {
        "page": page,
        "rows": page.rows if page else [],
        "totals": totals,
        "errors": errors,
        "timeout_message": timeout_message,
        "errors_elsewhere": errors_elsewhere,
        "bar": _filter_bar(request.GET, filterset, models=models, api_keys=api_keys, errors=errors),
        "is_first_page": not request.GET.get("cursor"),
        # The Export menu offers the zip by month for sets spanning more than a month.
        "export_by_month": not errors and exports.spans_months(filterset=filterset),
        "export_filters": exports.filter_pairs(request.GET),
    }
    return render(request, "logs/list.html", context, status=400 if errors else 200)


_MORE_FILTERS = ("min_tokens", "max_tokens", "min_cost", "max_cost", "tag", "request_id", "unpriced")
_BAR_FILTERS = {"range", "start", "end", "model", "status", "api_key", "ip", "error_code", "q", *_MORE_FILTERS}


def _filter_bar(params, filterset, *, models: list[str], api_keys: list, errors: dict) -> dict:
    """What the filter bar needs to redraw itself from the URL (raw values, so a bad one
    stays visible next to its error)."""
    cleaned = getattr(filterset.form, "cleaned_data", {}) or {}
    selected_models = params.getlist("model")
    selected_keys = params.getlist("api_key")
    known_keys = {key.identifier for key in api_keys}
    return {
        "range": params.get("range", ""),
        "ranges": choices(LOG_RANGES),
        "start": _local_input(params.get("start", ""), cleaned.get("start")),
        "end": _local_input(params.get("end", ""), cleaned.get("end")),
        # A value from a pasted URL that is not in the picker is still offered, so it shows.
        "models": sorted(set(models) | set(selected_models)),
        "selected_models": selected_models,
        "api_keys": [(key.identifier, key.display_name) for key in api_keys]
        + [(value, "") for value in selected_keys if value not in known_keys],
        "selected_keys": selected_keys,
        "statuses": list(Status.choices) + [(v, v) for v in params.getlist("status") if v and v not in Status.values],
        "selected_statuses": params.getlist("status"),
        "ips": params.getlist("ip") or [""],
        "error_codes": params.getlist("error_code") or [""],
        "request_id": params.get("request_id", ""),
        "q": params.get("q", ""),
        "min_tokens": params.get("min_tokens", ""),
        "max_tokens": params.get("max_tokens", ""),
        "min_cost": params.get("min_cost", ""),
        "max_cost": params.get("max_cost", ""),
        "tag": params.get("tag", ""),
        "unpriced": params.get("unpriced", "") in ("true", "True", "1", "on"),
        "active": any(value for key, value in params.items() if key != "cursor"),
        # The less used filters sit in a <details> that opens when one of them is set.
        "more_open": any(params.get(name) or errors.get(name) for name in _MORE_FILTERS),
    }


def _local_input(raw: str, value: datetime | None) -> str:
    """A datetime-local input value in the viewer's zone (an API-style "...Z" pasted into
    the URL is shown as the same instant, local)."""
    if value is None:
        return raw
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second or local.microsecond else "%Y-%m-%dT%H:%M")


@require_account()
def log_detail(request, request_id):
    account = request.account
    row = encryption.reveal(selectors.get_request_log(account=account, request_id=request_id))
    price = None
    if row.price_id is not None:
        # Through the account's price list, so another account's override never shows.
        price = selectors.prices_for(account=account).filter(pk=row.price_id).first()
    api_key = selectors.api_keys_for(account=account).filter(identifier=row.api_key).first() if row.api_key else None
    return render(request, "logs/detail.html", {"row": row, "price": price, "api_key": api_key})
