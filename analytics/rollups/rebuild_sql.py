"""The rebuild of one window in SQL (PostgreSQL): the same minute groups and folding as
fold.py, done by the database (a Python fold of 10 M rows took 33 minutes).
tests/analytics/test_rollups.py checks both paths give the rows ingest keeps."""

from datetime import datetime
from zoneinfo import ZoneInfo

from analytics.measures import FOLD_SQL, MEASURES, RAW_SQL_NAMED
from analytics.models import UsageDay, UsageMinute, UsageQuarter, UsageSlice
from analytics.rollups.fold import _CODE, _FULL, _KEY, _MODEL, _SLICE_KEY, _SLICE_MODEL, _SLICE_STATUS, _TOTAL
from analytics.rollups.write import minute_horizon
from logs import gate

_MINUTES_TABLE = "meterlog_rebuild_minutes"
_MINUTE_GROUPS_SQL = f"""
CREATE TEMP TABLE {_MINUTES_TABLE} ON COMMIT DROP AS
SELECT date_trunc('minute', timestamp) AS minute, model, coalesce(api_key, '') AS api_key, status,
       coalesce(error_code, '') AS error_code,
       {RAW_SQL_NAMED}
FROM {{table}}
WHERE {{where}} AND timestamp >= %s AND timestamp < %s
GROUP BY 1, 2, 3, 4, 5
"""
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
FROM (SELECT {_QUARTER_SQL} AS start, {FOLD_SQL} FROM {_MINUTES_TABLE} GROUP BY 1) g JOIN peaks USING (start)
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
FROM (SELECT {_QUARTER_SQL} AS start, dimension, value, {FOLD_SQL} FROM {_SLICES_OF_MINUTES} GROUP BY 1, 2, 3) g
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
       day, coalesce(model, ''), coalesce(api_key, ''), coalesce(status, ''), coalesce(error_code, ''), {FOLD_SQL}
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


def rebuild_in_sql(cursor, account, classes, zone: ZoneInfo, lower: datetime, upper: datetime) -> tuple[int, int, int]:
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
