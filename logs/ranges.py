"""The time-range presets ("last 7 days") of every page and API, and the time bounds they mean.

One table: each surface offers a subset of it (`subset`), in the table's order. A preset is
a window of `length` ending now, except on the analytics page, whose day presets run from
local midnight (analytics.reports.resolve_period reads `days`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone


@dataclass(frozen=True)
class RangePreset:
    key: str
    label: str  # "Last 7 days": the log list's, the operator view's and the analytics page's period title
    short_label: str  # "7 days": the analytics page's range picker
    length: timedelta

    @property
    def days(self) -> int:
        return self.length.days


PRESETS: dict[str, RangePreset] = {
    preset.key: preset
    for preset in (
        RangePreset("1h", "Last hour", "1 hour", timedelta(hours=1)),
        RangePreset("24h", "Last 24 hours", "24 hours", timedelta(hours=24)),
        RangePreset("7d", "Last 7 days", "7 days", timedelta(days=7)),
        RangePreset("30d", "Last 30 days", "30 days", timedelta(days=30)),
        RangePreset("90d", "Last 90 days", "90 days", timedelta(days=90)),
        RangePreset("1y", "Last year", "1 year", timedelta(days=365)),
    )
}


def subset(*keys: str) -> dict[str, RangePreset]:
    """The presets named, in the table's order (a typo fails at import)."""
    unknown = set(keys) - PRESETS.keys()
    if unknown:
        raise KeyError(f"no range preset {', '.join(sorted(unknown))}")
    return {key: preset for key, preset in PRESETS.items() if key in keys}


def choices(presets: dict[str, RangePreset]) -> list[tuple[str, str]]:
    return [(key, preset.label) for key, preset in presets.items()]


# The log list, the log and usage APIs and exports (logs.filters.RequestLogFilterSet).
LOG_RANGES = subset("1h", "24h", "7d", "30d")


def time_bounds(
    preset: str | None, start: datetime | None = None, end: datetime | None = None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """[start, end) of a filter: an explicit `start` wins over the preset (so "last 7 days"
    can be narrowed), else the preset's window back from `now`; `end` is kept as given.
    None is an open end. `preset` must be a key of PRESETS (callers validate it)."""
    if start is None and preset:
        start = (now or timezone.now()) - PRESETS[preset].length
    return start, end
