"""Recomputing an account's rollups from its raw rows (`rebuild_rollups`): window by window
under the account's ingest lock, in SQL on PostgreSQL (rebuild_sql.py) and by the Python
fold on SQLite; then the hours, UTC days, slice days and months from what was written."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from analytics.measures import FOLD_SQL, MEASURES, PEAKS, PEAKS_FOLD_SQL
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
from analytics.rollups.fold import ALL, fold, peaks_by_quarter
from analytics.rollups.raw import raw_minute_groups
from analytics.rollups.rebuild_sql import rebuild_in_sql
from analytics.rollups.write import add_minutes, minute_horizon, write
from analytics.sql import adapt, is_pg, month_start_sql, utc_date_sql, utc_hour_sql
from analytics.timekeys import HOUR, local_midnight, next_month, utc_days
from console.models import Account
from logs import gate
from logs.locks import lock_account_ingest


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
        window_days = 31 if is_pg() else 7
    day = start
    while day <= end:
        last = min(day + timedelta(days=window_days - 1), end)
        lower, upper = local_midnight(day, zone), local_midnight(last + timedelta(days=1), zone)
        with transaction.atomic(), connection.cursor() as cursor:
            if is_pg():
                lock_account_ingest(cursor, account)
            classes = gate.retention_classes(account=account)
            UsageQuarter.objects.filter(account=account, start__gte=lower, start__lt=upper).delete()
            UsageSlice.objects.filter(account=account, start__gte=lower, start__lt=upper).delete()
            UsageDay.objects.filter(account=account, day__gte=day, day__lte=last).delete()
            UsageMinute.objects.filter(account=account, minute__gte=lower, minute__lt=upper).delete()
            if is_pg():
                rows, quarters, days = rebuild_in_sql(cursor, account, classes, zone, lower, upper)
            else:
                groups = list(raw_minute_groups(cursor, account, classes, lower, upper))
                folded = fold(groups, zone)
                write(cursor, account, folded, peaks_by_quarter(folded.minutes), derived=False)
                horizon = minute_horizon()
                add_minutes(cursor, account, {key: v for key, v in folded.minutes.items() if key[0] >= horizon})
                rows = sum(g[MEASURES.index("requests") + 5] for g in groups)
                quarters, days = len(folded.quarters), len(folded.days)
            hours_from_quarters(cursor, account, lower, upper)
            utc_days_from_hours(cursor, account, lower, upper)
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
        f"INSERT INTO {hours} (account_id, start, {', '.join((*MEASURES, *PEAKS))}) "
        f"SELECT account_id, {utc_hour_sql('start')}, {FOLD_SQL}, {PEAKS_FOLD_SQL} FROM {quarters} "
        f"WHERE {condition} GROUP BY 1, 2",
        params,
    )
    return cursor.rowcount


def utc_days_from_hours(cursor, account: Account, lower: datetime, upper: datetime) -> int:
    """Write the UTC-day rows of the UTC days touching [lower, upper) anew from their
    hours; returns how many."""
    table = UsageUtcDay._meta.db_table
    first, last = utc_days(lower, upper)
    following = last + timedelta(days=1)
    cursor.execute(
        f"DELETE FROM {table} WHERE account_id = %s AND day >= %s AND day < %s", [account.pk, first, following]
    )
    cursor.execute(
        f"INSERT INTO {table} (day, account_id, {', '.join(MEASURES)}) "
        f"SELECT {utc_date_sql('start')}, account_id, {FOLD_SQL} FROM {UsageHour._meta.db_table} "
        "WHERE account_id = %s AND start >= %s AND start < %s GROUP BY 1, 2",
        [account.pk, *(adapt(local_midnight(d, UTC)) for d in (first, following))],
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
    day = utc_date_sql("start")
    bounds = [adapt(local_midnight(d, UTC)) for d in (first, following)]
    rows = 0
    for source, dimension, value in ((UsageSlice, "dimension", "value"), (UsageQuarter, str(ALL[0]), f"'{ALL[1]}'")):
        cursor.execute(
            f"INSERT INTO {table} (account_id, dimension, value, day, {', '.join(PEAKS)}) "
            f"SELECT account_id, {dimension}, {value}, {day}, {PEAKS_FOLD_SQL} FROM {source._meta.db_table} "
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
    month = month_start_sql("day")
    cursor.execute(
        f"INSERT INTO {table} (account_id, projection, day, {', '.join(DIMENSIONS)}, {', '.join(MEASURES)}) "
        f"SELECT account_id, projection + {MONTHLY}, {month}, {', '.join(DIMENSIONS)}, {FOLD_SQL} FROM {table} "
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


def _switch_zone(account: Account, start: date) -> None:
    """After the account changed its reporting zone, drop the old zone's days from `start`
    on and write new days in the new zone from now on; the windows then refill them.
    Older days (raw rows purged) keep the old zone's boundaries."""
    with transaction.atomic(), connection.cursor() as cursor:
        if is_pg():
            lock_account_ingest(cursor, account)
        state, created = RollupState.objects.select_for_update().get_or_create(
            account=account, defaults={"day_timezone": account.timezone}
        )
        if not created and state.day_timezone != account.timezone:
            UsageDay.objects.filter(account=account, day__gte=start).delete()
            state.day_timezone = account.timezone
            state.save(update_fields=["day_timezone"])
