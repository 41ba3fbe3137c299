"""Time arithmetic shared by the rollup writes and the usage reads: slots, local midnights,
months, buckets, UTC-offset changes. Pure Python; the SQL twins are in analytics/sql.py."""

import importlib.resources
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)


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
    return lower.astimezone(UTC).date(), (upper - MICROSECOND).astimezone(UTC).date()


def floor_quarter(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def ceil_quarter(moment: datetime) -> datetime:
    floor = floor_quarter(moment)
    return floor if floor == moment else floor + QUARTER


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_start(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def bucket_date(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def next_date(day: date, bucket: str) -> date:
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
        following = next_date(day, bucket)
        edges.append((lower, local_midnight(following, zone)))
        day = following
    return edges


def as_date(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def ranges_by_month(spans: list[tuple[datetime, datetime]]) -> dict:
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
                middle = floor_quarter(low + (high - low) / 2)
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
