"""Maintaining the rollups: from ingest (the new rows of a batch) and from raw rows (rebuild).

Both paths go through the same steps, so a rebuild equals what ingest maintained:
rows become *minute groups* (one per UTC minute and model / API key / status / error code,
with the measures of analytics.models), `fold` turns minute groups into quarter and day
rows, and `_upsert` adds them to the tables (sums add up, maxima keep the largest).

The busiest minute of a quarter needs every request of that minute, not only the batch's:
ingest counts the affected minutes again from the raw rows after its insert (an index
range scan per minute, under the account's ingest lock), the rebuild has them all anyway.
"""

import decimal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from analytics.models import (
    ADDITIVE,
    DIMENSIONS,
    MAXIMA,
    MEASURES,
    MONTHLY,
    Projection,
    RollupState,
    SliceDimension,
    UsageDay,
    UsageHour,
    UsageMinute,
    UsageQuarter,
    UsageSlice,
    UsageSliceDay,
)
from console.models import Account
from logs import gate
from logs.locks import lock_account_ingest
from logs.models import Status

QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
_MICROSECOND = timedelta(microseconds=1)
# Plain ints: database adapters would send an Enum member by its name.
_FULL, _MODEL, _KEY, _TOTAL, _CODE = (
    int(p) for p in (Projection.FULL, Projection.MODEL, Projection.KEY, Projection.TOTAL, Projection.CODE)
)
_SLICE_MODEL, _SLICE_KEY, _SLICE_STATUS = (
    int(d) for d in (SliceDimension.MODEL, SliceDimension.API_KEY, SliceDimension.STATUS)
)
# UsageMinute's key for all of a minute's requests (no slice).
ALL = (0, "")
_ADDITIVE_AT = tuple(MEASURES.index(name) for name in ADDITIVE)
_MAXIMA_AT = tuple(MEASURES.index(name) for name in MAXIMA)
_SQLITE_FLOAT = decimal.Context(prec=15)


def to_decimal(value) -> Decimal:
    """A SUM of costs as Decimal: exact on PostgreSQL (numeric); SQLite stores decimals as
    doubles, read back with Django's own 15 significant digits."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return _SQLITE_FLOAT.create_decimal_from_float(value)
    return Decimal(value)


def next_month(day: date) -> date:
    """The first day of the month after `day`."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(day: date) -> date:
    """The first day of the month before `day`."""
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment `day` begins in `zone`."""
    return datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)


def utc_days(lower: datetime, upper: datetime) -> tuple[date, date]:
    """The first and last UTC day that [lower, upper) touches."""
    return lower.astimezone(UTC).date(), (upper - _MICROSECOND).astimezone(UTC).date()


def quarter_of(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


@dataclass
class Folded:
    """Rows to add to the rollup tables."""

    quarters: dict[datetime, list] = field(default_factory=dict)
    # (quarter, slice dimension, value) -> measures
    slices: dict[tuple, list] = field(default_factory=dict)
    days: dict[tuple, list] = field(default_factory=dict)
    # Requests and tokens per (UTC minute, slice dimension, value), with ALL for every
    # request of the minute: the busiest minute of each quarter and slice.
    minutes: dict[tuple, list[int]] = field(default_factory=dict)


def merge(into: list, values) -> None:
    for i in _ADDITIVE_AT:
        into[i] += values[i] or 0
    for i in _MAXIMA_AT:
        if values[i] is not None and (into[i] is None or values[i] > into[i]):
            into[i] = values[i]


def empty_measures() -> list:
    values = [0] * len(MEASURES)
    for i in _MAXIMA_AT:
        values[i] = None
    values[MEASURES.index("cost")] = Decimal(0)
    return values


def fold(groups: Iterable[tuple], zone: ZoneInfo) -> Folded:
    """Minute groups `(minute, model, api_key, status, error_code, *MEASURES)` into rows."""
    folded = Folded()
    day_of: dict[datetime, date] = {}
    requests_at, tokens_at = MEASURES.index("requests"), MEASURES.index("total_tokens")
    for minute, model, api_key, status, error_code, *values in groups:
        quarter = quarter_of(minute)
        row = folded.quarters.get(quarter)
        if row is None:
            row = folded.quarters[quarter] = empty_measures()
        merge(row, values)
        api_key, error_code = api_key or "", error_code or ""
        for dimension, value in (ALL, (_SLICE_MODEL, model), (_SLICE_KEY, api_key), (_SLICE_STATUS, status)):
            totals = folded.minutes.setdefault((minute, dimension, value), [0, 0])
            totals[0] += values[requests_at]
            totals[1] += values[tokens_at]
            if dimension:
                row = folded.slices.get((quarter, dimension, value))
                if row is None:
                    row = folded.slices[(quarter, dimension, value)] = empty_measures()
                merge(row, values)
        day = day_of.get(quarter)
        if day is None:
            # Offsets are whole quarters in every real zone: one local day per quarter.
            day = day_of[quarter] = quarter.astimezone(zone).date()
        for key in (
            (_FULL, day, model, api_key, status, error_code),
            (_MODEL, day, model, "", status, ""),
            (_KEY, day, "", api_key, status, ""),
            (_TOTAL, day, "", "", "", ""),
            (_CODE, day, "", "", status, error_code),
        ):
            row = folded.days.get(key)
            if row is None:
                row = folded.days[key] = empty_measures()
            merge(row, values)
    return folded


def groups_from_rows(rows: Iterable[dict]) -> Iterator[tuple]:
    """One minute group per raw row (ingest's new rows, as dicts of RequestLog fields)."""
    for row in rows:
        cost = row["cost"]
        latency = row["latency_ms"]
        is_error = row["status"] == Status.ERROR
        values = {
            "requests": 1,
            "errors": 1 if is_error else 0,
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "total_tokens": row["total_tokens"],
            "cached_tokens": row["cached_tokens"] or 0,
            "reasoning_tokens": row["reasoning_tokens"] or 0,
            "cost": cost if cost is not None else Decimal(0),
            "unpriced": 1 if cost is None else 0,
            "latency_count": 0 if latency is None else 1,
            "latency_sum": latency or 0,
            "latency_max": latency,
            "max_total_tokens": row["total_tokens"],
            "max_cost": cost,
        }
        minute = row["timestamp"].astimezone(UTC).replace(second=0, microsecond=0)
        yield (minute, row["model"], row["api_key"], row["status"], row["error_code"], *(values[m] for m in MEASURES))


# --- raw rows -> minute groups (rebuild) and minute counts (ingest) ----------------------


def minute_sql(column: str = "timestamp") -> str:
    """SQL for the UTC minute holding `column` (PostgreSQL and SQLite)."""
    if connection.vendor == "postgresql":
        return f"date_trunc('minute', {column})"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:00', {column})"


def as_utc(value) -> datetime:
    """A datetime or Django's naive-UTC SQLite text from a raw query, as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def adapt(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


_RAW_MEASURES_SQL = """
    count(*),
    sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
    sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
    coalesce(sum(cached_tokens), 0), coalesce(sum(reasoning_tokens), 0),
    coalesce(sum(cost), 0), sum(CASE WHEN cost IS NULL THEN 1 ELSE 0 END),
    count(latency_ms), coalesce(sum(latency_ms), 0), max(latency_ms),
    max(total_tokens), max(cost)
"""


def raw_minute_groups(cursor, account: Account, classes, start: datetime, end: datetime) -> Iterator[tuple]:
    table, where, params = gate.request_log_sql(account, classes=classes)
    minute = minute_sql()
    cursor.execute(
        f"SELECT {minute}, model, api_key, status, error_code, {_RAW_MEASURES_SQL} FROM {table} "
        f"WHERE {where} AND timestamp >= %s AND timestamp < %s GROUP BY 1, 2, 3, 4, 5",
        [*params, adapt(start), adapt(end)],
    )
    for minute_value, model, api_key, status, error_code, *values in cursor.fetchall():
        cost_at, max_cost_at = MEASURES.index("cost"), MEASURES.index("max_cost")
        values[cost_at] = to_decimal(values[cost_at])
        if values[max_cost_at] is not None:
            values[max_cost_at] = to_decimal(values[max_cost_at])
        yield (as_utc(minute_value), model, api_key, status, error_code, *values)


_CLUSTER_GAP = timedelta(hours=1)
_RANGES_PER_QUERY = 50


def raw_minute_totals(cursor, account: Account, classes, minutes: list[datetime]) -> dict[tuple, list[int]]:
    """Requests and tokens of every stored row of the account in each of `minutes`, per
    (minute, slice dimension, value) as in `Folded.minutes`.

    The minutes are merged into time ranges (a gap over an hour starts a new one) read with
    one GROUP BY per up to 50 ranges: the ranges are constants, so PostgreSQL prunes the
    partitions while planning. (A LATERAL probe per minute could not: 1 s per batch of
    1,000 records spread over an hour, at 10 M rows.)"""
    if not minutes:
        return {}
    wanted = set(minutes)
    ranges: list[list[datetime]] = []
    for minute in sorted(wanted):
        if ranges and minute - ranges[-1][1] <= _CLUSTER_GAP:
            ranges[-1][1] = minute
        else:
            ranges.append([minute, minute])
    table, where, params = gate.request_log_sql(account, classes=classes)
    minute_expr = minute_sql()
    totals: dict[tuple, list[int]] = {}
    for start in range(0, len(ranges), _RANGES_PER_QUERY):
        chunk = ranges[start : start + _RANGES_PER_QUERY]
        spans = " OR ".join(["(timestamp >= %s AND timestamp < %s)"] * len(chunk))
        bounds = [adapt(v) for first, last in chunk for v in (first, last + timedelta(minutes=1))]
        cursor.execute(
            f"SELECT {minute_expr}, model, api_key, status, count(*), coalesce(sum(total_tokens), 0) FROM {table} "
            f"WHERE {where} AND ({spans}) GROUP BY 1, 2, 3, 4",
            [*params, *bounds],
        )
        for minute_value, model, api_key, status, n, tokens in cursor.fetchall():
            minute = as_utc(minute_value)
            if minute not in wanted:
                continue
            slices = (ALL, (_SLICE_MODEL, model), (_SLICE_KEY, api_key or ""), (_SLICE_STATUS, status))
            for dimension, value in slices:
                total = totals.setdefault((minute, dimension, value), [0, 0])
                total[0] += int(n)
                total[1] += int(tokens)
    return totals


# --- writing ------------------------------------------------------------------------------


def _merge_sql(table: str, column: str) -> str:
    if column in ADDITIVE:
        return f"{column} = {table}.{column} + excluded.{column}"
    return (
        f"{column} = CASE WHEN excluded.{column} IS NULL THEN {table}.{column} "
        f"WHEN {table}.{column} IS NULL OR excluded.{column} > {table}.{column} THEN excluded.{column} "
        f"ELSE {table}.{column} END"
    )


_CHUNK = 400  # rows per INSERT: under SQLite's variable limit with 20 columns


def _insert_sql(model, columns: tuple[str, ...], rows: list[tuple]) -> Iterator[tuple[str, list]]:
    """`INSERT INTO table (columns) <source>` statements and their params for `rows`.

    PostgreSQL gets one statement whose rows come from `unnest` of one array per column:
    its text never changes, where a VALUES list of thousands of placeholders was parsed
    anew by the driver for every batch (a third of ingest's rollup time at 10 M rows)."""
    table = model._meta.db_table
    head = f"INSERT INTO {table} ({', '.join(columns)}) "
    if connection.vendor == "postgresql":
        types = [model._meta.get_field(c).db_type(connection) for c in columns]
        arrays = [list(values) for values in zip(*rows, strict=True)]
        yield head + "SELECT * FROM unnest(" + ", ".join(f"%s::{t}[]" for t in types) + ")", arrays
        return
    group = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        params = [adapt(v) if isinstance(v, datetime) else v for row in chunk for v in row]
        yield head + f"VALUES {', '.join([group] * len(chunk))}", params


def _upsert(
    cursor, model, keys: tuple[str, ...], extra: tuple[str, ...], rows: list[tuple], measures: tuple = MEASURES
) -> None:
    if not rows:
        return
    table = model._meta.db_table
    updates = ", ".join(_merge_sql(table, c) for c in (*measures, *extra))
    for sql, params in _insert_sql(model, (*keys, *measures, *extra), rows):
        cursor.execute(f"{sql} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}", params)


_PEAKS = ("peak_minute_requests", "peak_minute_tokens")


def write(cursor, account: Account, folded: Folded, peaks: dict[tuple, list[int]], *, derived: bool = True) -> None:
    """Add folded rows; `peaks` holds the (requests, tokens) of the busiest minute per
    (quarter, slice dimension, value), ALL for the whole quarter. `derived=False` leaves the
    hour and month rows to the caller (a rebuild sums them from quarters and days after)."""
    quarter_rows = [
        (account.pk, start, *values, *peaks.get((start, *ALL), (0, 0)))
        for start, values in sorted(folded.quarters.items())
    ]
    _upsert(cursor, UsageQuarter, ("account_id", "start"), _PEAKS, quarter_rows)
    if derived:
        # An hour adds its quarters; its busiest minute is the busiest of its quarters'
        # (each quarter's peak above is its total after this batch; the merge keeps the max).
        by_hour: dict[datetime, list] = {}
        for start, values in folded.quarters.items():
            hour = start.replace(minute=0)
            row = by_hour.get(hour)
            if row is None:
                row = by_hour[hour] = [*empty_measures(), 0, 0]
            merge(row, values)
            peak = peaks.get((start, *ALL), (0, 0))
            row[-2], row[-1] = max(row[-2], peak[0]), max(row[-1], peak[1])
        hour_rows = [(account.pk, start, *values) for start, values in sorted(by_hour.items())]
        _upsert(cursor, UsageHour, ("account_id", "start"), _PEAKS, hour_rows)
    slice_rows = [
        (account.pk, dimension, start, value, *values, *peaks.get((start, dimension, value), (0, 0)))
        for (start, dimension, value), values in sorted(folded.slices.items())
    ]
    _upsert(cursor, UsageSlice, ("account_id", "dimension", "start", "value"), _PEAKS, slice_rows)
    if derived:  # a value's UTC day keeps the busiest of its slots, ALL's of its quarters
        slice_days: dict[tuple, list[int]] = {}
        every_request = ((pk, ALL[0], start, ALL[1], *rest) for pk, start, *rest in quarter_rows)
        for _, dimension, start, value, *_, requests, tokens in (*slice_rows, *every_request):
            peak = slice_days.setdefault((dimension, value, start.date()), [0, 0])
            peak[0], peak[1] = max(peak[0], requests), max(peak[1], tokens)
        slice_day_rows = [(account.pk, *key, *peak) for key, peak in sorted(slice_days.items())]
        _upsert(cursor, UsageSliceDay, ("account_id", "dimension", "value", "day"), _PEAKS, slice_day_rows, ())
    days = folded.days
    if derived:  # the months add up their days
        days = dict(days)
        for (projection, day, *dimensions), values in folded.days.items():
            key = (projection + MONTHLY, day.replace(day=1), *dimensions)
            row = days.get(key)
            if row is None:
                days[key] = list(values)
            else:
                merge(row, values)
    day_rows = [(account.pk, *key, *values) for key, values in sorted(days.items())]
    _upsert(cursor, UsageDay, ("account_id", "projection", "day", *DIMENSIONS), (), day_rows)


def peaks_by_quarter(minutes: dict[tuple, list[int]]) -> dict[tuple, list[int]]:
    peaks: dict[tuple, list[int]] = {}
    for (minute, dimension, value), (requests, tokens) in minutes.items():
        peak = peaks.setdefault((quarter_of(minute), dimension, value), [0, 0])
        peak[0] = max(peak[0], requests)
        peak[1] = max(peak[1], tokens)
    return peaks


def day_zone(account: Account) -> ZoneInfo:
    """The zone of the account's daily rows (created with the reporting zone on first use)."""
    state, _ = RollupState.objects.get_or_create(account=account, defaults={"day_timezone": account.timezone})
    return ZoneInfo(state.day_timezone)


def add_ingested(cursor, account: Account, rows: list[dict], classes: list[int] | None) -> None:
    """Roll up a batch's new rows; call inside ingest's transaction, after the insert, under
    the account's lock (so no other batch of the account changes these minutes meanwhile)."""
    folded = fold(groups_from_rows(rows), day_zone(account))
    horizon = minute_horizon()
    recent = {key: v for key, v in folded.minutes.items() if key[0] >= horizon}
    totals = add_minutes(cursor, account, recent)
    late = sorted({key[0] for key in folded.minutes if key[0] < horizon})
    totals.update(raw_minute_totals(cursor, account, classes, late))
    write(cursor, account, folded, peaks_by_quarter(totals))


def minute_horizon() -> datetime:
    """The oldest minute UsageMinute keeps (see its docstring)."""
    from django.conf import settings

    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=settings.METERLOG_MINUTE_ROLLUP_HOURS)


def add_minutes(cursor, account: Account, minutes: dict[tuple, list[int]]) -> dict[tuple, list[int]]:
    """Add (requests, tokens) per (minute, slice dimension, value) to UsageMinute; returns
    their new totals."""
    if not minutes:
        return {}
    table = UsageMinute._meta.db_table
    rows = [
        (account.pk, minute, dimension, value, n, tokens)
        for (minute, dimension, value), (n, tokens) in sorted(minutes.items())
    ]
    totals: dict[tuple, list[int]] = {}
    for sql, params in _insert_sql(
        UsageMinute, ("account_id", "minute", "dimension", "value", "requests", "total_tokens"), rows
    ):
        cursor.execute(
            f"{sql} ON CONFLICT (account_id, minute, dimension, value) DO UPDATE SET "
            f"requests = {table}.requests + excluded.requests, "
            f"total_tokens = {table}.total_tokens + excluded.total_tokens "
            "RETURNING minute, dimension, value, requests, total_tokens",
            params,
        )
        for minute_value, dimension, value, n, tokens in cursor.fetchall():
            totals[(as_utc(minute_value), int(dimension), value)] = [int(n), int(tokens)]
    return totals


def purge_minutes() -> int:
    """Delete UsageMinute rows older than the horizon; returns how many."""
    deleted, _ = UsageMinute.objects.filter(minute__lt=minute_horizon()).delete()
    return deleted


# --- rebuild -------------------------------------------------------------------------------


@dataclass
class RebuildResult:
    start: date
    end: date
    rows: int = 0
    quarters: int = 0
    days: int = 0
    skipped_before: date | None = None


def rebuild(
    account: Account,
    start: date,
    end: date,
    *,
    window_days: int | None = None,
    past_retention: bool = False,
    progress=None,
) -> RebuildResult:
    """Recompute the rollups of local days `start`..`end` (inclusive, account's reporting
    zone) from the raw rows, one window of days per transaction (holding the account's
    ingest lock): 31 days in SQL on PostgreSQL (about 3 s for the largest bench account),
    7 in Python.

    Days older than the retention horizon are left alone: their raw rows may be purged
    and the rollups are then the only record of them; `past_retention` rebuilds them too
    (for data loaded behind ingest's back, before any purge ran)."""
    zone = ZoneInfo(account.timezone)
    horizon = (datetime.now(UTC) - timedelta(days=account.retention_days)).astimezone(zone).date() + timedelta(days=1)
    result = RebuildResult(start=start, end=end)
    if start < horizon and not past_retention:
        result.skipped_before = horizon
        start = horizon
    if start <= end:
        _switch_zone(account, start)
    if window_days is None:
        window_days = 31 if connection.vendor == "postgresql" else 7
    day = start
    while day <= end:
        last = min(day + timedelta(days=window_days - 1), end)
        lower, upper = local_midnight(day, zone), local_midnight(last + timedelta(days=1), zone)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                lock_account_ingest(cursor, account)
            classes = gate.retention_classes(account=account)
            UsageQuarter.objects.filter(account=account, start__gte=lower, start__lt=upper).delete()
            UsageSlice.objects.filter(account=account, start__gte=lower, start__lt=upper).delete()
            UsageDay.objects.filter(account=account, day__gte=day, day__lte=last).delete()
            UsageMinute.objects.filter(account=account, minute__gte=lower, minute__lt=upper).delete()
            if connection.vendor == "postgresql":
                rows, quarters, days = _rebuild_in_sql(cursor, account, classes, zone, lower, upper)
            else:
                groups = list(raw_minute_groups(cursor, account, classes, lower, upper))
                folded = fold(groups, zone)
                write(cursor, account, folded, peaks_by_quarter(folded.minutes), derived=False)
                horizon = minute_horizon()
                add_minutes(cursor, account, {key: v for key, v in folded.minutes.items() if key[0] >= horizon})
                rows = sum(g[MEASURES.index("requests") + 5] for g in groups)
                quarters, days = len(folded.quarters), len(folded.days)
            hours_from_quarters(cursor, account, lower, upper)
            slice_days_from_slices(cursor, account, lower, upper)
            months_from_days(cursor, account, day, last)
            result.rows += rows
            result.quarters += quarters
            result.days += days
        if progress:
            progress(last, result)
        day = last + timedelta(days=1)
    if start <= end:
        _slices_complete_from(account, local_midnight(start, zone), local_midnight(end + timedelta(days=1), zone))
    return result


def _hour_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"date_trunc('hour', {column})"
    return f"strftime('%%Y-%%m-%%d %%H:00:00', {column})"


def hours_from_quarters(cursor, account: Account | None, lower: datetime | None, upper: datetime | None) -> int:
    """Write the hour rows of the hours touching [lower, upper) anew from their quarters
    (all of an account's hours, or every account's, without bounds); returns how many."""
    hours, quarters = UsageHour._meta.db_table, UsageQuarter._meta.db_table
    where, params = ["1 = 1"], []
    if account is not None:
        where.append("account_id = %s")
        params.append(account.pk)
    if lower is not None:
        where.append("start >= %s")
        params.append(adapt(lower.replace(minute=0, second=0, microsecond=0)))
    if upper is not None:
        ceiling = upper.replace(minute=0, second=0, microsecond=0)
        where.append("start < %s")
        params.append(adapt(ceiling if ceiling == upper else ceiling + HOUR))
    condition = " AND ".join(where)
    cursor.execute(f"DELETE FROM {hours} WHERE {condition}", params)
    cursor.execute(
        f"INSERT INTO {hours} (account_id, start, {', '.join((*MEASURES, *_PEAKS))}) "
        f"SELECT account_id, {_hour_sql('start')}, {_FOLD_SQL}, {_PEAKS_FOLD_SQL} FROM {quarters} "
        f"WHERE {condition} GROUP BY 1, 2",
        params,
    )
    return cursor.rowcount


def slice_days_from_slices(cursor, account: Account, lower: datetime, upper: datetime) -> int:
    """Write the slice-day rows of the UTC days touching [lower, upper) anew from their
    slices (and quarters, for ALL); returns how many."""
    table = UsageSliceDay._meta.db_table
    first, last = utc_days(lower, upper)
    following = last + timedelta(days=1)
    cursor.execute(
        f"DELETE FROM {table} WHERE account_id = %s AND day >= %s AND day < %s", [account.pk, first, following]
    )
    day = "(start AT TIME ZONE 'UTC')::date" if connection.vendor == "postgresql" else "date(start)"
    bounds = [adapt(local_midnight(d, UTC)) for d in (first, following)]
    rows = 0
    for source, dimension, value in ((UsageSlice, "dimension", "value"), (UsageQuarter, str(ALL[0]), f"'{ALL[1]}'")):
        cursor.execute(
            f"INSERT INTO {table} (account_id, dimension, value, day, {', '.join(_PEAKS)}) "
            f"SELECT account_id, {dimension}, {value}, {day}, {_PEAKS_FOLD_SQL} FROM {source._meta.db_table} "
            "WHERE account_id = %s AND start >= %s AND start < %s GROUP BY 1, 2, 3, 4",
            [account.pk, *bounds],
        )
        rows += cursor.rowcount
    return rows


def months_from_days(cursor, account: Account | None, first: date | None = None, last: date | None = None) -> int:
    """Write the month rows of the months touching local days first..last anew from their
    daily rows (every month without bounds); returns how many."""
    table = UsageDay._meta.db_table
    where, params = [f"projection < {MONTHLY}"], []
    if account is not None:
        where.append("account_id = %s")
        params.append(account.pk)
    if first is not None:
        where.append("day >= %s")
        params.append(first.replace(day=1))
    if last is not None:
        where.append("day < %s")
        params.append(next_month(last))
    daily = " AND ".join(where)
    monthly = daily.replace(f"projection < {MONTHLY}", f"projection >= {MONTHLY}")
    cursor.execute(f"DELETE FROM {table} WHERE {monthly}", params)
    month = "date_trunc('month', day)::date" if connection.vendor == "postgresql" else "date(day, 'start of month')"
    cursor.execute(
        f"INSERT INTO {table} (account_id, projection, day, {', '.join(DIMENSIONS)}, {', '.join(MEASURES)}) "
        f"SELECT account_id, projection + {MONTHLY}, {month}, {', '.join(DIMENSIONS)}, {_FOLD_SQL} FROM {table} "
        f"WHERE {daily} GROUP BY account_id, projection, {month}, {', '.join(DIMENSIONS)}",
        params,
    )
    return cursor.rowcount


def _slices_complete_from(account: Account, lower: datetime, upper: datetime) -> None:
    """The rebuild filled the slices of [lower, upper): if that reaches the time they were
    complete from, they are now complete from `lower`."""
    for since in ("slices_since", "key_slices_since"):
        RollupState.objects.filter(account=account, **{f"{since}__gte": lower, f"{since}__lte": upper}).update(
            **{since: lower}
        )


# --- rebuild in SQL (PostgreSQL) ---------------------------------------------------------------
# The same minute groups and folding as `fold`, done by the database: a Python fold of
# 10 M rows took 33 minutes. tests/analytics/test_rollups.py checks both paths give the
# rows ingest keeps.

_MINUTES_TABLE = "meterlog_rebuild_minutes"
_MINUTE_GROUPS_SQL = f"""
CREATE TEMP TABLE {_MINUTES_TABLE} ON COMMIT DROP AS
SELECT date_trunc('minute', timestamp) AS minute, model, coalesce(api_key, '') AS api_key, status,
       coalesce(error_code, '') AS error_code,
       count(*) AS requests, count(*) FILTER (WHERE status = 'error') AS errors,
       sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
       sum(total_tokens) AS total_tokens, coalesce(sum(cached_tokens), 0) AS cached_tokens,
       coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens, coalesce(sum(cost), 0) AS cost,
       count(*) FILTER (WHERE cost IS NULL) AS unpriced, count(latency_ms) AS latency_count,
       coalesce(sum(latency_ms), 0) AS latency_sum, max(latency_ms) AS latency_max,
       max(total_tokens) AS max_total_tokens, max(cost) AS max_cost
FROM {{table}}
WHERE {{where}} AND timestamp >= %s AND timestamp < %s
GROUP BY 1, 2, 3, 4, 5
"""
_FOLD_SQL = ", ".join(f"{'sum' if name in ADDITIVE else 'max'}({name}) AS {name}" for name in MEASURES)
_PEAKS_FOLD_SQL = ", ".join(f"max({name}) AS {name}" for name in _PEAKS)
_MEASURE_LIST = ", ".join(MEASURES)
_QUARTER_SQL = "date_bin('15 minutes', minute, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
_SLICES_OF_MINUTES = (
    f"{_MINUTES_TABLE} m CROSS JOIN LATERAL "
    f"(VALUES ({_SLICE_MODEL}, m.model), ({_SLICE_KEY}, m.api_key), ({_SLICE_STATUS}, m.status)) AS s(dimension, value)"
)
_QUARTERS_INSERT_SQL = f"""
WITH peaks AS (
    SELECT {_QUARTER_SQL} AS start, max(n) AS n, max(t) AS t
    FROM (SELECT minute, sum(requests) AS n, sum(total_tokens) AS t FROM {_MINUTES_TABLE} GROUP BY minute) per_minute
    GROUP BY 1
)
INSERT INTO {UsageQuarter._meta.db_table} (account_id, start, {_MEASURE_LIST}, peak_minute_requests, peak_minute_tokens)
SELECT %s, g.start, {", ".join(f"g.{name}" for name in MEASURES)}, peaks.n, peaks.t
FROM (SELECT {_QUARTER_SQL} AS start, {_FOLD_SQL} FROM {_MINUTES_TABLE} GROUP BY 1) g JOIN peaks USING (start)
"""
_SLICES_INSERT_SQL = f"""
WITH peaks AS (
    SELECT {_QUARTER_SQL} AS start, dimension, value, max(n) AS n, max(t) AS t
    FROM (
        SELECT minute, dimension, value, sum(requests) AS n, sum(total_tokens) AS t
        FROM {_SLICES_OF_MINUTES} GROUP BY 1, 2, 3
    ) per_minute
    GROUP BY 1, 2, 3
)
INSERT INTO {UsageSlice._meta.db_table}
    (account_id, dimension, value, start, {_MEASURE_LIST}, peak_minute_requests, peak_minute_tokens)
SELECT %s, g.dimension, g.value, g.start, {", ".join(f"g.{name}" for name in MEASURES)}, peaks.n, peaks.t
FROM (SELECT {_QUARTER_SQL} AS start, dimension, value, {_FOLD_SQL} FROM {_SLICES_OF_MINUTES} GROUP BY 1, 2, 3) g
JOIN peaks USING (start, dimension, value)
ORDER BY g.dimension, g.value, g.start
"""
# GROUPING(model, api_key, status, error_code) has a bit set for each column a grouping
# set leaves out (model = 8 ... error_code = 1): one grouping set per projection.
_DAYS_INSERT_SQL = f"""
INSERT INTO {UsageDay._meta.db_table} (account_id, projection, day, model, api_key, status, error_code, {_MEASURE_LIST})
SELECT %s,
       CASE GROUPING(model, api_key, status, error_code)
           WHEN 0 THEN {_FULL} WHEN 5 THEN {_MODEL} WHEN 9 THEN {_KEY} WHEN 15 THEN {_TOTAL} WHEN 12 THEN {_CODE} END,
       day, coalesce(model, ''), coalesce(api_key, ''), coalesce(status, ''), coalesce(error_code, ''), {_FOLD_SQL}
FROM (SELECT (minute AT TIME ZONE %s)::date AS day, * FROM {_MINUTES_TABLE}) m
GROUP BY day, GROUPING SETS ((model, api_key, status, error_code), (model, status), (api_key, status), (),
                             (status, error_code))
ORDER BY 2, 4, 5, 6, 7, 3
"""
_RECENT_MINUTES_INSERT_SQL = f"""
INSERT INTO {UsageMinute._meta.db_table} (account_id, minute, dimension, value, requests, total_tokens)
SELECT %s, minute, dimension, value, sum(requests), sum(total_tokens)
FROM {_MINUTES_TABLE} m CROSS JOIN LATERAL
     (VALUES (0, ''), ({_SLICE_MODEL}, m.model), ({_SLICE_KEY}, m.api_key), ({_SLICE_STATUS}, m.status))
     AS s(dimension, value)
WHERE minute >= %s
GROUP BY 2, 3, 4
"""


def _rebuild_in_sql(cursor, account, classes, zone: ZoneInfo, lower: datetime, upper: datetime) -> tuple[int, int, int]:
    """Rows read, quarter rows and day rows written for [lower, upper)."""
    table, where, params = gate.request_log_sql(account, classes=classes)
    cursor.execute(_MINUTE_GROUPS_SQL.format(table=table, where=where), [*params, lower, upper])
    cursor.execute(f"SELECT coalesce(sum(requests), 0) FROM {_MINUTES_TABLE}")
    (rows,) = cursor.fetchone()
    cursor.execute(_QUARTERS_INSERT_SQL, [account.pk])
    quarters = cursor.rowcount
    cursor.execute(_SLICES_INSERT_SQL, [account.pk])
    cursor.execute(_DAYS_INSERT_SQL, [account.pk, zone.key])
    days = cursor.rowcount
    cursor.execute(_RECENT_MINUTES_INSERT_SQL, [account.pk, minute_horizon()])
    cursor.execute(f"DROP TABLE {_MINUTES_TABLE}")
    return int(rows), quarters, days


# --- physical order (PostgreSQL) ------------------------------------------------------------
# Ingest writes a slot's slices (and a day's rows) side by side, so a year of one value lies
# about one row per heap page: 35,000 pages for one model over a year in another zone's
# days (about 170 ms). A finished month rewritten in value order puts each value's month on
# a few neighbouring pages.

_VALUE_ORDER = {
    UsageSlice: ("start", "dimension, value, start"),
    UsageDay: ("day", "projection, model, api_key, status, error_code, day"),
}
_COMPACT_TABLE = "meterlog_compact_rows"


def compact_month(account: Account, first: date) -> int:
    """Rewrite the account's slices and daily / month rows of the local month starting at
    `first` (slices: its UTC slots) in value order, under the ingest lock; returns the rows
    moved. Only PostgreSQL (SQLite has no heap pages to speak of) does anything."""
    if connection.vendor != "postgresql":
        return 0
    following = next_month(first)
    zone = account.zone
    bounds = {
        "start": (local_midnight(first, zone), local_midnight(following, zone)),
        "day": (first, following),
    }
    moved = 0
    with transaction.atomic(), connection.cursor() as cursor:
        lock_account_ingest(cursor, account)
        for model, (column, order) in _VALUE_ORDER.items():
            table = model._meta.db_table
            cursor.execute(
                f"CREATE TEMP TABLE {_COMPACT_TABLE} ON COMMIT DROP AS WITH moved AS ("
                f"DELETE FROM {table} WHERE account_id = %s AND {column} >= %s AND {column} < %s RETURNING *) "
                "SELECT * FROM moved",
                [account.pk, *bounds[column]],
            )
            cursor.execute(f"INSERT INTO {table} SELECT * FROM {_COMPACT_TABLE} ORDER BY {order}")
            moved += cursor.rowcount
            cursor.execute(f"DROP TABLE {_COMPACT_TABLE}")
    return moved


def analyze() -> None:
    """Refresh the planner's statistics of the rollup tables after a large rebuild (before
    it, PostgreSQL guessed 2 rows where a year had 67,000 and sorted them on disk), and
    their visibility maps: the slices' index-only scans read the heap for pages not yet
    marked all-visible. Outside a transaction (VACUUM cannot run in one)."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            tables = (UsageQuarter, UsageHour, UsageSlice, UsageSliceDay, UsageDay, UsageMinute)
            cursor.execute(f"VACUUM (ANALYZE) {', '.join(model._meta.db_table for model in tables)}")


def _switch_zone(account: Account, start: date) -> None:
    """After the account changed its reporting zone, drop the old zone's days from `start`
    on and write new days in the new zone from now on; the windows then refill them.
    Older days (raw rows purged) keep the old zone's boundaries."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            lock_account_ingest(cursor, account)
        state, created = RollupState.objects.select_for_update().get_or_create(
            account=account, defaults={"day_timezone": account.timezone}
        )
        if not created and state.day_timezone != account.timezone:
            UsageDay.objects.filter(account=account, day__gte=start).delete()
            state.day_timezone = account.timezone
            state.save(update_fields=["day_timezone"])
