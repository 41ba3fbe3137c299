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

from analytics.timekeys import bucket_date, bucket_edges, hour_start, local_midnight, offset_stretches
from analytics.usage.hours import busiest_hours, heatmap
from analytics.usage.peaks import peak_minute
from analytics.usage.planner import plan
from analytics.usage.query import (
    BUCKETS,
    FILTER_COLUMNS,
    FILTER_PARAMETERS,
    GROUPS,
    Bucket,
    Totals,
    UsageError,
    UsageFilters,
    UsageQuery,
    sum_totals,
)
from analytics.usage.series import totals, usage
from analytics.usage.shifted import reads_shifted_days
from analytics.usage.top import top_requests

__all__ = [
    "BUCKETS",
    "FILTER_COLUMNS",
    "FILTER_PARAMETERS",
    "GROUPS",
    "Bucket",
    "Totals",
    "UsageError",
    "UsageFilters",
    "UsageQuery",
    "bucket_date",
    "bucket_edges",
    "busiest_hours",
    "heatmap",
    "hour_start",
    "local_midnight",
    "offset_stretches",
    "peak_minute",
    "plan",
    "reads_shifted_days",
    "sum_totals",
    "top_requests",
    "totals",
    "usage",
]
