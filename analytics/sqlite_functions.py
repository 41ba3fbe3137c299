"""Time zone functions for SQLite, which has none: PostgreSQL's `AT TIME ZONE` for the
embedded default. Registered on every new SQLite connection."""

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def meterlog_local(value: str | None, zone: str, what: str) -> str | None:
    """`value` (Django's naive-UTC text) as a local date ('date'), the UTC start of its local
    hour ('hour') or ISO weekday-hour ('dow_hour', as PostgreSQL's to_char(..., 'ID-HH24'))
    in `zone`."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(_zone(zone))
    if what == "date":
        return moment.date().isoformat()
    if what == "hour":  # the UTC start of the local hour, as Django writes datetimes
        start = moment.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return start.replace(tzinfo=None).isoformat(sep=" ")
    return f"{moment.isoweekday()}-{moment.hour:02d}"


def register(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("meterlog_local", 3, meterlog_local, deterministic=True)
