"""The pricing page (/pricing/): the models the account uses with the price ingest gives
them, the whole price list (search, provider filter), and the owner's own prices
(POST /pricing/price/ and /pricing/price/remove/, logic in logs.prices.overrides).
"""

from dataclasses import dataclass, field
from datetime import datetime

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
from console.tenancy import require_account, require_owner
from logs import selectors
from logs.models import MatchType, ModelPrice
from logs.prices.book import PriceBook
from logs.prices.overrides import account_price_remove, account_price_set, plain

PRICE_GROUPS_PER_PAGE = 50
PRICE_FIELDS = ("model", "provider", "input_per_mtok", "cached_input_per_mtok", "output_per_mtok")


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


def _rows_for_patterns(prices, patterns: set[tuple[str, str]]) -> list[ModelPrice]:
    if not patterns:
        return []
    rows = prices.filter(model__in={model for model, _ in patterns})
    return [row for row in rows if (row.model, row.match) in patterns]


def _price_form(request, account, *, data=None, errors=None) -> dict | None:
    """The owner's "your price" form: blank, prefilled for ?set=<model> (with the account's
    current price of it), or the values just posted with their errors."""
    if request.account_role != Role.OWNER:
        return None
    if data is not None:
        return {"values": {name: data.get(name, "") for name in PRICE_FIELDS}, "errors": errors or {}, "open": True}
    model = request.GET.get("set", "").strip()[:255]
    if text_errors(request.GET, ["set"]):
        model = ""  # a name PostgreSQL cannot compare (NUL): the blank form
    values = dict.fromkeys(PRICE_FIELDS, "") | {"model": model}
    if model:
        now = timezone.now()
        mine = (
            ModelPrice.objects.filter(account=account, model=model, match=MatchType.EXACT, valid_from__lte=now)
            .order_by("-valid_from")
            .first()
        )
        if mine is not None:
            values |= {
                "provider": mine.provider,
                "input_per_mtok": plain(mine.input_per_mtok),
                "output_per_mtok": plain(mine.output_per_mtok),
                "cached_input_per_mtok": plain(mine.cached_input_per_mtok) or "",
            }
    return {"values": values, "errors": {}, "open": bool(model), "editing": bool(model)}


def _page(request, *, price_form: dict | None, status: int = 200):
    account = request.account
    now = timezone.now()
    prices = selectors.prices_for(account=account)

    # Models the account has used first, priced exactly as ingest prices them.
    used_models = list(selectors.models_for(account=account).values_list("model", flat=True))
    book = PriceBook.load(account=account, models=used_models)
    winners = {model: book.price_for(model, now) for model in used_models}
    patterns = {(p.model, p.match) for p in winners.values() if p is not None}
    used_groups = _group_prices(_rows_for_patterns(prices, patterns), now=now) if patterns else {}
    used = [
        {"model": model, "group": used_groups.get((price.model, price.match)) if price else None}
        for model, price in winners.items()
    ]
    # The account's own prices of models it has not sent yet are listed with them.
    used_names = set(used_models)
    own = prices.filter(account=account, valid_from__lte=now).exclude(model__in=used_names)
    own_patterns = {(row.model, row.match) for row in own}
    own_groups = _group_prices(_rows_for_patterns(prices, own_patterns), now=now) if own_patterns else {}
    used += [{"model": model, "group": own_groups[(model, match)]} for model, match in sorted(own_patterns)]

    # The whole list, searchable and by provider, a page of patterns at a time (the snapshot has ~1000).
    q = request.GET.get("q", "").strip()[:100]
    provider = request.GET.get("provider", "").strip()[:64]
    # A search PostgreSQL cannot compare (NUL, ...) is refused, the list shown unsearched.
    q_errors = [m for ms in text_errors(request.GET, ["q", "provider"]).values() for m in ms]
    if q_errors:
        q = provider = ""
    providers = sorted(set(prices.exclude(provider="").values_list("provider", flat=True).distinct()))
    listed = prices.filter(model__icontains=q) if q else prices
    if provider:
        listed = listed.filter(provider=provider)
    pattern_page = Paginator(
        listed.order_by("model", "match").values_list("model", "match").distinct(), PRICE_GROUPS_PER_PAGE
    ).get_page(request.GET.get("page"))
    page_groups = _group_prices(_rows_for_patterns(prices, set(pattern_page.object_list)), now=now)
    all_groups = [page_groups[key] for key in pattern_page.object_list if key in page_groups]

    context = {
        "used": used,
        "groups": all_groups,
        "pattern_page": pattern_page,
        "q": q,
        "provider": provider,
        "providers": providers,
        "q_errors": q_errors,
        "now": now,
        "price_form": price_form,
        "is_owner": request.account_role == Role.OWNER,
    }
    return render(request, "logs/pricing.html", context, status=400 if q_errors else status)


@require_account()
def pricing(request):
    return _page(request, price_form=_price_form(request, request.account))


@require_POST
@require_owner
def price_set(request):
    data = request.POST
    try:
        row = account_price_set(
            account=request.account,
            model=data.get("model", ""),
            provider=data.get("provider", ""),
            input_per_mtok=data.get("input_per_mtok", ""),
            output_per_mtok=data.get("output_per_mtok", ""),
            cached_input_per_mtok=data.get("cached_input_per_mtok", ""),
            actor=Actor.from_request(request),
        )
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"model": exc.messages}
        return _page(request, price_form=_price_form(request, request.account, data=data, errors=errors), status=400)
    messages.success(request, f"Your price for {row.model} is saved: the next records of it are priced by it.")
    return redirect("logs:pricing")


@require_POST
@require_owner
def price_remove(request):
    model = request.POST.get("model", "")
    try:
        account_price_remove(account=request.account, model=model, actor=Actor.from_request(request))
    except ModelPrice.DoesNotExist as exc:
        raise Http404("No price of yours for this model") from exc
    messages.success(request, f"Your price for {model} is removed; records already priced keep their cost.")
    return redirect("logs:pricing")
