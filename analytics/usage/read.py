"""Reading pieces: the SQL of one source's rows for a query, grouped by time key and dimensions."""

from collections.abc import Iterable
from datetime import datetime

from analytics.measures import RAW_SQL, READ_SQL, decimals
from analytics.sql import adapt, local_date_sql, local_hour_sql, week_month_sql
from analytics.usage.planner import _Piece, _range_sql, slice_column
from analytics.usage.query import (
    _ROLLUP_OF,
    _SLICE_DIMENSION_OF,
    FILTER_COLUMNS,
    UsageQuery,
    _epoch_us,
    _from_epoch_us_sql,
)
from logs import gate


def _filters_sql(q: UsageQuery, source: str = "raw") -> tuple[str, list]:
    """The query's filters as SQL for rows of `source` (a slice names its value `value`)."""
    if source in ("quarter", "hour", "utcday"):
        return "", []
    sliced = slice_column(q) if source == "slice" else None
    clauses, params = [], []
    if sliced:
        clauses.append("dimension = %s")
        params.append(_SLICE_DIMENSION_OF[sliced])
    for attribute, column in FILTER_COLUMNS.items():
        values = getattr(q, attribute)
        if values:
            name = "value" if column == sliced else column
            clauses.append(f"{name} IN ({', '.join(['%s'] * len(values))})")
            params.extend(values)
    return "".join(f" AND {clause}" for clause in clauses), params


def _scoped(q: UsageQuery, source: str) -> tuple[str, str, list]:
    """Table, WHERE and params of one source for the query's account, from the tenant gate."""
    if source == "raw":
        return gate.request_log_sql(q.account)
    return gate.rollup_sql(_ROLLUP_OF[source], q.account)


def _time_key(q: UsageQuery, source: str, column: str) -> tuple[str | None, list, str | None]:
    """SQL for the time key of a row, its params, and what the key is ('quarter' / 'date')."""
    if q.bucket is None:
        return None, [], None
    if source == "day":
        return week_month_sql("day", q.bucket), [], "date"
    if q.bucket == "hour":
        sql, params = local_hour_sql(column, q.zone)
        return sql, params, "hour"
    sql, params = local_date_sql(column, q.zone)
    return week_month_sql(sql, q.bucket), params, "date"


def _group_columns(q: UsageQuery, source: str = "raw") -> list[str]:
    sliced = slice_column(q) if source == "slice" else None
    return [{"account": "account_id", sliced: "value"}.get(name, name) for name in q.group_by]


def _read_pieces(cursor, q: UsageQuery, pieces: list[_Piece], top: int | None = None) -> Iterable[tuple]:
    """Rows of (time key or None, kind, *group values, *MEASURES) of pieces of one source,
    in one statement (the head and tail edges of a range are one read, not two)."""
    source = pieces[0].source
    raw = source == "raw"
    table, account_sql, account_params = _scoped(q, source)
    time_column = "timestamp" if raw else ("day" if source in ("day", "utcday") else "start")
    key_sql, key_params, kind = _time_key(q, source, time_column)
    where = [account_sql]
    params: list = [*account_params]
    ranges = []
    for piece in pieces:
        if source == "day":
            ranges.append("(projection = %s AND day >= %s AND day <= %s)")
            params += [piece.projection, piece.first_day, piece.last_day]
        elif source == "utcday":
            ranges.append("(day >= %s AND day <= %s)")
            params += [piece.first_day, piece.last_day]
        elif raw:
            ranges.append("(timestamp >= %s AND timestamp < %s)")
            params += [adapt(piece.start), adapt(piece.end)]
        else:
            range_sql, range_params = _range_sql(piece)
            ranges.append(f"({range_sql})")
            params += range_params
    where.append(ranges[0] if len(ranges) == 1 else f"({' OR '.join(ranges)})")
    filters_sql, filter_params = _filters_sql(q, source)
    groups = _group_columns(q, source)
    select = [key_sql] if key_sql else []
    select += groups
    measures = RAW_SQL if raw else READ_SQL
    group_by = ", ".join(str(i + 1) for i in range(len(select)))
    sql = f"SELECT {', '.join([*select, measures])} FROM {table} WHERE {' AND '.join(where)}{filters_sql}" + (
        f" GROUP BY {group_by}" if group_by else ""
    )
    if top is not None:  # the groups with the most requests (the first measure)
        # Ties go to the earliest time key: the same total order as the caller's ranking.
        sql += f" ORDER BY {len(select) + 1} DESC, 1 LIMIT {int(top)}"
    cursor.execute(sql, [*key_params, *params, *filter_params])
    width = len(select)
    for row in cursor.fetchall():
        values = _measures(row[width:])
        if values is None:
            continue
        key = row[0] if key_sql else None
        yield (key, kind, tuple(row[1 if key_sql else 0 : width]), values)


def _measures(row) -> list | None:
    """The MEASURES of a result row as Python values; None for no rows (an aggregate without
    GROUP BY answers one row even over nothing)."""
    if not row[0]:
        return None
    return decimals(list(row))


def _read_numbered(cursor, q: UsageQuery, source: str, numbered: list[tuple[_Piece, int]]) -> Iterable[tuple]:
    """PostgreSQL: the rows of many ranges of one source in one statement, each range summed
    on its own (a LATERAL aggregate: an index range scan per range). As a plain join the
    planner read every slice of the span once per range: 13 M comparisons for a year."""
    raw = source == "raw"
    column = "timestamp" if raw else "start"
    table, account_sql, params = _scoped(q, "raw" if raw else "slice")
    filters_sql, filter_params = _filters_sql(q, source)
    groups = _group_columns(q, source)
    measures = RAW_SQL if raw else READ_SQL
    group_by = f" GROUP BY {', '.join(groups)}" if groups else ""
    cursor.execute(
        "SELECT windows.number, sums.* "
        "FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS windows(lower_us, upper_us, number) "
        f"CROSS JOIN LATERAL (SELECT {', '.join([*groups, measures])} FROM {table} WHERE {account_sql} "
        f"AND {column} >= {_from_epoch_us_sql('windows.lower_us')} "
        f"AND {column} < {_from_epoch_us_sql('windows.upper_us')}{filters_sql}{group_by}"
        ") AS sums",
        [
            [_epoch_us(piece.start) for piece, _ in numbered],
            [_epoch_us(piece.end) for piece, _ in numbered],
            [number for _, number in numbered],
            *params,
            *filter_params,
        ],
    )
    width = len(groups) + 1
    for row in cursor.fetchall():
        values = _measures(row[width:])
        if values is not None:
            yield row[0], tuple(row[1:width]), values


def _slots_sql(q: UsageQuery, piece: _Piece, lower: datetime | None = None, upper: datetime | None = None):
    """FROM and WHERE (and params) for the quarter or slice rows of `piece`."""
    table, account_sql, params = _scoped(q, piece.source)
    filters_sql, filter_params = _filters_sql(q, piece.source)
    range_sql, range_params = _range_sql(piece, lower, upper)
    return f"{table} WHERE {account_sql} AND {range_sql}{filters_sql}", [*params, *range_params, *filter_params]
