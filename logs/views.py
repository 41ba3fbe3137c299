"""The log browser: list, detail, API keys and price list pages.

Views stay thin: they take the account from the tenant gate (`require_account`), read
through logs.selectors and shape the result for the templates.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from console.audit import Actor
from console.models import Role
from console.params import text_errors
from console.tenancy import has_role, require_account, require_admin
from logs import encryption, exports, selectors, services
from logs.filters import filter_errors
from logs.models import ApiKey, MatchType, ModelPrice, Status
from logs.pagination import InvalidCursor
from logs.prices.book import PriceBook
from logs.ranges import LOG_RANGES, choices

PAGE_LIMIT = 50
KEY_USAGE_DAYS = 30
PRICE_GROUPS_PER_PAGE = 50


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


@require_account()
def api_keys(request):
    account = request.account
    since = timezone.now() - timedelta(days=KEY_USAGE_DAYS)
    timeout_message = None
    try:
        usage = selectors.api_key_usage(account=account, since=since)
    except selectors.QueryTimeout as exc:
        usage, timeout_message = {}, str(exc)
    keys = list(selectors.api_keys_for(account=account).order_by("-last_seen", "identifier"))
    for key in keys:
        key.usage = usage.get(key.identifier)
    context = {
        "keys": keys,
        "days": KEY_USAGE_DAYS,
        "timeout_message": timeout_message,
        "can_name": has_role(request.account_role, Role.ADMIN),
    }
    return render(request, "logs/keys.html", context)


@require_POST
@require_admin
def api_key_name(request, pk: int):
    try:
        key = services.api_key_rename(
            account=request.account,
            key_id=pk,
            display_name=request.POST.get("display_name", ""),
            actor=Actor.from_request(request),
        )
    except ApiKey.DoesNotExist as exc:
        raise Http404("No such API key") from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("logs:keys")
    messages.success(
        request,
        f"Key {key.identifier} is now named “{key.display_name}”."
        if key.display_name
        else f"Key {key.identifier} has no name now.",
    )
    return redirect("logs:keys")


@dataclass
class PriceGroup:
    """The rows of one price pattern (model, match) as one account sees them."""

    model: str
    match: str
    current: ModelPrice | None = None  # the row in force now (an override wins)
    list_price: ModelPrice | None = None  # the list price it overrides, if any
    history: list[ModelPrice] = field(default_factory=list)  # every other row, newest first

    @property
    def is_prefix(self) -> bool:
        return self.match == MatchType.PREFIX

    @property
    def older_count(self) -> int:
        return len(self.history) + (self.list_price is not None)


def _group_prices(rows, *, now: datetime) -> dict[tuple[str, str], PriceGroup]:
    groups: dict[tuple[str, str], PriceGroup] = {}
    for row in sorted(rows, key=lambda r: r.valid_from, reverse=True):
        group = groups.setdefault((row.model, row.match), PriceGroup(model=row.model, match=row.match))
        in_force = row.valid_from <= now
        if in_force and row.account_id is not None and group.current is None:
            group.current = row
        elif in_force and row.account_id is None and group.list_price is None:
            group.list_price = row
        else:
            group.history.append(row)
    for group in groups.values():
        if group.current is None:
            group.current, group.list_price = group.list_price, None
    return groups


@require_account()
def pricing(request):
    account = request.account
    now = timezone.now()
    prices = selectors.prices_for(account=account)

    # Models the account has used first, priced exactly as ingest prices them.
    used_models = list(selectors.models_for(account=account).values_list("model", flat=True))
    book = PriceBook.load(account=account, models=used_models)
    used = []
    winners = {model: book.price_for(model, now) for model in used_models}
    patterns = {(p.model, p.match) for p in winners.values() if p is not None}
    used_groups = _group_prices(_rows_for_patterns(prices, patterns), now=now) if patterns else {}
    for model in used_models:
        price = winners[model]
        used.append({"model": model, "group": used_groups.get((price.model, price.match)) if price else None})

    # The whole list, searchable, a page of patterns at a time (the snapshot has ~1000).
    q = request.GET.get("q", "").strip()[:100]
    # A search PostgreSQL cannot compare (NUL, ...) is refused, the list shown unsearched.
    q_errors = text_errors(request.GET, ["q"]).get("q", [])
    q = "" if q_errors else q
    listed = prices.filter(model__icontains=q) if q else prices
    pattern_page = Paginator(
        listed.order_by("model", "match").values_list("model", "match").distinct(), PRICE_GROUPS_PER_PAGE
    ).get_page(request.GET.get("page"))
    page_groups = _group_prices(_rows_for_patterns(prices, set(pattern_page.object_list)), now=now)
    all_groups = [page_groups[key] for key in pattern_page.object_list if key in page_groups]

    context = {"used": used, "groups": all_groups, "pattern_page": pattern_page, "q": q, "q_errors": q_errors}
    return render(request, "logs/pricing.html", context | {"now": now}, status=400 if q_errors else 200)


def _rows_for_patterns(prices, patterns: set[tuple[str, str]]) -> list[ModelPrice]:
    if not patterns:
        return []
    rows = prices.filter(model__in={model for model, _ in patterns})
    return [row for row in rows if (row.model, row.match) in patterns]
