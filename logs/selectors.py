"""Reads of the request log. Every query for log data starts at `request_logs(account=...)`:
the tenant gate that pages, the API and exports share."""

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from console.models import Account
from logs.filters import RequestLogFilterSet
from logs.models import AccountModel, AccountRetentionClass, ApiKey, ModelPrice, RequestLog, Status
from logs.pagination import KeysetPage, keyset_page

TOTALS_CAP = 10_000


class QueryTimeout(Exception):
    """A log query ran past LOG_SEARCH_TIMEOUT_MS; the caller tells the user to narrow it."""

    message = "The search took too long. Narrow the time range or add a filter such as model or API key."


def request_logs(*, account: Account) -> QuerySet:
    """All log rows of one account: the only way in to RequestLog for reads."""
    if not isinstance(account, Account) or account.pk is None:
        raise ValueError("request_logs needs a saved Account")
    queryset = RequestLog.objects.filter(account=account)
    classes = retention_classes(account=account)
    if classes is not None:
        # Constants, so PostgreSQL prunes the other retention classes' partitions at plan time.
        queryset = queryset.filter(retention_days__in=classes)
    return queryset


def retention_classes(*, account: Account) -> list[int] | None:
    """The retention classes (LIST partitions) holding the account's rows; None on SQLite,
    where the log is one plain table. Kept complete by a trigger (logs migration 0004)."""
    if connection.vendor != "postgresql":
        return None
    return sorted(AccountRetentionClass.objects.filter(account=account).values_list("retention_days", flat=True))


def filter_request_logs(*, account: Account, params, request=None) -> RequestLogFilterSet:
    """Bind the shared FilterSet to the account's rows; check `.is_valid()` before `.qs`."""
    return RequestLogFilterSet(data=params, queryset=request_logs(account=account), request=request)


def get_request_log(*, account: Account, request_id: str) -> RequestLog:
    """One record by request_id, 404 for another account's id (no hint that it exists)."""
    row = request_logs(account=account).filter(request_id=request_id).first()
    if row is None:
        raise Http404("No such request")
    return row


@contextmanager
def statement_timeout(ms: int | None = None):
    """Bound how long a log query may run (PostgreSQL); raises QueryTimeout instead of hanging."""
    ms = ms or settings.LOG_SEARCH_TIMEOUT_MS
    if connection.vendor != "postgresql":
        yield
        return
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # JIT compiling cost 150-240 ms per aggregate over a year of rows and saved
                # nothing on queries that read a page; one round trip sets both.
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true)", [str(int(ms))]
                )
            yield
    except OperationalError as exc:
        if "statement timeout" in str(exc) or "canceling statement" in str(exc):
            raise QueryTimeout(QueryTimeout.message) from exc
        raise


# Repeated filters split into UNION ALL branches, most selective index first; at most this
# many branches, because each one is planned over every partition.
SPLITTABLE_FILTERS = ("api_key", "error_code", "ip", "model", "status")
MAX_BRANCHES = 10


def _branches(filterset: RequestLogFilterSet) -> list[QuerySet] | None:
    """One filtered queryset per value of a repeated filter (PostgreSQL only).

    `model IN (a, b)` cannot walk the (account, model, timestamp) index in timestamp order,
    so PostgreSQL reads every match and sorts, or scans the time index and filters: 160 ms
    at 10 M rows for three keys, against 4 ms for three ordered branches (bench/README.md).
    """
    if connection.vendor != "postgresql":
        return None
    cleaned = filterset.form.cleaned_data
    for name in SPLITTABLE_FILTERS:
        values = cleaned.get(name)
        if isinstance(values, list) and 1 < len(values) <= MAX_BRANCHES:
            # The other filters once, then one equality per value.
            rest = RequestLogFilterSet(
                data=_without_param(filterset.data, name), queryset=filterset.queryset, request=filterset.request
            )
            if not rest.is_valid():  # cannot happen: the same values passed already
                return None
            field_name = filterset.filters[name].field_name
            return [rest.qs.filter(**{field_name: value}) for value in values]
    return None


def _without_param(data, name: str):
    if hasattr(data, "copy") and hasattr(data, "setlist"):  # a QueryDict from a request
        params = data.copy()
        params.pop(name, None)
        return params
    return {key: value for key, value in data.items() if key != name}


def log_page(
    *,
    filterset: RequestLogFilterSet,
    cursor: str | None,
    limit: int,
    fields: tuple[str, ...] | None = None,
    fetch: Callable[[QuerySet], list] | None = None,
) -> KeysetPage:
    """One keyset page; with `fields` / `fetch`, rows are tuples (see keyset_page)."""
    with statement_timeout():
        return keyset_page(
            filterset.qs, cursor=cursor, limit=limit, branches=_branches(filterset), fields=fields, fetch=fetch
        )


@dataclass
class LogTotals:
    requests: int
    capped: bool  # True: more than TOTALS_CAP rows and the sums below were not computed
    errors: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost: Decimal | None = None
    unpriced: int | None = None

    @property
    def error_rate(self) -> float | None:
        if self.errors is None or not self.requests:
            return None
        return self.errors / self.requests


def log_totals(*, filterset: RequestLogFilterSet) -> LogTotals:
    """Totals for the filtered set, exact.

    Until the analytics rollups exist, an unbounded aggregate over raw rows is what made
    other consoles take 20-30 s; so the count is capped: past TOTALS_CAP rows the bar says
    "10,000+" and does not guess the sums.
    """
    queryset = filterset.qs.order_by()
    with statement_timeout():
        # One statement over "LIMIT cap+1": stops reading after cap+1 rows, and the sums
        # come from the same rows as the count instead of a second pass.
        sums = queryset[: TOTALS_CAP + 1].aggregate(
            # Aliases differ from field names: Django refuses an alias that shadows a field.
            n_rows=Count("id"),
            n_errors=Count("id", filter=Q(status=Status.ERROR)),
            sum_prompt=Sum("prompt_tokens"),
            sum_completion=Sum("completion_tokens"),
            sum_total=Sum("total_tokens"),
            sum_cost=Sum("cost"),
            n_unpriced=Count("id", filter=Q(cost__isnull=True)),
        )
    count = sums["n_rows"]
    if count > TOTALS_CAP:
        return LogTotals(requests=TOTALS_CAP, capped=True)
    return LogTotals(
        requests=count,
        capped=False,
        errors=sums["n_errors"],
        prompt_tokens=sums["sum_prompt"] or 0,
        completion_tokens=sums["sum_completion"] or 0,
        total_tokens=sums["sum_total"] or 0,
        cost=sums["sum_cost"] if sums["sum_cost"] is not None else Decimal(0),
        unpriced=sums["n_unpriced"],
    )


def api_keys_for(*, account: Account) -> QuerySet:
    return ApiKey.objects.filter(account=account)


def api_key_usage(*, account: Account, since: datetime) -> dict[str, dict]:
    """Requests, cost, unpriced and errors per API key since `since`: one GROUP BY, not a
    query per key."""
    rows = (
        request_logs(account=account)
        .filter(timestamp__gte=since)
        .values("api_key")
        # Aliases differ from field names: an alias shadowing `cost` would nest the SUM.
        .annotate(
            n_requests=Count("id"),
            sum_cost=Sum("cost"),
            n_unpriced=Count("id", filter=Q(cost__isnull=True)),
            n_errors=Count("id", filter=Q(status=Status.ERROR)),
        )
        .order_by()
    )
    with statement_timeout():
        return {
            row["api_key"]: {
                "requests": row["n_requests"],
                "cost": row["sum_cost"],
                "unpriced": row["n_unpriced"],
                "errors": row["n_errors"],
            }
            for row in rows
        }


def models_for(*, account: Account) -> QuerySet:
    return AccountModel.objects.filter(account=account)


def prices_for(*, account: Account) -> QuerySet:
    return ModelPrice.objects.for_account(account)
