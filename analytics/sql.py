"""The SQL that differs between PostgreSQL and SQLite, for the rollup writes and the usage
reads: time keys (minutes, hours, local dates, weeks, months, epochs) and the values passed
and read back. SQLite's local times come from the `meterlog_local` function the console
registers on each connection (analytics/sqlite_functions.py)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.db import connection


def is_pg() -> bool:
    return connection.vendor == "postgresql"


def adapt(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def as_utc(value) -> datetime:
    """A datetime or Django's naive-UTC SQLite text from a raw query, as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def minute_sql(column: str = "timestamp") -> str:
    """SQL for the UTC minute holding `column` (PostgreSQL and SQLite)."""
    if is_pg():
        return f"date_trunc('minute', {column})"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:00', {column})"


def utc_hour_sql(column: str) -> str:
    """SQL for the UTC hour holding `column`."""
    if is_pg():
        return f"date_trunc('hour', {column})"
    return f"strftime('%%Y-%%m-%%d %%H:00:00', {column})"


def local_date_sql(column: str, zone: ZoneInfo) -> tuple[str, list]:
    if is_pg():
        return f"({column} AT TIME ZONE %s)::date", [zone.key]
    return f"meterlog_local({column}, %s, 'date')", [zone.key]


def dow_hour_sql(column: str, zone: ZoneInfo) -> tuple[str, list]:
    if is_pg():
        return f"to_char({column} AT TIME ZONE %s, 'ID-HH24')", [zone.key]
    return f"meterlog_local({column}, %s, 'dow_hour')", [zone.key]


def local_hour_sql(column: str, zone: ZoneInfo) -> tuple[str, list]:
    """The UTC start of the local hour holding `column` (as a UTC timestamp without zone).

    The local hour minus the offset in force: after a DST change the repeated local hour
    is two buckets (two offsets), not one of two hours."""
    if is_pg():
        local = f"({column} AT TIME ZONE %s)"
        return f"date_trunc('hour', {local}) - ({local} - ({column} AT TIME ZONE 'UTC'))", [zone.key, zone.key]
    return f"meterlog_local({column}, %s, 'hour')", [zone.key]


def epoch_sql(column: str) -> str:
    if is_pg():
        return f"date_part('epoch', {column})::bigint"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def week_month_sql(date_sql: str, bucket: str) -> str:
    """A local date truncated to its week (Monday) or month in SQL, so a year by week reads
    53 rows per group, not 365."""
    if bucket not in ("week", "month"):
        return date_sql
    if is_pg():
        return f"date_trunc('{bucket}', {date_sql})::date"
    if bucket == "week":  # SQLite: 'weekday 0' moves to the next Sunday (or stays on one)
        return f"date({date_sql}, 'weekday 0', '-6 days')"
    return f"date({date_sql}, 'start of month')"


def utc_date_sql(column: str) -> str:
    """SQL for the UTC date of `column`."""
    return f"({column} AT TIME ZONE 'UTC')::date" if is_pg() else f"date({column})"


def month_start_sql(column: str) -> str:
    """SQL for the first day of the month of the date `column`."""
    return f"date_trunc('month', {column})::date" if is_pg() else f"date({column}, 'start of month')"
