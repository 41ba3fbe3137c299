"""Usage figures for a time range: the one place the analytics pages, the usage API and the
log list's totals bar read them from.

A query is split into pieces, each read from the cheapest source that is exact for it:

- no filter and no grouping: `UsageHour` for the whole UTC hours of the range that lie in
  one bucket, `UsageQuarter` for the other whole 15-minute slots (the hours a local
  midnight cuts in zones at +05:30 / +05:45, the part-hours at the edges; exact for any
  zone's hours and days), raw rows for the partial slots at its edges;
- filters or grouping, by day / week / month in the zone of the account's daily rows, or
  no time bucket at all: `UsageDay` for the whole local days of the range, raw rows for the
  partial days at its edges (less than a day each);
- filters or grouping on one of model, API key or status, by hour or by another zone's
  days: `UsageSlice` for the whole 15-minute slots (the partial days at the edges of a
  `UsageDay` read come from them too);
- the same by another zone's days, weeks or months when the caller reads sums only
  (`sums_only`: the pages and the usage API): the account's daily rows, corrected at each
  bucket edge by the slices between the edge and the nearest midnight of the account's
  zone (`_shifted_days`);
- anything else (two dimensions by hour or by another zone's days, slots before the
  account's slices were complete): raw rows, under the log statement timeout.

Every piece is grouped in SQL by a time key (UTC quarter or local date) and the grouping
dimensions; Python then adds the pieces into the buckets of the range.
"""

import importlib.resources
import zoneinfo
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from analytics.models import (
    DIMENSIONS,
    MEASURES,
    MONTHLY,
    PROJECTION_DIMENSIONS,
    SLICE_COLUMNS,
    Projection,
    RollupState,
    UsageDay,
    UsageHour,
    UsageQuarter,
    UsageSlice,
    UsageSliceDay,
)
from analytics.rollups import (
    _ADDITIVE_AT,
    _MICROSECOND,
    _RAW_MEASURES_SQL,
    HOUR,
    QUARTER,
    adapt,
    as_utc,
    empty_measures,
    local_midnight,
    merge,
    minute_sql,
    next_month,
    to_decimal,
    utc_days,
)
from console.models import Account
from logs import gate
from logs.selectors import statement_timeout

BUCKETS = ("hour", "day", "week", "month")
GROUPS = DIMENSIONS
_COST_AT = MEASURES.index("cost")
_MAX_COST_AT = MEASURES.index("max_cost")
_ROLLUP_OF = {
    "quarter": UsageQuarter,
    "hour": UsageHour,
    "day": UsageDay,
    "slice": UsageSlice,
    "slice_day": UsageSliceDay,
}
_SLICE_DIMENSION_OF = {column: int(dimension) for dimension, column in SLICE_COLUMNS.items()}
_ROLLUP_MEASURES_SQL = ", ".join(
    f"max({name})"
    if name in ("latency_max", "max_total_tokens", "max_cost")
    else (f"sum({name})" if name == "cost" else f"CAST(sum({name}) AS BIGINT)")
    for name in MEASURES
)
_FILTER_COLUMNS = {"models": "model", "api_keys": "api_key", "statuses": "status", "error_codes": "error_code"}
# A year of quarter rows grouped by another zone's days: the planner guessed 16,000 groups
# for 365 and, with the default 4 MB, sorted 35,000 rows on disk instead of hashing them.
_WORK_MEM = "32MB"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch: lists of bounds go to PostgreSQL as bigint arrays (700
    datetimes took longer to send than to read)."""
    return (moment - _EPOCH) // _MICROSECOND


def _from_epoch_us_sql(column: str) -> str:
    return f"TIMESTAMPTZ 'epoch' + {column} * INTERVAL '1 microsecond'"


class UsageError(ValueError):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: int = 0
    latency_count: int = 0
    latency_sum: int = 0
    latency_max: int | None = None
    max_total_tokens: int = 0
    max_cost: Decimal | None = None

    @classmethod
    def from_values(cls, values: list) -> "Totals":
        return cls(*values)  # the fields are MEASURES, in order (tests/analytics/test_usage_exact.py)

    def values(self) -> list:
        return [getattr(self, name) for name in MEASURES]

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    @property
    def cost_per_1k_requests(self) -> Decimal | None:
        priced = self.requests - self.unpriced
        return self.cost * 1000 / priced if priced else None


def sum_totals(items: Iterable[Totals]) -> Totals:
    values = empty_measures()
    for item in items:
        merge(values, item.values())
    return Totals.from_values(values)


@dataclass
class Bucket:
    start: datetime
    end: datetime
    groups: dict[tuple, Totals] = field(default_factory=dict)

    @property
    def total(self) -> Totals:
        return sum_totals(self.groups.values())


@dataclass(frozen=True)
class UsageQuery:
    account: Account | gate.AllAccounts  # gate.all_accounts() for the operator's view
    start: datetime
    end: datetime
    zone: ZoneInfo
    bucket: str | None = None
    group_by: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    # The caller reads only the additive measures (requests, tokens, cost, ...): by another
    # zone's days the figures may then come from the daily rows, and each bucket's maxima
    # (max_total_tokens, max_cost, latency_max) are left None (see _shifted_days).
    sums_only: bool = False

    def __post_init__(self):
        if self.account is None:
            raise UsageError("account", "a usage query needs an account, or all_accounts() for the operator")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise UsageError("start", "start and end need a time zone")
        if self.end <= self.start:
            raise UsageError("end", "end must be after start")
        if self.bucket is not None and self.bucket not in BUCKETS:
            raise UsageError("bucket", f"unknown bucket {self.bucket!r}; use one of {', '.join(BUCKETS)}")
        allowed = ("account",) if self.every_account else GROUPS
        for name in self.group_by:
            if name not in allowed:
                raise UsageError("group_by", f"unknown group {name!r}; use any of {', '.join(allowed)}")
        if len(set(self.group_by)) != len(self.group_by):
            raise UsageError("group_by", "a group is named twice")
        if self.every_account and self.has_filters:
            raise UsageError("account", "the all-accounts view takes no model, key, status or error filter")

    @property
    def every_account(self) -> bool:
        return isinstance(self.account, gate.AllAccounts)

    @property
    def has_filters(self) -> bool:
        return bool(self.models or self.api_keys or self.statuses or self.error_codes)

    @property
    def needs_dimensions(self) -> bool:
        return self.has_filters or any(name in GROUPS for name in self.group_by)


# --- time keys -------------------------------------------------------------------------------


def _is_pg() -> bool:
    return connection.vendor == "postgresql"


def _local_date_sql(column: str, zone: ZoneInfo) -> tuple[str, list]:
    if _is_pg():
        return f"({column} AT TIME ZONE %s)::date", [zone.key]
    return f"meterlog_local({column}, %s, 'date')", [zone.key]


def _dow_hour_sql(column: str, zone: ZoneInfo) -> tuple[str, list]:
    if _is_pg():
        return f"to_char({column} AT TIME ZONE %s, 'ID-HH24')", [zone.key]
    return f"meterlog_local({column}, %s, 'dow_hour')", [zone.key]


def _hour_sql(column: str, zone: ZoneInfo) -> tuple[str, list]:
    """The UTC start of the local hour holding `column` (as a UTC timestamp without zone).

    The local hour minus the offset in force: after a DST change the repeated local hour
    is two buckets (two offsets), not one of two hours."""
    if _is_pg():
        local = f"({column} AT TIME ZONE %s)"
        return f"date_trunc('hour', {local}) - ({local} - ({column} AT TIME ZONE 'UTC'))", [zone.key, zone.key]
    return f"meterlog_local({column}, %s, 'hour')", [zone.key]


def _as_date(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def hour_start(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def bucket_date(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _next_date(day: date, bucket: str) -> date:
    if bucket == "month":
        return next_month(day)
    return day + timedelta(days=7 if bucket == "week" else 1)


def bucket_edges(start: datetime, end: datetime, zone: ZoneInfo, bucket: str | None) -> list[tuple[datetime, datetime]]:
    """Every bucket of [start, end): the first starts at the bucket holding `start`, the last
    ends at or after `end`. Day, week and month buckets start at local midnight."""
    if bucket is None:
        return [(start.astimezone(UTC), end.astimezone(UTC))]
    edges = []
    if bucket == "hour":
        current = hour_start(start, zone)
        while current < end:
            # Floored again: after a DST change the next local hour may start off the hour.
            following = hour_start(current + timedelta(hours=1), zone)
            edges.append((current, following))
            current = following
        return edges
    day = bucket_date(start.astimezone(zone).date(), bucket)
    while True:
        lower = local_midnight(day, zone)
        if lower >= end:
            break
        following = _next_date(day, bucket)
        edges.append((lower, local_midnight(following, zone)))
        day = following
    return edges


# --- planning ------------------------------------------------------------------------------------


def _ceil_quarter(moment: datetime) -> datetime:
    floor = _floor_quarter(moment)
    return floor if floor == moment else floor + QUARTER


def _floor_quarter(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


@lru_cache(maxsize=256)
def _zone_rules(key: str) -> bytes | None:
    for root in zoneinfo.TZPATH:
        path = Path(root) / key
        if path.is_file():
            return path.read_bytes()
    try:
        return importlib.resources.files("tzdata.zoneinfo").joinpath(*key.split("/")).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


def same_zone(a: ZoneInfo, b: ZoneInfo) -> bool:
    """Whether two zone names are one zone: browsers report old aliases (Chromium says
    Asia/Katmandu for Asia/Kathmandu), which must still find the account's daily rows."""
    if a.key == b.key:
        return True
    rules = _zone_rules(a.key)
    return rules is not None and rules == _zone_rules(b.key)


def _rollup_state(account: Account) -> tuple[ZoneInfo, dict[str, datetime | None]]:
    """The zone of the account's daily rows and, per slice column, the time its slices are
    complete from (remembered on the Account object: a page asks for many charts of one
    account)."""
    cached = getattr(account, "_rollup_state", None)
    if cached is None:
        row = (
            gate.rollup_rows(RollupState, account)
            .values_list("day_timezone", "slices_since", "key_slices_since")
            .first()
        )
        zone, since, key_since = row if row else (None, None, None)
        since_of = {"model": since, "status": since, "api_key": key_since}
        cached = account._rollup_state = (ZoneInfo(zone or account.timezone), since_of)
    return cached


def day_zone(account: Account) -> ZoneInfo:
    return _rollup_state(account)[0]


@dataclass
class _Piece:
    source: str  # "hour" | "quarter" | "slice" | "day" | "raw"
    start: datetime
    end: datetime
    first_day: date | None = None  # "day" pieces: local dates first_day..last_day
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
    needed |= {column for attribute, column in _FILTER_COLUMNS.items() if getattr(q, attribute)}
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
    if q.every_account:  # every account: their days are in different zones
        return _hour_plan(q, start, end)
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
    inner_start, inner_end = _ceil_quarter(start), _floor_quarter(end)
    if inner_start >= inner_end:
        return [_Piece("raw", start, end)]
    return _with_edges([_Piece(source, inner_start, inner_end)], start, end, inner_start, inner_end, _raw_plan)


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


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
            inner_start, inner_end = _floor_hour(lower + HOUR - QUARTER), _floor_hour(upper)
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


def _epoch_sql(column: str) -> str:
    if _is_pg():
        return f"date_part('epoch', {column})::bigint"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _range_sql(piece: _Piece, lower: datetime | None = None, upper: datetime | None = None) -> tuple[str, list]:
    """The rows of a slot piece (hours, quarters, slices) in [lower, upper) (default: the
    piece): for `cut` pieces, the hours no local midnight cuts (the local time of their
    start is at most 23:00), or the quarters of the hours one does."""
    lower, upper = lower or piece.start, upper or piece.end
    bounds = [adapt(lower), adapt(upper)]
    if piece.cut is None:
        return "start >= %s AND start < %s", bounds
    epoch = _epoch_sql("start")
    if not piece.cut:
        return f"start >= %s AND start < %s AND ({epoch} + %s) %% 86400 <= 82800", [*bounds, piece.offset]
    if _is_pg():
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
    since = _rollup_state(q.account)[1][slice_column(q)]
    if since is not None and since > start:
        if since >= end:
            return _raw_plan(start, end)
        since = _ceil_quarter(since)
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
    month_first = first_day if first_day.day == 1 else _next_date(first_day, "month")
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


# --- reading -------------------------------------------------------------------------------------


def _filters_sql(q: UsageQuery, source: str = "raw") -> tuple[str, list]:
    """The query's filters as SQL for rows of `source` (a slice names its value `value`)."""
    if source in ("quarter", "hour"):
        return "", []
    sliced = slice_column(q) if source == "slice" else None
    clauses, params = [], []
    if sliced:
        clauses.append("dimension = %s")
        params.append(_SLICE_DIMENSION_OF[sliced])
    for attribute, column in _FILTER_COLUMNS.items():
        values = getattr(q, attribute)
        if values:
            name = "value" if column == sliced else column
            clauses.append(f"{name} IN ({', '.join(['%s'] * len(values))})")
            params.extend(values)
    return "".join(f" AND {clause}" for clause in clauses), params


def _scoped(q: UsageQuery, source: str) -> tuple[str, str, list]:
    """Table, WHERE and params of one source for the query's account, from the tenant gate."""
    if source == "raw":
        return gate.request_log_sql(q.account)
    return gate.rollup_sql(_ROLLUP_OF[source], q.account)


def _time_key(q: UsageQuery, source: str, column: str) -> tuple[str | None, list, str | None]:
    """SQL for the time key of a row, its params, and what the key is ('quarter' / 'date')."""
    if q.bucket is None:
        return None, [], None
    if source == "day":
        return _week_month_sql("day", q.bucket), [], "date"
    if q.bucket == "hour":
        sql, params = _hour_sql(column, q.zone)
        return sql, params, "hour"
    sql, params = _local_date_sql(column, q.zone)
    return _week_month_sql(sql, q.bucket), params, "date"


def _week_month_sql(date_sql: str, bucket: str) -> str:
    """A local date truncated to its week (Monday) or month in SQL, so a year by week reads
    53 rows per group, not 365."""
    if bucket not in ("week", "month"):
        return date_sql
    if _is_pg():
        return f"date_trunc('{bucket}', {date_sql})::date"
    if bucket == "week":  # SQLite: 'weekday 0' moves to the next Sunday (or stays on one)
        return f"date({date_sql}, 'weekday 0', '-6 days')"
    return f"date({date_sql}, 'start of month')"


def _group_columns(q: UsageQuery, source: str = "raw") -> list[str]:
    sliced = slice_column(q) if source == "slice" else None
    return [{"account": "account_id", sliced: "value"}.get(name, name) for name in q.group_by]


def _read_pieces(cursor, q: UsageQuery, pieces: list[_Piece], top: int | None = None) -> Iterable[tuple]:
    """Rows of (time key or None, kind, *group values, *MEASURES) of pieces of one source,
    in one statement (the head and tail edges of a range are one read, not two)."""
    source = pieces[0].source
    raw = source == "raw"
    table, account_sql, account_params = _scoped(q, source)
    time_column = "timestamp" if raw else ("day" if source == "day" else "start")
    key_sql, key_params, kind = _time_key(q, source, time_column)
    where = [account_sql]
    params: list = [*account_params]
    ranges = []
    for piece in pieces:
        if source == "day":
            ranges.append("(projection = %s AND day >= %s AND day <= %s)")
            params += [piece.projection, piece.first_day, piece.last_day]
        elif raw:
            ranges.append("(timestamp >= %s AND timestamp < %s)")
            params += [adapt(piece.start), adapt(piece.end)]
        else:
            range_sql, range_params = _range_sql(piece)
            ranges.append(f"({range_sql})")
            params += range_params
    where.append(ranges[0] if len(ranges) == 1 else f"({' OR '.join(ranges)})")
    filters_sql, filter_params = _filters_sql(q, source)
    groups = _group_columns(q, source)
    select = [key_sql] if key_sql else []
    select += groups
    measures = _RAW_MEASURES_SQL if raw else _ROLLUP_MEASURES_SQL
    group_by = ", ".join(str(i + 1) for i in range(len(select)))
    sql = f"SELECT {', '.join([*select, measures])} FROM {table} WHERE {' AND '.join(where)}{filters_sql}" + (
        f" GROUP BY {group_by}" if group_by else ""
    )
    if top is not None:  # the groups with the most requests (the first measure)
        # Ties go to the earliest time key: the same total order as the caller's ranking.
        sql += f" ORDER BY {len(select) + 1} DESC, 1 LIMIT {int(top)}"
    cursor.execute(sql, [*key_params, *params, *filter_params])
    width = len(select)
    for row in cursor.fetchall():
        values = _measures(row[width:])
        if values is None:
            continue
        key = row[0] if key_sql else None
        yield (key, kind, tuple(row[1 if key_sql else 0 : width]), values)


def _measures(row) -> list | None:
    """The MEASURES of a result row as Python values; None for no rows (an aggregate without
    GROUP BY answers one row even over nothing)."""
    if not row[0]:
        return None
    values = list(row)
    values[_COST_AT] = to_decimal(values[_COST_AT])
    if values[_MAX_COST_AT] is not None:
        values[_MAX_COST_AT] = to_decimal(values[_MAX_COST_AT])
    return values


def usage(q: UsageQuery) -> list[Bucket]:
    edges = bucket_edges(q.start, q.end, q.zone, q.bucket)
    # Every account's quarter rows (the operator's view) do gain from parallel workers.
    with statement_timeout(parallel=q.every_account, work_mem=_WORK_MEM), connection.cursor() as cursor:
        merged = _shifted_days(cursor, q, edges) if reads_shifted_days(q) else _planned(cursor, q, edges)
    buckets = []
    for (lower, upper), groups in zip(edges, merged, strict=True):
        ordered = sorted(groups.items(), key=_sort_key)
        buckets.append(Bucket(lower, upper, {group: Totals.from_values(values) for group, values in ordered}))
    return buckets


def _planned(cursor, q: UsageQuery, edges: list[tuple[datetime, datetime]]) -> list[dict[tuple, list]]:
    """Measures per bucket and group, each piece of `plan(q)` added into its bucket."""
    starts = {lower: index for index, (lower, _upper) in enumerate(edges)}
    merged: list[dict[tuple, list]] = [{} for _ in edges]
    by_source: dict[str, list[_Piece]] = {}
    for piece in plan(q):
        by_source.setdefault(piece.source, []).append(piece)
    indexes: dict = {}  # many groups share a time key: find its bucket once
    for pieces in by_source.values():
        for key, kind, group, values in _read_pieces(cursor, q, pieces):
            index = indexes.get((kind, key), -1)
            if index == -1:
                index = indexes[(kind, key)] = _bucket_index(q, key, kind, starts)
            if index is None:
                continue
            current = merged[index].get(group)
            if current is None:
                merged[index][group] = values
            else:
                merge(current, values)
    return merged


def reads_shifted_days(q: UsageQuery) -> bool:
    """Whether `usage(q)` builds another zone's days from the account's daily rows."""
    return (
        q.sums_only
        and not q.every_account
        and q.bucket in ("day", "week", "month")
        and slice_column(q) is not None
        and not same_zone(day_zone(q.account), q.zone)
    )


def _shifted_days(cursor, q: UsageQuery, edges: list[tuple[datetime, datetime]]) -> list[dict[tuple, list]]:
    """Days, weeks or months of a zone other than the daily rows' one, for one sliced
    dimension, with a twelfth to a half of the slices `plan` reads.

    Each bucket edge t (and the range's start and end) moves to the nearest midnight n(t)
    of the rows' zone. The rows of [a, b) are the daily rows of [n(a), n(b)), less the
    slices between n(a) and a, plus those between n(b) and b (signed: n may lie before or
    after t), so at most 12 hours of slices per edge are read instead of every slice of
    the range: a year of one model by Tokyo days, for an account in Berlin, read 35,000
    slices and now 365 daily rows and about 11,000 slices (7-8 hours a day); by weeks, 53
    windows. Subtraction is exact for the sums only, so every bucket's maxima are left
    None (hence `sums_only`)."""
    zone = day_zone(q.account)
    start, end = q.start.astimezone(UTC), q.end.astimezone(UTC)
    # The range cut at every bucket edge inside it: segment i belongs to bucket i.
    bounds = [start, *(lower for lower, _upper in edges[1:]), end]
    midnights: dict[date, datetime] = {}  # neighbouring edges share a midnight

    def nearest(moment: datetime) -> datetime:
        day = moment.astimezone(zone).date()
        before, after = (
            midnights.get(d) or midnights.setdefault(d, local_midnight(d, zone)) for d in (day, day + timedelta(days=1))
        )
        return before if moment - before <= after - moment else after

    near = [nearest(moment) for moment in bounds]
    merged: list[dict[tuple, list]] = [{} for _ in edges]

    def add(index: int, group: tuple, values: list, sign: int) -> None:
        current = merged[index].get(group)
        if current is None:
            current = merged[index][group] = empty_measures()
        for i in _ADDITIVE_AT:
            current[i] += sign * (values[i] or 0)

    daily = replace(q, bucket="day")
    first_day, end_day = near[0].astimezone(zone).date(), near[-1].astimezone(zone).date()
    if first_day < end_day:
        thresholds = [moment.astimezone(zone).date() for moment in near]
        day_piece = _day_piece(first_day, end_day - timedelta(days=1), zone, projection_for(_dimensions_of(q)))
        indexes: dict = {}
        for key, _kind, group, values in _read_pieces(cursor, daily, [day_piece]):
            index = indexes.get(key)
            if index is None:
                index = indexes[key] = bisect_right(thresholds, _as_date(key)) - 1
            add(index, group, values, 1)
    # The slices between each edge and its midnight, read once, added to the bucket the
    # edge ends and taken from the one it starts.
    windows = []
    signs = {}
    for j, (moment, midnight) in enumerate(zip(bounds, near, strict=True)):
        if moment != midnight:
            signs[j] = 1 if midnight < moment else -1
            windows.append((min(moment, midnight), max(moment, midnight), j))
    for j, group, values in _read_windows(cursor, q, windows):
        if j > 0:
            add(j - 1, group, values, signs[j])
        if j < len(edges):
            add(j, group, values, -signs[j])
    for groups in merged:
        for group in [group for group, values in groups.items() if values[0] == 0]:
            del groups[group]  # every row of the group cancelled out
    return merged


def _read_windows(cursor, q: UsageQuery, windows: list[tuple[datetime, datetime, int]]) -> Iterable[tuple]:
    """(window number, group, measures) of the rows of each window (lower, upper, number),
    from the slices where they are complete and raw rows for the rest."""
    plain = replace(q, bucket=None)
    since = _rollup_state(q.account)[1][slice_column(q)]
    by_source: dict[str, list[tuple[_Piece, int]]] = {}
    for lower, upper, number in windows:
        if (since is None or since <= lower) and _floor_quarter(lower) == lower and _floor_quarter(upper) == upper:
            pieces = [_Piece("slice", lower, upper)]  # most windows: whole slots of complete slices
        else:
            pieces = _slice_plan(q, lower, upper)
        for piece in pieces:
            by_source.setdefault(piece.source, []).append((piece, number))
    for source, numbered in by_source.items():
        if not _is_pg():  # SQLite: a statement per window is cheap in process
            for piece, number in numbered:
                for _key, _kind, group, values in _read_pieces(cursor, plain, [piece]):
                    yield number, group, values
            continue
        yield from _read_numbered(cursor, plain, source, numbered)


def _read_numbered(cursor, q: UsageQuery, source: str, numbered: list[tuple[_Piece, int]]) -> Iterable[tuple]:
    """PostgreSQL: the rows of many ranges of one source in one statement, each range summed
    on its own (a LATERAL aggregate: an index range scan per range). As a plain join the
    planner read every slice of the span once per range: 13 M comparisons for a year."""
    raw = source == "raw"
    column = "timestamp" if raw else "start"
    table, account_sql, params = _scoped(q, "raw" if raw else "slice")
    filters_sql, filter_params = _filters_sql(q, source)
    groups = _group_columns(q, source)
    measures = _RAW_MEASURES_SQL if raw else _ROLLUP_MEASURES_SQL
    group_by = f" GROUP BY {', '.join(groups)}" if groups else ""
    cursor.execute(
        "SELECT windows.number, sums.* "
        "FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS windows(lower_us, upper_us, number) "
        f"CROSS JOIN LATERAL (SELECT {', '.join([*groups, measures])} FROM {table} WHERE {account_sql} "
        f"AND {column} >= {_from_epoch_us_sql('windows.lower_us')} "
        f"AND {column} < {_from_epoch_us_sql('windows.upper_us')}{filters_sql}{group_by}"
        ") AS sums",
        [
            [_epoch_us(piece.start) for piece, _ in numbered],
            [_epoch_us(piece.end) for piece, _ in numbered],
            [number for _, number in numbered],
            *params,
            *filter_params,
        ],
    )
    width = len(groups) + 1
    for row in cursor.fetchall():
        values = _measures(row[width:])
        if values is not None:
            yield row[0], tuple(row[1:width]), values


def _sort_key(item):
    return tuple("" if part is None else str(part) for part in item[0])


def _bucket_index(q: UsageQuery, key, kind, starts: dict[datetime, int]) -> int | None:
    if kind is None:
        return 0
    if kind == "hour":
        return starts.get(as_utc(key))
    return starts.get(local_midnight(bucket_date(_as_date(key), q.bucket), q.zone))


def totals(q: UsageQuery) -> Totals:
    """The whole range as one Totals (filters respected, groups ignored)."""
    plain = UsageQuery(
        account=q.account, start=q.start, end=q.end, zone=q.zone,
        models=q.models, api_keys=q.api_keys, statuses=q.statuses, error_codes=q.error_codes,
    )  # fmt: skip
    return usage(plain)[0].total


def busiest_hours(q: UsageQuery, n: int = 10) -> list[Bucket]:
    """The `n` local hours of the range with the most requests (filters respected), busiest
    first, without listing every hour of the range (8,760 in a year).

    From quarter (or slice) rows, the top n + 3 hours are enough: the raw edges of the
    range (under 15 minutes each) and the start of the slices touch at most three hours, so
    at least n of those hours are exact already and no other hour can pass them."""
    hourly = UsageQuery(
        account=q.account, start=q.start, end=q.end, zone=q.zone, bucket="hour",
        models=q.models, api_keys=q.api_keys, statuses=q.statuses, error_codes=q.error_codes,
    )  # fmt: skip
    by_source: dict[str, list[_Piece]] = {}
    for piece in plan(hourly):
        by_source.setdefault(piece.source, []).append(piece)
    merged: dict[datetime, list] = {}
    with statement_timeout(parallel=False, work_mem=_WORK_MEM), connection.cursor() as cursor:
        for source, pieces in by_source.items():
            top = None
            if source in ("quarter", "hour", "slice"):
                # The edges, and the time slices became complete, touch at most three hours.
                pieces = [hour for piece in pieces for hour in _top_slot_hours(cursor, hourly, piece, n + 3)]
                if not pieces:
                    continue
            elif len(by_source) == 1:
                top = n
            for key, _kind, _group, values in _read_pieces(cursor, hourly, pieces, top=top):
                start = as_utc(key)
                if start in merged:
                    merge(merged[start], values)
                else:
                    merged[start] = values
    ranked = sorted(merged.items(), key=lambda item: (-item[1][0], item[0]))[:n]
    return [
        Bucket(start, hour_start(start + timedelta(hours=1), q.zone), {(): Totals.from_values(values)})
        for start, values in ranked
    ]


def _top_slot_hours(cursor, q: UsageQuery, piece: _Piece, top: int) -> list[_Piece]:
    """The `top` local hours of a quarter or slice piece with the most requests, as pieces
    of that source. Ranked from `requests` alone, by integer arithmetic on the epoch per
    stretch of constant offset (as the heatmap), so a value's slices are read from their
    covering index; the caller then reads every measure of these few hours only."""
    epoch = _epoch_sql("start")
    hours = []
    for lower, upper, offset in offset_stretches(piece.start, piece.end, q.zone):
        where, params = _slots_sql(q, piece, lower, upper)
        cursor.execute(
            f"SELECT ({epoch} + %s) / 3600, sum(requests) FROM {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s",
            [offset, *params, top],
        )
        for local_hour, _requests in cursor.fetchall():
            start = datetime.fromtimestamp(int(local_hour) * 3600 - offset, UTC)
            hours.append(_Piece(piece.source, max(start, lower), min(start + timedelta(hours=1), upper)))
    return hours


# --- peaks, heatmap, most expensive requests -----------------------------------------------------


def _filtered_pieces(q: UsageQuery) -> list[_Piece]:
    """Pieces of whole slots (hours or quarters, or slices with a filter on one dimension)
    and raw rows for the rest, for figures that need the slots themselves."""
    start, end = q.start.astimezone(UTC), q.end.astimezone(UTC)
    if not q.has_filters:
        return _hour_plan(q, start, end)
    if slice_column(q) is not None:
        return _slice_plan(q, start, end)
    return _raw_plan(start, end)


def _slots_sql(q: UsageQuery, piece: _Piece, lower: datetime | None = None, upper: datetime | None = None):
    """FROM and WHERE (and params) for the quarter or slice rows of `piece`."""
    table, account_sql, params = _scoped(q, piece.source)
    filters_sql, filter_params = _filters_sql(q, piece.source)
    range_sql, range_params = _range_sql(piece, lower, upper)
    return f"{table} WHERE {account_sql} AND {range_sql}{filters_sql}", [*params, *range_params, *filter_params]


def _raw_peak(cursor, q: UsageQuery, ranges: list[tuple[datetime, datetime]]) -> tuple[int, int]:
    """Requests and tokens of the busiest minute among the raw rows of `ranges`."""
    table, account_sql, params = _scoped(q, "raw")
    filters_sql, filter_params = _filters_sql(q)
    per = "account_id, " if q.every_account else ""
    spans = " OR ".join(["(timestamp >= %s AND timestamp < %s)"] * len(ranges))
    cursor.execute(
        f"SELECT max(n), max(t) FROM (SELECT count(*) AS n, sum(total_tokens) AS t FROM {table} "
        f"WHERE {account_sql} AND ({spans}){filters_sql} GROUP BY {per}{minute_sql('timestamp')}) AS minutes",
        [*params, *(adapt(v) for span in ranges for v in span), *filter_params],
    )
    requests, tokens = cursor.fetchone()
    return requests or 0, tokens or 0


_PEAK_BATCH = 48  # slots counted again from raw rows per round
_PEAK_DAYS = 4  # days whose slots are bounded in the first round; doubled each round
_MAX_PEAK_ROUNDS = 8  # then everything still hopeful is counted in one go
# From this many values on, bounds are also held under the busiest minute of all requests:
# measured at 10 M rows, it pruned nothing for two models and most days for three or more.
_TOTALS_FROM_VALUES = 3

# A block of time with upper bounds on its busiest minute: (start, requests, tokens).
_Bounded = tuple[datetime, float, float]


def _slices_peak(cursor, q: UsageQuery, piece: _Piece) -> tuple[int, int]:
    """The busiest minute of slice rows. With one value per slot it is the largest slot
    peak. With several (two models), a minute of the union holds at least the largest
    single peak L, and a block of time's busiest minute at most the sum of its values'
    peaks in the block. Branch and bound on three levels: UTC days by the sum of each
    value's busiest minute that day (UsageSliceDay, 365 rows a value-year); the slots of
    the most hopeful days (4, then 8, 16 ...) by the sum of their values' slot peaks; the
    raw rows of the most hopeful slots; until no block left can beat the best minute
    found. With many values (eight of sixteen models) the sums grow loose, and the
    busiest minute of all the account's requests that day or slot bounds them too."""
    values = getattr(q, _filter_attribute(slice_column(q))) if piece.source == "slice" else ()
    if len(values) <= 1:
        where, params = _slots_sql(q, piece)
        cursor.execute(f"SELECT max(peak_minute_requests), max(peak_minute_tokens) FROM {where}", params)
        requests, tokens = cursor.fetchone()
        return requests or 0, tokens or 0
    within_totals = not q.every_account and len(values) >= _TOTALS_FROM_VALUES

    def count_slots(slots: list[datetime], best: list[int]) -> list[int]:
        return count_raw(_slot_ranges(slots), best)

    def count_days(batch: list[datetime], best: list[int]) -> list[int]:
        spans = [(max(day, piece.start), min(day + timedelta(days=1), piece.end)) for day in batch]
        slots, least = _slot_bounds(cursor, q, spans, best, within_totals)
        best = _better(best, least)
        return _bound_and_count(best, slots, count_slots, lambda best: count_raw(spans, best))

    def count_raw(spans: list[tuple[datetime, datetime]], best: list[int]) -> list[int]:
        for ranges in _ranges_by_month(spans).values():
            best = _better(best, _raw_peak(cursor, q, ranges))
        return best

    best, days = _day_bounds(cursor, q, piece)
    if within_totals:
        totals = {day: (r, t) for day, r, t in _day_totals(cursor, q, piece)}
        days = [(day, min(r, totals.get(day, (r, t))[0]), min(t, totals.get(day, (r, t))[1])) for day, r, t in days]
    everything = [(piece.start, piece.end)]
    best = _bound_and_count(best, days, count_days, lambda best: count_raw(everything, best), first_batch=_PEAK_DAYS)
    return best[0], best[1]


def _day_totals(cursor, q: UsageQuery, piece: _Piece) -> list[_Bounded]:
    """Per UTC day of the piece, the busiest minute of all the account's requests (its
    UsageSliceDay rows of dimension 0): a bound on the busiest minute of any of its values."""
    table, account_sql, params = _scoped(q, "slice_day")
    cursor.execute(
        f"SELECT day, peak_minute_requests, peak_minute_tokens FROM {table} "
        f"WHERE {account_sql} AND dimension = 0 AND value = '' AND day >= %s AND day <= %s",
        [*params, *utc_days(piece.start, piece.end)],
    )
    return [(local_midnight(_as_date(day), UTC), r, t) for day, r, t in cursor.fetchall()]


def _batch(blocks: list[_Bounded], counted: set, best: list[int], size: int) -> set[datetime]:
    """The starts of the `size` blocks with the highest bound on each measure that could
    still beat `best` and are not yet counted."""
    batch = set()
    for measure in (0, 1):  # requests, tokens
        hopeful = [b for b in blocks if b[0] not in counted and b[1 + measure] > best[measure]]
        hopeful.sort(key=lambda b: b[1 + measure], reverse=True)
        batch.update(b[0] for b in hopeful[:size])
    return batch


def _better(best: list[int], found: tuple[int, int]) -> list[int]:
    return [max(best[0], found[0]), max(best[1], found[1])]


def _bound_and_count(best: list[int], blocks: list[_Bounded], count, count_rest, first_batch: int = 0) -> list[int]:
    """Branch and bound: in rounds, count the blocks with the highest bound on either
    measure that could still beat `best` (count(starts, best) -> best): _PEAK_BATCH a
    round, or `first_batch` doubled each round. After _MAX_PEAK_ROUNDS rounds,
    count_rest(best) settles whatever is left."""
    counted: set[datetime] = set()
    rounds = 0
    while batch := _batch(blocks, counted, best, first_batch << rounds if first_batch else _PEAK_BATCH):
        if rounds == _MAX_PEAK_ROUNDS:
            return count_rest(best)
        best = count(sorted(batch), best)
        counted |= batch
        rounds += 1
    return best


def _day_bounds(cursor, q: UsageQuery, piece: _Piece) -> tuple[list[int], list[_Bounded]]:
    """Per UTC day of the piece, the sum over values of each value's busiest minute that
    day (UsageSliceDay): an upper bound on that day's busiest minute. Also the busiest
    minute of one value on a day wholly inside the piece: a lower bound on the answer.
    Token sums as doubles: exact below 2**53 and far cheaper to add than numeric."""
    table, account_sql, params = _scoped(q, "slice_day")
    filters_sql, filter_params = _filters_sql(q, "slice")
    cursor.execute(
        f"SELECT day, sum(requests), sum(CAST(tokens AS DOUBLE PRECISION)), max(requests), max(tokens) FROM "
        f"(SELECT day, max(peak_minute_requests) AS requests, max(peak_minute_tokens) AS tokens FROM {table} "
        f"WHERE {account_sql} AND day >= %s AND day <= %s{filters_sql} GROUP BY day, value) AS days GROUP BY day",
        [*params, *utc_days(piece.start, piece.end), *filter_params],
    )
    best, days = [0, 0], []
    for day, up_requests, up_tokens, requests, tokens in cursor.fetchall():
        start = local_midnight(_as_date(day), UTC)
        if piece.start <= start and start + timedelta(days=1) <= piece.end:
            best = _better(best, (requests or 0, tokens or 0))
        days.append((start, up_requests, up_tokens))
    return best, days


def _slot_bounds(
    cursor, q: UsageQuery, spans: list[tuple[datetime, datetime]], best: list[int], within_totals: bool = False
) -> tuple[list[_Bounded], tuple[int, int]]:
    """The slice slots in `spans` whose sum of their values' peaks could beat `best`; with
    `within_totals`, each bound no higher than the slot's busiest minute of all requests
    (its quarter row). Also the largest single-value peak among them: a lower bound. On
    PostgreSQL in one statement, each span its own index range scan (a LATERAL aggregate)."""
    table, account_sql, params = _scoped(q, "slice")
    filters_sql, filter_params = _filters_sql(q, "slice")
    tokens = "sum(CAST(peak_minute_tokens AS DOUBLE PRECISION))"
    slots_sql = (
        f"SELECT start, sum(peak_minute_requests) AS up_requests, {tokens} AS up_tokens, "
        f"max(peak_minute_requests) AS low_requests, max(peak_minute_tokens) AS low_tokens FROM {table} "
        f"WHERE {account_sql} AND start >= {{lower}} AND start < {{upper}}{filters_sql} "
        f"GROUP BY start HAVING sum(peak_minute_requests) > %s OR {tokens} > %s"
    )
    columns, join, join_params = "slots.start, slots.up_requests, slots.up_tokens", "", []
    lows = ", slots.low_requests, slots.low_tokens"
    if within_totals:
        least = "LEAST" if _is_pg() else "MIN"  # SQLite's min() of two arguments is LEAST
        columns = (
            f"slots.start, {least}(slots.up_requests, coalesce(totals.peak_minute_requests, slots.up_requests)), "
            f"{least}(slots.up_tokens, coalesce(CAST(totals.peak_minute_tokens AS DOUBLE PRECISION), slots.up_tokens))"
        )
        totals, totals_sql, join_params = gate.rollup_sql(UsageQuarter, q.account, alias="totals")
        join = f" LEFT JOIN {totals} AS totals ON {totals_sql} AND totals.start = slots.start"
    if _is_pg():
        cursor.execute(
            f"SELECT {columns}{lows} FROM unnest(%s::bigint[], %s::bigint[]) AS spans(lower_us, upper_us) "
            "CROSS JOIN LATERAL ("
            + slots_sql.format(lower=_from_epoch_us_sql("spans.lower_us"), upper=_from_epoch_us_sql("spans.upper_us"))
            + f") AS slots{join}",
            [
                [_epoch_us(lower) for lower, _ in spans],
                [_epoch_us(upper) for _, upper in spans],
                *params,
                *filter_params,
                *best,
                *join_params,
            ],
        )
        rows = cursor.fetchall()
    else:
        rows = []
        for lower, upper in spans:
            cursor.execute(
                f"SELECT {columns}{lows} FROM (" + slots_sql.format(lower="%s", upper="%s") + f") AS slots{join}",
                [*params, adapt(lower), adapt(upper), *filter_params, *best, *join_params],
            )
            rows += cursor.fetchall()
    least = (max((row[3] for row in rows), default=0), max((row[4] for row in rows), default=0))
    return [(as_utc(start), up_requests, up_tokens) for start, up_requests, up_tokens, *_ in rows], least


def _ranges_by_month(spans: list[tuple[datetime, datetime]]) -> dict:
    """Time ranges per UTC month of their start (as UTC): each month's are planned against
    its own partition of the log."""
    by_month: dict[tuple[int, int], list[tuple[datetime, datetime]]] = {}
    for lower, upper in spans:
        lower = lower.astimezone(UTC)
        by_month.setdefault((lower.year, lower.month), []).append((lower, upper))
    return by_month


def _slot_ranges(slots: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted quarter slots as time ranges, adjacent ones in a month merged."""
    ranges: list[tuple[datetime, datetime]] = []
    for slot in slots:
        if ranges and ranges[-1][1] == slot and slot.month == ranges[-1][0].month:
            ranges[-1] = (ranges[-1][0], slot + QUARTER)
        else:
            ranges.append((slot, slot + QUARTER))
    return ranges


def _filter_attribute(column: str) -> str:
    return next(attribute for attribute, name in _FILTER_COLUMNS.items() if name == column)


def peak_minute(q: UsageQuery) -> tuple[int, int]:
    """Requests and tokens of the busiest minute in the range (each its own maximum)."""
    best = [0, 0]
    anywhere = replace(q, bucket=None)  # a minute lies in one hour: hours serve any zone
    with statement_timeout(parallel=False, work_mem=_WORK_MEM), connection.cursor() as cursor:
        for piece in _filtered_pieces(anywhere):
            if piece.source == "raw":
                requests, tokens = _raw_peak(cursor, q, [(piece.start, piece.end)])
            else:
                requests, tokens = _slices_peak(cursor, q, piece)
            best = [max(best[0], requests), max(best[1], tokens)]
    return best[0], best[1]


def heatmap(q: UsageQuery) -> list[list[int]]:
    """Requests by local weekday (Monday first) and hour of day in `q.zone`.

    Quarter rows are grouped by hour of the week with integer arithmetic on their epoch,
    once per stretch of constant UTC offset (a DST zone has two or three a year): converting
    35,000 quarters a year with AT TIME ZONE cost more than the rest of the query."""
    grid = [[0] * 24 for _ in range(7)]
    hourly = UsageQuery(
        account=q.account, start=q.start, end=q.end, zone=q.zone, bucket="hour",
        models=q.models, api_keys=q.api_keys, statuses=q.statuses, error_codes=q.error_codes,
    )  # fmt: skip
    with statement_timeout(parallel=False, work_mem=_WORK_MEM), connection.cursor() as cursor:
        for piece in _filtered_pieces(hourly):
            if piece.source == "raw":
                key_sql, key_params = _dow_hour_sql("timestamp", q.zone)
                table, account_sql, params = _scoped(q, "raw")
                filters_sql, filter_params = _filters_sql(q)
                cursor.execute(
                    f"SELECT {key_sql}, count(*) FROM {table} WHERE {account_sql} "
                    f"AND timestamp >= %s AND timestamp < %s{filters_sql} GROUP BY 1",
                    [*key_params, *params, adapt(piece.start), adapt(piece.end), *filter_params],
                )
                for key, count in cursor.fetchall():
                    weekday, hour = key.split("-")
                    grid[int(weekday) - 1][int(hour)] += int(count or 0)
                continue
            epoch = _epoch_sql("start")
            for lower, upper, offset in offset_stretches(piece.start, piece.end, q.zone):
                where, params = _slots_sql(hourly, piece, lower, upper)
                cursor.execute(
                    f"SELECT (({epoch} + %s) / 3600) %% 168, sum(requests) FROM {where} GROUP BY 1", [offset, *params]
                )
                for hour_of_week, count in cursor.fetchall():
                    # Hour 0 of the epoch's week is Thursday 00:00 (weekday 3).
                    grid[(3 + int(hour_of_week) // 24) % 7][int(hour_of_week) % 24] += int(count or 0)
    return grid


def offset_stretches(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut where `zone` changes its UTC offset: (from, to, offset in seconds).
    Changes are found day by day, then to the quarter hour (offsets change on the quarter)."""
    stretches = []
    lower = start
    offset = int(start.astimezone(zone).utcoffset().total_seconds())
    probe = start
    while probe < end:
        following = min(probe + timedelta(days=1), end)
        following_offset = int((following - timedelta(microseconds=1)).astimezone(zone).utcoffset().total_seconds())
        if following_offset != offset:
            low, high = probe, following  # the change lies in (low, high]
            while high - low > QUARTER:
                middle = _floor_quarter(low + (high - low) / 2)
                if middle <= low:
                    middle = low + QUARTER
                if int(middle.astimezone(zone).utcoffset().total_seconds()) == offset:
                    low = middle
                else:
                    high = middle
            change = high if int(low.astimezone(zone).utcoffset().total_seconds()) == offset else low
            stretches.append((lower, change, offset))
            lower, offset = change, int(change.astimezone(zone).utcoffset().total_seconds())
        probe = following
    stretches.append((lower, end, offset))
    return [(a, b, o) for a, b, o in stretches if a < b]


_MAX_SLOTS = 200
TOP_FIELDS = ("id", "request_id", "timestamp", "model", "api_key", "status", "total_tokens", "cost")


def _filter_lookups(q: UsageQuery) -> dict:
    """The query's filters as ORM lookups (the raw log and UsageDay share the column names)."""
    return {
        f"{column}__in": getattr(q, attribute) for attribute, column in _FILTER_COLUMNS.items() if getattr(q, attribute)
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
    branches = [_by_cost(rows.filter(_within("timestamp", month)), n) for month in _ranges_by_month(windows).values()]
    if connection.features.supports_slicing_ordering_in_compound and len(branches) > 1:
        # One round trip: each branch is still planned against its own month.
        found = list(branches[0].union(*branches[1:], all=True))
    else:
        found = [row for branch in branches for row in branch]
    found.sort(key=lambda row: (row["cost"], row["timestamp"]), reverse=True)
    return found[:n]
