"""The most expensive requests of a range, narrowed by the rollups' maxima."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from analytics.models import (
    UsageDay,
    UsageQuarter,
    UsageSlice,
)
from analytics.sql import adapt
from analytics.timekeys import QUARTER, local_midnight, ranges_by_month
from analytics.usage.planner import (
    _day_plan,
    _dimensions_of,
    _filter_attribute,
    _Piece,
    _quarter_plan,
    _slice_plan,
    projection_for,
    slice_column,
)
from analytics.usage.query import _SLICE_DIMENSION_OF, _WORK_MEM, FILTER_COLUMNS, UsageError, UsageQuery
from analytics.usage.state import day_zone
from logs import gate
from logs.selectors import statement_timeout

_MAX_SLOTS = 200


TOP_FIELDS = ("id", "request_id", "timestamp", "model", "api_key", "status", "total_tokens", "cost")


def _filter_lookups(q: UsageQuery) -> dict:
    """The query's filters as ORM lookups (the raw log and UsageDay share the column names)."""
    return {
        f"{column}__in": getattr(q, attribute) for attribute, column in FILTER_COLUMNS.items() if getattr(q, attribute)
    }


def top_requests(q: UsageQuery, n: int = 10) -> list[dict]:
    """The `n` most expensive requests of the range (filters respected).

    The rollups narrow the search: each quarter (with a filter on a model, key or status, each
    day of that value and then each slice of the days that can hold the top n; with other
    filters, each day of the projection that keeps the filtered dimensions) knows its most
    expensive request. The
    n-th largest of those maxima inside the range is a cost at least n requests reach, so
    only rows at or above it, in the slots whose maximum reaches it and in the partial
    slots at the range's edges, can be in the top n."""
    if q.every_account:
        raise UsageError("account", "the most expensive requests are listed per account")
    rows = gate.request_logs(account=q.account).filter(
        timestamp__gte=q.start, timestamp__lt=q.end, cost__isnull=False, **_filter_lookups(q)
    )
    start, end = q.start.astimezone(UTC), q.end.astimezone(UTC)
    with statement_timeout(parallel=False, work_mem=_WORK_MEM):
        if q.has_filters and (column := slice_column(q)) is not None:
            return _top_from_slices(q, rows, n, column)
        if q.has_filters:
            zone = day_zone(q.account)
            pieces = _day_plan(start, end, zone, projection_for(_dimensions_of(q)))
            inner = next((piece for piece in pieces if piece.source == "day"), None)
            slots = None
            if inner is not None:
                slots = gate.rollup_rows(UsageDay, q.account).filter(
                    projection=inner.projection, day__gte=inner.first_day,
                    day__lte=inner.last_day, **_filter_lookups(q),
                )  # fmt: skip

            def window(day):
                return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)

            slot_field = "day"
        else:
            pieces = _quarter_plan(start, end)
            inner = next((piece for piece in pieces if piece.source == "quarter"), None)
            slots = None
            if inner is not None:
                slots = gate.rollup_rows(UsageQuarter, q.account).filter(start__gte=inner.start, start__lt=inner.end)

            def window(slot_start):
                return slot_start, slot_start + QUARTER

            slot_field = "start"
        if slots is not None:
            # The dearest slots, in one read.
            dearest = _threshold(_dearest_slots(slots, slot_field), n)
            if dearest is not None:
                threshold, reaching = dearest
                if reaching is None:
                    rows = rows.filter(cost__gte=threshold)
                else:
                    windows = [window(slot) for slot in sorted(set(reaching))]
                    windows += [(piece.start, piece.end) for piece in pieces if piece is not inner]
                    return _top_in_windows(rows.filter(cost__gte=threshold), windows, n)
        return list(_by_cost(rows, n))


def _dearest_slots(slots, field: str) -> list[tuple[object, Decimal]]:
    """(slot, its most expensive request's cost) of the _MAX_SLOTS + 1 dearest `slots`."""
    found = slots.filter(max_cost__isnull=False).order_by("-max_cost").values_list(field, "max_cost")
    return list(found[: _MAX_SLOTS + 1])


def _threshold(dearest: list[tuple[object, Decimal]], n: int) -> tuple[Decimal, list | None] | None:
    """From slots and their maxima (each list of `_dearest_slots` complete down to its last
    entry): the n-th largest maximum, a cost at least n requests reach, and the slots that
    reach it; None when fewer than n slots are priced. The slots are None when more than
    _MAX_SLOTS reach it (flat prices): one range per slot stops paying off, and the
    threshold alone still narrows the scan."""
    if len(dearest) < n:
        return None
    dearest = sorted(dearest, key=lambda item: item[1], reverse=True)
    threshold = dearest[n - 1][1]
    reaching = [slot for slot, cost in dearest if cost >= threshold]
    return threshold, (None if len(reaching) > _MAX_SLOTS else reaching)


def _by_cost(rows, n: int):
    """The n dearest of `rows` (the latest first among equal costs), as TOP_FIELDS."""
    return rows.order_by("-cost", "-timestamp").values(*TOP_FIELDS)[:n]


def _top_from_slices(q: UsageQuery, rows, n: int, column: str) -> list[dict]:
    """`top_requests` for a filter on one sliced dimension, narrowed twice: first by the
    daily rows' maxima (a year of one model is 365 of them, where its slices are 35,000),
    then by the slices of the few days that reach the threshold, then the raw rows of the
    slots among those that reach it."""
    start, end = q.start.astimezone(UTC), q.end.astimezone(UTC)
    pieces = _slice_plan(q, start, end)
    inner = next((piece for piece in pieces if piece.source == "slice"), None)
    if inner is None:
        return list(_by_cost(rows, n))
    zone = day_zone(q.account)
    coarse = _day_plan(
        inner.start,
        inner.end,
        zone,
        projection_for({column}),
        edges=lambda lower, upper: [_Piece("slice", lower, upper)],
    )
    slices = gate.rollup_rows(UsageSlice, q.account).filter(
        dimension=_SLICE_DIMENSION_OF[column], value__in=getattr(q, _filter_attribute(column))
    )
    # The dearest days and edge slots, in one list: the n-th maximum is the threshold.
    dearest: list[tuple[object, Decimal]] = []
    for piece in coarse:
        if piece.source == "day":
            days = gate.rollup_rows(UsageDay, q.account).filter(
                projection=piece.projection, day__gte=piece.first_day, day__lte=piece.last_day,
                **_filter_lookups(q),
            )  # fmt: skip
            dearest += _dearest_slots(days, "day")
        else:
            dearest += _dearest_slots(slices.filter(start__gte=piece.start, start__lt=piece.end), "start")
    found = _threshold(dearest, n)
    if found is None:
        return list(_by_cost(rows, n))
    threshold, reaching = found
    if reaching is None:
        return list(_by_cost(rows.filter(cost__gte=threshold), n))
    windows = [(piece.start, piece.end) for piece in pieces if piece is not inner]
    slots = {slot for slot in reaching if isinstance(slot, datetime)}
    days = sorted({slot for slot in reaching if not isinstance(slot, datetime)})
    if days:
        spans = [(local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)) for day in days]
        slots.update(slices.filter(_within("start", spans), max_cost__gte=threshold).values_list("start", flat=True))
    windows += [(slot, slot + QUARTER) for slot in sorted(slots)]
    return _top_in_windows(rows.filter(cost__gte=threshold), windows, n)


def _within(column: str, spans: list[tuple[datetime, datetime]]) -> RawSQL:
    """A filter: `column` in one of the half-open spans. As SQL text: built from Q objects, a
    few hundred spans cost 15 ms of the ORM's time per call."""
    sql = " OR ".join([f"({column} >= %s AND {column} < %s)"] * len(spans))
    spans_sql = f"({sql})"  # column names from this module, values as parameters
    return RawSQL(spans_sql, [adapt(moment) for span in spans for moment in span], output_field=BooleanField())  # noqa: S611


def _top_in_windows(rows, windows: list[tuple[datetime, datetime]], n: int) -> list[dict]:
    """The `n` dearest of `rows` inside `windows`, one statement per UTC month of windows:
    fifty ranges OR'd over a year's monthly partitions took 75 ms to plan for 11 ms of work;
    a month's ranges are planned against its own partition only."""
    branches = [_by_cost(rows.filter(_within("timestamp", month)), n) for month in ranges_by_month(windows).values()]
    if connection.features.supports_slicing_ordering_in_compound and len(branches) > 1:
        # One round trip: each branch is still planned against its own month.
        found = list(branches[0].union(*branches[1:], all=True))
    else:
        found = [row for branch in branches for row in branch]
    found.sort(key=lambda row: (row["cost"], row["timestamp"]), reverse=True)
    return found[:n]
