"""The API keys page (/keys/): the gateway's keys with their use over the last 30 days, a
sortable table with a daily sparkline per key, and the admins' name form.

The sparkline's daily requests come from the rollups, which are analytics': logs may not
import analytics, so analytics registers its reader here when Django starts
(`register_key_days`, called from analytics/apps.py). Without it the column is left out.
"""

from collections.abc import Callable
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from console.audit import Actor
from console.models import Account, Role
from console.tenancy import has_role, require_account, require_admin
from logs import selectors, services
from logs.models import ApiKey

KEY_USAGE_DAYS = 30
SPARK_WIDTH, SPARK_HEIGHT = 120, 24

# (account, days) -> {identifier: [requests of each local day, oldest first]}, or None.
KeyDays = Callable[[Account, int], dict[str, list[int]]]
_key_days: list[KeyDays] = []


def register_key_days(reader: KeyDays) -> None:
    _key_days[:] = [reader]


# ?sort= -> (the key's value to sort by, newest/largest first by default).
SORTS: dict[str, tuple[Callable, bool]] = {
    "name": (lambda key: (key.display_name or key.identifier).casefold(), False),
    "first_seen": (lambda key: key.first_seen, True),
    "last_seen": (lambda key: key.last_seen, True),
    "requests": (lambda key: key.usage["requests"] if key.usage else 0, True),
    "errors": (lambda key: key.usage["errors"] if key.usage else 0, True),
    "cost": (lambda key: key.usage["cost"] or 0 if key.usage else -1, True),
}
DEFAULT_SORT = "last_seen"


def sparkline_points(values: list[int], *, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """An SVG polyline's points for `values`, scaled to the box (a flat line at the bottom for
    all zeros; 1 px margin so the stroke is not clipped)."""
    if not values:
        return ""
    top = max(values) or 1
    step = (width - 2) / max(len(values) - 1, 1)
    return " ".join(
        f"{1 + i * step:.1f},{height - 1 - (value / top) * (height - 2):.1f}" for i, value in enumerate(values)
    )


def _sorted(keys: list, sort: str) -> tuple[list, str, bool]:
    descending_first = sort.startswith("-")
    name = sort.lstrip("-")
    if name not in SORTS:
        name, descending_first = DEFAULT_SORT, False
    value, newest_first = SORTS[name]
    reverse = newest_first != descending_first  # "-x" flips the column's natural order
    # Ties (and the default) in a stable order: by identifier first.
    keys = sorted(keys, key=lambda key: key.identifier)
    return sorted(keys, key=value, reverse=reverse), name, reverse


def _sort_headers(sort: str, reverse: bool) -> dict[str, dict]:
    """Per column: the ?sort= of its header link (its natural order, or flipped when it is the
    current sort) and its aria-sort."""
    headers = {}
    for name, (_value, newest_first) in SORTS.items():
        current = name == sort
        headers[name] = {
            "link": f"-{name}" if current and reverse == newest_first else name,
            "aria": ("descending" if reverse else "ascending") if current else "",
        }
    return headers


@require_account()
def api_keys(request):
    account = request.account
    since = timezone.now() - timedelta(days=KEY_USAGE_DAYS)
    timeout_message = None
    try:
        usage = selectors.api_key_usage(account=account, since=since)
    except selectors.QueryTimeout as exc:
        usage, timeout_message = {}, str(exc)
    days = _key_days[0](account, KEY_USAGE_DAYS) if _key_days else None
    keys = list(selectors.api_keys_for(account=account))
    for key in keys:
        key.usage = usage.get(key.identifier)
        key.shows_identifier = bool(key.display_name) and key.display_name != key.identifier
        if days is not None:
            series = days.get(key.identifier) or [0] * KEY_USAGE_DAYS
            key.spark = {
                "series": series,
                "points": sparkline_points(series),
                "total": sum(series),
                "peak": max(series),
            }
    keys, sort, reverse = _sorted(keys, request.GET.get("sort", ""))
    context = {
        "keys": keys,
        "days": KEY_USAGE_DAYS,
        "timeout_message": timeout_message,
        "can_name": has_role(request.account_role, Role.ADMIN),
        "sparklines": days is not None,
        "spark_width": SPARK_WIDTH,
        "spark_height": SPARK_HEIGHT,
        "sort_headers": _sort_headers(sort, reverse),
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
