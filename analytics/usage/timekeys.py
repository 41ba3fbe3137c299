"""Time keys in SQL (local dates, hours, weeks, months), bucket edges, quarter arithmetic and the zone of
an account's daily rows."""

import importlib.resources
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import connection

from analytics.models import (
    RollupState,
)
from analytics.rollups import (
    QUARTER,
    local_midnight,
    next_month,
)
from console.models import Account
from logs import gate


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


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _epoch_sql(column: str) -> str:
    if _is_pg():
        return f"date_part('epoch', {column})::bigint"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


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


def _ranges_by_month(spans: list[tuple[datetime, datetime]]) -> dict:
    """Time ranges per UTC month of their start (as UTC): each month's are planned against
    its own partition of the log."""
    by_month: dict[tuple[int, int], list[tuple[datetime, datetime]]] = {}
    for lower, upper in spans:
        lower = lower.astimezone(UTC)
        by_month.setdefault((lower.year, lower.month), []).append((lower, upper))
    return by_month


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
