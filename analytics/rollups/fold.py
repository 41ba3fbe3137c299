"""Rows into rollup rows in Python: one *minute group* per UTC minute and model / API key /
status / error code (with the measures of analytics.measures), folded into quarter, slice
and day rows. Ingest folds a batch's new rows; the SQLite rebuild folds raw rows."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from analytics import measures
from analytics.measures import MEASURES, empty_measures, merge
from analytics.models import Projection, SliceDimension
from analytics.timekeys import floor_quarter

# Plain ints: database adapters would send an Enum member by its name.
_FULL, _MODEL, _KEY, _TOTAL, _CODE = (
    int(p) for p in (Projection.FULL, Projection.MODEL, Projection.KEY, Projection.TOTAL, Projection.CODE)
)
_SLICE_MODEL, _SLICE_KEY, _SLICE_STATUS = (
    int(d) for d in (SliceDimension.MODEL, SliceDimension.API_KEY, SliceDimension.STATUS)
)
# UsageMinute's key for all of a minute's requests (no slice).
ALL = (0, "")


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


def fold(groups: Iterable[tuple], zone: ZoneInfo) -> Folded:
    """Minute groups `(minute, model, api_key, status, error_code, *MEASURES)` into rows."""
    folded = Folded()
    day_of: dict[datetime, date] = {}
    requests_at, tokens_at = MEASURES.index("requests"), MEASURES.index("total_tokens")
    for minute, model, api_key, status, error_code, *values in groups:
        quarter = floor_quarter(minute)
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
        minute = row["timestamp"].astimezone(UTC).replace(second=0, microsecond=0)
        yield (minute, row["model"], row["api_key"], row["status"], row["error_code"], *measures.of_row(row))


def peaks_by_quarter(minutes: dict[tuple, list[int]]) -> dict[tuple, list[int]]:
    peaks: dict[tuple, list[int]] = {}
    for (minute, dimension, value), (requests, tokens) in minutes.items():
        peak = peaks.setdefault((floor_quarter(minute), dimension, value), [0, 0])
        peak[0] = max(peak[0], requests)
        peak[1] = max(peak[1], tokens)
    return peaks
