"""Reads of the request log for pages, the API and exports; every query starts at the tenant
gate (`logs.gate`)."""

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from console.errors import QueryTimeout
from console.models import Account
from console.params import text_problem
from logs.filters import RequestLogFilterSet
from logs.gate import request_logs
from logs.models import AccountModel, ApiKey, ModelPrice, RequestLog, Status
from logs.pagination import KeysetPage, encode_cursor, keyset_newer, keyset_page

TOTALS_CAP = 10_000


def filter_request_logs(*, account: Account, params, request=None) -> RequestLogFilterSet:
    """Bind the shared FilterSet to the account's rows; check `.is_valid()` before `.qs`."""
    filterset = RequestLogFilterSet(data=params, queryset=request_logs(account=account), request=request)
    filterset.account = account  # for log_totals' rollup path
    return filterset


def get_request_log(*, account: Account, request_id: str) -> RequestLog:
    """One record by request_id, 404 for another account's id (no hint that it exists) and
    for an id no record can have (NUL, ...: PostgreSQL could not even compare it)."""
    if text_problem(request_id):
        raise Http404("No such request")
    row = request_logs(account=account).filter(request_id=request_id).first()
    if row is None:
        raise Http404("No such request")
    return row


@contextmanager
def statement_timeout(ms: int | None = None, *, parallel: bool = True, work_mem: str | None = None):
    """Bound how long a log query may run (PostgreSQL); raises QueryTimeout instead of hanging.

    `parallel=False` also turns parallel workers off for the block: the rollup reads are a
    few thousand rows, but a misestimate (one account's share of a projection) made the
    planner start two workers, 40 ms of overhead on a 5 ms query. `work_mem` raises the
    sort / hash memory of the block's statements (e.g. "32MB")."""
    ms = ms or settings.LOG_SEARCH_TIMEOUT_MS
    if connection.vendor != "postgresql":
        yield
        return
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # JIT compiling cost 150-240 ms per aggregate over a year of rows and saved
                # nothing on queries that read a page; one round trip sets both.
                workers = "" if parallel else ", set_config('max_parallel_workers_per_gather', '0', true)"
                memory = "" if work_mem is None else ", set_config('work_mem', %s, true)"
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), "
                    f"set_config('jit', 'off', true){workers}{memory}",
                    [str(int(ms)), *([] if work_mem is None else [work_mem])],
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


def log_newer(*, filterset: RequestLogFilterSet, cursor: str, limit: int) -> tuple[list, bool]:
    """Up to `limit` rows newer than `cursor`, oldest first, and whether more exist (the
    live tail); InvalidCursor for a malformed cursor."""
    with statement_timeout():
        return keyset_newer(filterset.qs, cursor=cursor, limit=limit, branches=_branches(filterset))


def log_neighbours(*, filterset: RequestLogFilterSet, row: RequestLog) -> tuple[RequestLog | None, RequestLog | None]:
    """(newer, older): the rows next to `row` in the filtered list, newest first, by keyset
    from the row's own (timestamp, id); no OFFSET, no COUNT."""
    cursor = encode_cursor(row.timestamp, row.pk)
    branches = _branches(filterset)
    with statement_timeout():
        newer, _ = keyset_newer(filterset.qs, cursor=cursor, limit=1, branches=branches)
        older = keyset_page(filterset.qs, cursor=cursor, limit=1, branches=branches).rows
    return (newer[0] if newer else None), (older[0] if older else None)


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

    First over raw rows, capped: one statement over "LIMIT cap+1" stops reading after
    TOTALS_CAP + 1 rows. Past the cap, when the filters are ones the analytics rollups keep
    (time range, model, API key, status, error code), the exact uncapped totals come from
    analytics.usage.totals() instead: a few rollup rows plus raw rows at the range's edges,
    not an aggregate over millions of rows (which took other consoles 20-30 s). Any other
    filter (text, IP, tag, tokens, cost, unpriced) keeps the cap: the bar says "10,000+"
    and does not guess the sums.
    """
    queryset = filterset.qs.order_by()
    with statement_timeout():
        # The sums come from the same rows as the count instead of a second pass.
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
        return _rollup_totals(filterset) or LogTotals(requests=TOTALS_CAP, capped=True)
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


# Exact totals past the cap come from the analytics rollups, a layer above this one: the
# analytics app registers its reader when Django starts (analytics/apps.py). Without it the
# bar keeps the cap.
_rollup_totals_reader: Callable[[RequestLogFilterSet], LogTotals | None] | None = None


def register_rollup_totals(reader: Callable[[RequestLogFilterSet], LogTotals | None]) -> None:
    global _rollup_totals_reader
    _rollup_totals_reader = reader


def _rollup_totals(filterset: RequestLogFilterSet) -> LogTotals | None:
    return _rollup_totals_reader(filterset) if _rollup_totals_reader else None


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
