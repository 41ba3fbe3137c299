"""The busiest local hours of a range, and the weekday-by-hour heatmap."""

from datetime import UTC, datetime, timedelta

from django.db import connection

from analytics.measures import merge
from analytics.sql import adapt, as_utc, dow_hour_sql, epoch_sql
from analytics.timekeys import hour_start, offset_stretches
from analytics.usage.planner import _filtered_pieces, _Piece, plan
from analytics.usage.query import _WORK_MEM, Bucket, Totals, UsageQuery
from analytics.usage.read import _filters_sql, _read_pieces, _scoped, _slots_sql
from logs.selectors import statement_timeout


def busiest_hours(q: UsageQuery, n: int = 10) -> list[Bucket]:
    """The `n` local hours of the range with the most requests (filters respected), busiest
    first, without listing every hour of the range (8,760 in a year).

    From quarter (or slice) rows, the top n + 3 hours are enough: the raw edges of the
    range (under 15 minutes each) and the start of the slices touch at most three hours, so
    at least n of those hours are exact already and no other hour can pass them."""
    hourly = UsageQuery(
        account=q.account, start=q.start, end=q.end, zone=q.zone, bucket="hour",
        models=q.models, api_keys=q.api_keys, statuses=q.statuses, error_codes=q.error_codes,
    )  # fmt: skip
    by_source: dict[str, list[_Piece]] = {}
    for piece in plan(hourly):
        by_source.setdefault(piece.source, []).append(piece)
    merged: dict[datetime, list] = {}
    with statement_timeout(parallel=False, work_mem=_WORK_MEM), connection.cursor() as cursor:
        for source, pieces in by_source.items():
            top = None
            if source in ("quarter", "hour", "slice"):
                # The edges, and the time slices became complete, touch at most three hours.
                pieces = [hour for piece in pieces for hour in _top_slot_hours(cursor, hourly, piece, n + 3)]
                if not pieces:
                    continue
            elif len(by_source) == 1:
                top = n
            for key, _kind, _group, values in _read_pieces(cursor, hourly, pieces, top=top):
                start = as_utc(key)
                if start in merged:
                    merge(merged[start], values)
                else:
                    merged[start] = values
    ranked = sorted(merged.items(), key=lambda item: (-item[1][0], item[0]))[:n]
    return [
        Bucket(start, hour_start(start + timedelta(hours=1), q.zone), {(): Totals.from_values(values)})
        for start, values in ranked
    ]


def _top_slot_hours(cursor, q: UsageQuery, piece: _Piece, top: int) -> list[_Piece]:
    """The `top` local hours of a quarter or slice piece with the most requests, as pieces
    of that source. Ranked from `requests` alone, by integer arithmetic on the epoch per
    stretch of constant offset (as the heatmap), so a value's slices are read from their
    covering index; the caller then reads every measure of these few hours only."""
    epoch = epoch_sql("start")
    hours = []
    for lower, upper, offset in offset_stretches(piece.start, piece.end, q.zone):
        where, params = _slots_sql(q, piece, lower, upper)
        cursor.execute(
            f"SELECT ({epoch} + %s) / 3600, sum(requests) FROM {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s",
            [offset, *params, top],
        )
        for local_hour, _requests in cursor.fetchall():
            start = datetime.fromtimestamp(int(local_hour) * 3600 - offset, UTC)
            hours.append(_Piece(piece.source, max(start, lower), min(start + timedelta(hours=1), upper)))
    return hours


def heatmap(q: UsageQuery) -> list[list[int]]:
    """Requests by local weekday (Monday first) and hour of day in `q.zone`.

    Quarter rows are grouped by hour of the week with integer arithmetic on their epoch,
    once per stretch of constant UTC offset (a DST zone has two or three a year): converting
    35,000 quarters a year with AT TIME ZONE cost more than the rest of the query."""
    grid = [[0] * 24 for _ in range(7)]
    hourly = UsageQuery(
        account=q.account, start=q.start, end=q.end, zone=q.zone, bucket="hour",
        models=q.models, api_keys=q.api_keys, statuses=q.statuses, error_codes=q.error_codes,
    )  # fmt: skip
    with statement_timeout(parallel=False, work_mem=_WORK_MEM), connection.cursor() as cursor:
        for piece in _filtered_pieces(hourly):
            if piece.source == "raw":
                key_sql, key_params = dow_hour_sql("timestamp", q.zone)
                table, account_sql, params = _scoped(q, "raw")
                filters_sql, filter_params = _filters_sql(q)
                cursor.execute(
                    f"SELECT {key_sql}, count(*) FROM {table} WHERE {account_sql} "
                    f"AND timestamp >= %s AND timestamp < %s{filters_sql} GROUP BY 1",
                    [*key_params, *params, adapt(piece.start), adapt(piece.end), *filter_params],
                )
                for key, count in cursor.fetchall():
                    weekday, hour = key.split("-")
                    grid[int(weekday) - 1][int(hour)] += int(count or 0)
                continue
            epoch = epoch_sql("start")
            for lower, upper, offset in offset_stretches(piece.start, piece.end, q.zone):
                where, params = _slots_sql(hourly, piece, lower, upper)
                cursor.execute(
                    f"SELECT (({epoch} + %s) / 3600) %% 168, sum(requests) FROM {where} GROUP BY 1", [offset, *params]
                )
                for hour_of_week, count in cursor.fetchall():
                    # Hour 0 of the epoch's week is Thursday 00:00 (weekday 3).
                    grid[(3 + int(hour_of_week) // 24) % 7][int(hour_of_week) % 24] += int(count or 0)
    return grid
