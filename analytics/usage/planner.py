"""The planner: a query's range split into pieces, each read from the cheapest exact source."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics.models import (
    MONTHLY,
    PROJECTION_DIMENSIONS,
    Projection,
)
from analytics.sql import adapt, epoch_sql, is_pg
from analytics.timekeys import (
    HOUR,
    QUARTER,
    ceil_quarter,
    floor_hour,
    floor_quarter,
    local_midnight,
    next_date,
    offset_stretches,
    same_zone,
)
from analytics.usage.query import _SLICE_DIMENSION_OF, FILTER_COLUMNS, FILTER_PARAMETERS, GROUPS, UsageQuery
from analytics.usage.state import day_zone, rollup_state


@dataclass
class _Piece:
    source: str  # "hour" | "quarter" | "slice" | "day" | "utcday" | "raw"
    start: datetime
    end: datetime
    first_day: date | None = None  # "day" pieces: local dates first_day..last_day ("utcday": UTC)
    last_day: date | None = None
    projection: int = int(Projection.FULL)  # "day" pieces: which projection of the daily rows
    # Zones off the whole hour (+05:45): the hours a local midnight cuts are read as their
    # quarters. cut=False: only the hours no midnight cuts; cut=True: only the quarters of
    # the others; `offset` is the zone's UTC offset in seconds over the piece.
    cut: bool | None = None
    offset: int = 0


def projection_for(dimensions: set[str]) -> int:
    """The smallest projection of the daily rows that keeps `dimensions`."""
    for projection in (Projection.TOTAL, Projection.CODE, Projection.MODEL, Projection.KEY, Projection.FULL):
        if dimensions <= PROJECTION_DIMENSIONS[projection]:
            return int(projection)
    raise ValueError(f"no projection keeps {sorted(dimensions)}")


def _dimensions_of(q: UsageQuery) -> set[str]:
    needed = {name for name in q.group_by if name in GROUPS}
    needed |= {column for attribute, column in FILTER_COLUMNS.items() if getattr(q, attribute)}
    return needed


def slice_column(q: UsageQuery) -> str | None:
    """The one dimension (model, API key or status) the query filters or groups by, when
    the slices can answer it; None otherwise."""
    needed = _dimensions_of(q)
    if len(needed) == 1 and (column := next(iter(needed))) in _SLICE_DIMENSION_OF:
        return column
    return None


def plan(q: UsageQuery) -> list[_Piece]:
    start, end = q.start.astimezone(UTC), q.end.astimezone(UTC)
    if q.every_account:  # every account: their own days are in different zones
        return _utc_day_plan(q, start, end) if q.bucket is None else _hour_plan(q, start, end)
    zone = day_zone(q.account)
    days_fit = q.bucket != "hour" and (q.bucket is None or same_zone(zone, q.zone))
    months = q.bucket in (None, "month")
    if not q.needs_dimensions:
        if not days_fit:
            return _hour_plan(q, start, end)
        # Whole days from the one-row-per-day projection, their partial edges from quarters.
        return _day_plan(start, end, zone, int(Projection.TOTAL), edges=_quarter_plan, months=months)
    slices = slice_column(q) is not None
    if not days_fit:
        return _slice_plan(q, start, end) if slices else _raw_plan(start, end)
    edges = (lambda lower, upper: _slice_plan(q, lower, upper)) if slices else _raw_plan
    return _day_plan(start, end, zone, projection_for(_dimensions_of(q)), edges=edges, months=months)


def _raw_plan(start: datetime, end: datetime) -> list[_Piece]:
    return [_Piece("raw", start, end)]


def _quarter_plan(start: datetime, end: datetime, source: str = "quarter") -> list[_Piece]:
    """Whole 15-minute slots from the quarter (or slice) rows, the partial slots at the edges raw."""
    inner_start, inner_end = ceil_quarter(start), floor_quarter(end)
    if inner_start >= inner_end:
        return [_Piece("raw", start, end)]
    return _with_edges([_Piece(source, inner_start, inner_end)], start, end, inner_start, inner_end, _raw_plan)


def _hour_plan(q: UsageQuery, start: datetime, end: datetime) -> list[_Piece]:
    """As `_quarter_plan`, with the whole UTC hours inside read from the hour rows where
    each lies in one bucket of `q`: always in zones on the whole hour; in others (+05:30,
    +05:45) by day, week or month, the hours a local midnight cuts read as their quarters,
    and by hour not at all."""
    pieces = []
    for piece in _quarter_plan(start, end):
        if piece.source != "quarter":
            pieces.append(piece)
            continue
        if q.bucket is None:
            stretches = [(piece.start, piece.end, 0)]
        else:
            stretches = offset_stretches(piece.start, piece.end, q.zone)
        for lower, upper, offset in stretches:
            whole = offset % 3600 == 0
            inner_start, inner_end = floor_hour(lower + HOUR - QUARTER), floor_hour(upper)
            if (not whole and q.bucket == "hour") or inner_start >= inner_end:
                pieces.append(_Piece("quarter", lower, upper))
                continue
            if lower < inner_start:
                pieces.append(_Piece("quarter", lower, inner_start))
            if whole:
                pieces.append(_Piece("hour", inner_start, inner_end))
            else:
                pieces.append(_Piece("hour", inner_start, inner_end, cut=False, offset=offset))
                pieces.append(_Piece("quarter", inner_start, inner_end, cut=True, offset=offset))
            if inner_end < upper:
                pieces.append(_Piece("quarter", inner_end, upper))
    return pieces


def _utc_day_plan(q: UsageQuery, start: datetime, end: datetime) -> list[_Piece]:
    """Whole UTC days from the UTC-day rows, the partial days at the edges as `_hour_plan`
    (figures for the whole range only: a UTC day may straddle the query zone's buckets)."""
    first_day = start.date() if local_midnight(start.date(), UTC) == start else start.date() + timedelta(days=1)
    last_day = end.date() - timedelta(days=1)
    if first_day > last_day:
        return _hour_plan(q, start, end)
    inner_start, inner_end = local_midnight(first_day, UTC), local_midnight(end.date(), UTC)
    inner = [_Piece("utcday", inner_start, inner_end, first_day, last_day)]
    return _with_edges(inner, start, end, inner_start, inner_end, lambda lower, upper: _hour_plan(q, lower, upper))


def _range_sql(piece: _Piece, lower: datetime | None = None, upper: datetime | None = None) -> tuple[str, list]:
    """The rows of a slot piece (hours, quarters, slices) in [lower, upper) (default: the
    piece): for `cut` pieces, the hours no local midnight cuts (the local time of their
    start is at most 23:00), or the quarters of the hours one does."""
    lower, upper = lower or piece.start, upper or piece.end
    bounds = [adapt(lower), adapt(upper)]
    if piece.cut is None:
        return "start >= %s AND start < %s", bounds
    epoch = epoch_sql("start")
    if not piece.cut:
        return f"start >= %s AND start < %s AND ({epoch} + %s) %% 86400 <= 82800", [*bounds, piece.offset]
    if is_pg():
        # The quarters by value: with the range and a filter PostgreSQL read every quarter
        # of the range (35,000 a year) to keep 1,460; by value the unique index finds them.
        # The cut hours of one offset are a day apart: the server lists them (1,460
        # timestamps sent as parameters cost more to adapt than the read).
        hours = _cut_hours(piece, lower, upper)
        if hours is None:
            return "FALSE", []
        return (
            "start >= %s AND start < %s AND start = ANY(ARRAY(SELECT hour + quarter * INTERVAL '15 minutes' "
            "FROM generate_series(%s::timestamptz, %s::timestamptz, INTERVAL '86400 seconds') AS hour, "
            "generate_series(0, 3) AS quarter))",
            [*bounds, *hours],
        )
    return f"start >= %s AND start < %s AND ({epoch} - {epoch} %% 3600 + %s) %% 86400 > 82800", [
        *bounds,
        piece.offset,
    ]


def _cut_hours(piece: _Piece, lower: datetime, upper: datetime) -> tuple[datetime, datetime] | None:
    """The first and last UTC hour in [lower, upper) that holds a local midnight (they are
    a day apart), or None."""
    day = 86400
    # The first midnight after the start of the hour holding `lower`.
    first_hour = int(lower.timestamp()) // 3600 * 3600
    midnight = -((-(first_hour + 1 + piece.offset)) // day) * day - piece.offset
    first = midnight - midnight % 3600
    if first < int(lower.timestamp()):
        first += day
    last = first + (int(upper.timestamp()) - 1 - first) // day * day
    if first >= upper.timestamp() or last < first:
        return None
    return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)


def _slice_plan(q: UsageQuery, start: datetime, end: datetime) -> list[_Piece]:
    """Slices from the time they are complete (see RollupState.slices_since), raw before."""
    since = rollup_state(q.account)[1][slice_column(q)]
    if since is not None and since > start:
        if since >= end:
            return _raw_plan(start, end)
        since = ceil_quarter(since)
        return [*_raw_plan(start, since), *_quarter_plan(since, end, "slice")]
    return _quarter_plan(start, end, "slice")


def _day_plan(
    start: datetime, end: datetime, zone: ZoneInfo, projection: int, edges=_raw_plan, months: bool = False
) -> list[_Piece]:
    """Whole local days of `zone` from the daily rows, the partial days at the edges by
    `edges` (raw rows, or quarters when no dimension is needed). With `months` (figures
    by month or for the whole range), whole local months from the month rows."""
    first_day = start.astimezone(zone).date()
    if local_midnight(first_day, zone) < start:
        first_day += timedelta(days=1)
    last_day = end.astimezone(zone).date() - timedelta(days=1)
    if first_day > last_day:
        return edges(start, end)
    inner_start, inner_end = local_midnight(first_day, zone), local_midnight(last_day + timedelta(days=1), zone)
    inner = []
    month_first = first_day if first_day.day == 1 else next_date(first_day, "month")
    month_end = (last_day + timedelta(days=1)).replace(day=1)
    if months and month_first < month_end:
        if first_day < month_first:
            inner.append(_day_piece(first_day, month_first - timedelta(days=1), zone, projection))
        inner.append(_day_piece(month_first, month_end - timedelta(days=1), zone, projection + MONTHLY))
        if month_end <= last_day:
            inner.append(_day_piece(month_end, last_day, zone, projection))
    else:
        inner.append(_day_piece(first_day, last_day, zone, projection))
    return _with_edges(inner, start, end, inner_start, inner_end, edges)


def _day_piece(first_day: date, last_day: date, zone: ZoneInfo, projection: int) -> _Piece:
    """Local days first_day..last_day of the daily rows (for a month projection, the month
    rows of the months they make up)."""
    lower, upper = local_midnight(first_day, zone), local_midnight(last_day + timedelta(days=1), zone)
    return _Piece("day", lower, upper, first_day, last_day, projection)


def _with_edges(pieces, start, end, inner_start, inner_end, edges) -> list[_Piece]:
    if start < inner_start:
        pieces[:0] = edges(start, inner_start)
    if inner_end < end:
        pieces.extend(edges(inner_end, end))
    return pieces


def _filtered_pieces(q: UsageQuery) -> list[_Piece]:
    """Pieces of whole slots (hours or quarters, or slices with a filter on one dimension)
    and raw rows for the rest, for figures that need the slots themselves."""
    start, end = q.start.astimezone(UTC), q.end.astimezone(UTC)
    if not q.has_filters:
        return _hour_plan(q, start, end)
    if slice_column(q) is not None:
        return _slice_plan(q, start, end)
    return _raw_plan(start, end)


def _filter_attribute(column: str) -> str:
    return FILTER_PARAMETERS[column]
