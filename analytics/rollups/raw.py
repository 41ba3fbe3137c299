"""Raw rows read back for the rollups, through the tenant gate: minute groups (the SQLite
rebuild) and the requests and tokens of chosen minutes (ingest's busiest minutes)."""

from collections.abc import Iterator
from datetime import datetime, timedelta

from analytics.measures import RAW_SQL, decimals
from analytics.rollups.fold import _SLICE_KEY, _SLICE_MODEL, _SLICE_STATUS, ALL
from analytics.sql import adapt, as_utc, minute_sql
from console.models import Account
from logs import gate


def raw_minute_groups(cursor, account: Account, classes, start: datetime, end: datetime) -> Iterator[tuple]:
    table, where, params = gate.request_log_sql(account, classes=classes)
    minute = minute_sql()
    cursor.execute(
        f"SELECT {minute}, model, api_key, status, error_code, {RAW_SQL} FROM {table} "
        f"WHERE {where} AND timestamp >= %s AND timestamp < %s GROUP BY 1, 2, 3, 4, 5",
        [*params, adapt(start), adapt(end)],
    )
    for minute_value, model, api_key, status, error_code, *values in cursor.fetchall():
        yield (as_utc(minute_value), model, api_key, status, error_code, *decimals(values))


_CLUSTER_GAP = timedelta(hours=1)
_RANGES_PER_QUERY = 50


def raw_minute_totals(cursor, account: Account, classes, minutes: list[datetime]) -> dict[tuple, list[int]]:
    """Requests and tokens of every stored row of the account in each of `minutes`, per
    (minute, slice dimension, value) as in `Folded.minutes`.

    The minutes are merged into time ranges (a gap over an hour starts a new one) read with
    one GROUP BY per up to 50 ranges: the ranges are constants, so PostgreSQL prunes the
    partitions while planning. (A LATERAL probe per minute could not: 1 s per batch of
    1,000 records spread over an hour, at 10 M rows.)"""
    if not minutes:
        return {}
    wanted = set(minutes)
    ranges: list[list[datetime]] = []
    for minute in sorted(wanted):
        if ranges and minute - ranges[-1][1] <= _CLUSTER_GAP:
            ranges[-1][1] = minute
        else:
            ranges.append([minute, minute])
    table, where, params = gate.request_log_sql(account, classes=classes)
    minute_expr = minute_sql()
    totals: dict[tuple, list[int]] = {}
    for start in range(0, len(ranges), _RANGES_PER_QUERY):
        chunk = ranges[start : start + _RANGES_PER_QUERY]
        spans = " OR ".join(["(timestamp >= %s AND timestamp < %s)"] * len(chunk))
        bounds = [adapt(v) for first, last in chunk for v in (first, last + timedelta(minutes=1))]
        cursor.execute(
            f"SELECT {minute_expr}, model, api_key, status, count(*), coalesce(sum(total_tokens), 0) FROM {table} "
            f"WHERE {where} AND ({spans}) GROUP BY 1, 2, 3, 4",
            [*params, *bounds],
        )
        for minute_value, model, api_key, status, n, tokens in cursor.fetchall():
            minute = as_utc(minute_value)
            if minute not in wanted:
                continue
            slices = (ALL, (_SLICE_MODEL, model), (_SLICE_KEY, api_key or ""), (_SLICE_STATUS, status))
            for dimension, value in slices:
                total = totals.setdefault((minute, dimension, value), [0, 0])
                total[0] += int(n)
                total[1] += int(tokens)
    return totals
