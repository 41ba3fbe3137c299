"""Adding folded rows to the rollup tables (sums add up, maxima keep the largest), and
ingest's entry point `add_ingested`.

The busiest minute of a quarter needs every request of that minute, not only the batch's:
recent minutes are counted in UsageMinute, older ones again from the raw rows, under the
account's ingest lock."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection

from analytics.measures import ADDITIVE, MEASURES, PEAKS, empty_measures, merge
from analytics.models import (
    DIMENSIONS,
    MONTHLY,
    RollupState,
    UsageDay,
    UsageHour,
    UsageMinute,
    UsageQuarter,
    UsageSlice,
    UsageSliceDay,
    UsageUtcDay,
)
from analytics.rollups.fold import ALL, Folded, fold, groups_from_rows, peaks_by_quarter
from analytics.rollups.raw import raw_minute_totals
from analytics.sql import adapt, as_utc, is_pg
from console.models import Account


def _merge_sql(table: str, column: str) -> str:
    if column in ADDITIVE:
        return f"{column} = {table}.{column} + excluded.{column}"
    return (
        f"{column} = CASE WHEN excluded.{column} IS NULL THEN {table}.{column} "
        f"WHEN {table}.{column} IS NULL OR excluded.{column} > {table}.{column} THEN excluded.{column} "
        f"ELSE {table}.{column} END"
    )


_CHUNK = 400  # rows per INSERT: under SQLite's variable limit with 20 columns


def insert_sql(model, columns: tuple[str, ...], rows: list[tuple]) -> Iterator[tuple[str, list]]:
    """`INSERT INTO table (columns) <source>` statements and their params for `rows`.

    PostgreSQL gets one statement whose rows come from `unnest` of one array per column:
    its text never changes, where a VALUES list of thousands of placeholders was parsed
    anew by the driver for every batch (a third of ingest's rollup time at 10 M rows)."""
    table = model._meta.db_table
    head = f"INSERT INTO {table} ({', '.join(columns)}) "
    if is_pg():
        types = [model._meta.get_field(c).db_type(connection) for c in columns]
        arrays = [list(values) for values in zip(*rows, strict=True)]
        yield head + "SELECT * FROM unnest(" + ", ".join(f"%s::{t}[]" for t in types) + ")", arrays
        return
    group = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        params = [adapt(v) if isinstance(v, datetime) else v for row in chunk for v in row]
        yield head + f"VALUES {', '.join([group] * len(chunk))}", params


def upsert(
    cursor, model, keys: tuple[str, ...], extra: tuple[str, ...], rows: list[tuple], measures: tuple = MEASURES
) -> None:
    if not rows:
        return
    table = model._meta.db_table
    updates = ", ".join(_merge_sql(table, c) for c in (*measures, *extra))
    for sql, params in insert_sql(model, (*keys, *measures, *extra), rows):
        cursor.execute(f"{sql} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}", params)


def write(cursor, account: Account, folded: Folded, peaks: dict[tuple, list[int]], *, derived: bool = True) -> None:
    """Add folded rows; `peaks` holds the (requests, tokens) of the busiest minute per
    (quarter, slice dimension, value), ALL for the whole quarter. `derived=False` leaves the
    hour and month rows to the caller (a rebuild sums them from quarters and days after)."""
    quarter_rows = [
        (account.pk, start, *values, *peaks.get((start, *ALL), (0, 0)))
        for start, values in sorted(folded.quarters.items())
    ]
    upsert(cursor, UsageQuarter, ("account_id", "start"), PEAKS, quarter_rows)
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
        upsert(cursor, UsageHour, ("account_id", "start"), PEAKS, hour_rows)
        by_day: dict = {}  # and a UTC day its hours
        for start, values in by_hour.items():
            row = by_day.get(start.date())
            if row is None:
                by_day[start.date()] = list(values[: len(MEASURES)])
            else:
                merge(row, values[: len(MEASURES)])
        day_rows = [(start, account.pk, *values) for start, values in sorted(by_day.items())]
        upsert(cursor, UsageUtcDay, ("day", "account_id"), (), day_rows)
    slice_rows = [
        (account.pk, dimension, start, value, *values, *peaks.get((start, dimension, value), (0, 0)))
        for (start, dimension, value), values in sorted(folded.slices.items())
    ]
    upsert(cursor, UsageSlice, ("account_id", "dimension", "start", "value"), PEAKS, slice_rows)
    if derived:  # a value's UTC day keeps the busiest of its slots, ALL's of its quarters
        slice_days: dict[tuple, list[int]] = {}
        every_request = ((pk, ALL[0], start, ALL[1], *rest) for pk, start, *rest in quarter_rows)
        for _, dimension, start, value, *_, requests, tokens in (*slice_rows, *every_request):
            peak = slice_days.setdefault((dimension, value, start.date()), [0, 0])
            peak[0], peak[1] = max(peak[0], requests), max(peak[1], tokens)
        slice_day_rows = [(account.pk, *key, *peak) for key, peak in sorted(slice_days.items())]
        upsert(cursor, UsageSliceDay, ("account_id", "dimension", "value", "day"), PEAKS, slice_day_rows, ())
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
    upsert(cursor, UsageDay, ("account_id", "projection", "day", *DIMENSIONS), (), day_rows)


def ensure_day_zone(account: Account) -> ZoneInfo:
    """The zone of the account's daily rows (created with the reporting zone on first use)."""
    state, _ = RollupState.objects.get_or_create(account=account, defaults={"day_timezone": account.timezone})
    return ZoneInfo(state.day_timezone)


def add_ingested(cursor, account: Account, rows: list[dict], classes: list[int] | None) -> None:
    """Roll up a batch's new rows; call inside ingest's transaction, after the insert, under
    the account's lock (so no other batch of the account changes these minutes meanwhile)."""
    folded = fold(groups_from_rows(rows), ensure_day_zone(account))
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
    for sql, params in insert_sql(
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
