"""usage() and totals(): the planned pieces added into the buckets of the range."""

from datetime import datetime

from django.db import connection

from analytics.measures import merge
from analytics.sql import as_utc
from analytics.timekeys import as_date, bucket_date, bucket_edges, local_midnight
from analytics.usage.planner import _Piece, plan
from analytics.usage.query import _WORK_MEM, Bucket, Totals, UsageQuery
from analytics.usage.read import _read_pieces
from analytics.usage.shifted import _shifted_days, reads_shifted_days
from logs.selectors import statement_timeout


def usage(q: UsageQuery) -> list[Bucket]:
    edges = bucket_edges(q.start, q.end, q.zone, q.bucket)
    # Every account's quarter rows (the operator's view) do gain from parallel workers.
    with statement_timeout(parallel=q.every_account, work_mem=_WORK_MEM), connection.cursor() as cursor:
        merged = _shifted_days(cursor, q, edges) if reads_shifted_days(q) else _planned(cursor, q, edges)
    buckets = []
    for (lower, upper), groups in zip(edges, merged, strict=True):
        ordered = sorted(groups.items(), key=_sort_key)
        buckets.append(Bucket(lower, upper, {group: Totals.from_values(values) for group, values in ordered}))
    return buckets


def _planned(cursor, q: UsageQuery, edges: list[tuple[datetime, datetime]]) -> list[dict[tuple, list]]:
    """Measures per bucket and group, each piece of `plan(q)` added into its bucket."""
    starts = {lower: index for index, (lower, _upper) in enumerate(edges)}
    merged: list[dict[tuple, list]] = [{} for _ in edges]
    by_source: dict[str, list[_Piece]] = {}
    for piece in plan(q):
        by_source.setdefault(piece.source, []).append(piece)
    indexes: dict = {}  # many groups share a time key: find its bucket once
    for pieces in by_source.values():
        for key, kind, group, values in _read_pieces(cursor, q, pieces):
            index = indexes.get((kind, key), -1)
            if index == -1:
                index = indexes[(kind, key)] = _bucket_index(q, key, kind, starts)
            if index is None:
                continue
            current = merged[index].get(group)
            if current is None:
                merged[index][group] = values
            else:
                merge(current, values)
    return merged


def _sort_key(item):
    return tuple("" if part is None else str(part) for part in item[0])


def _bucket_index(q: UsageQuery, key, kind, starts: dict[datetime, int]) -> int | None:
    if kind is None:
        return 0
    if kind == "hour":
        return starts.get(as_utc(key))
    return starts.get(local_midnight(bucket_date(as_date(key), q.bucket), q.zone))


def totals(q: UsageQuery) -> Totals:
    """The whole range as one Totals (filters respected, groups ignored)."""
    plain = UsageQuery(
        account=q.account, start=q.start, end=q.end, zone=q.zone,
        models=q.models, api_keys=q.api_keys, statuses=q.statuses, error_codes=q.error_codes,
    )  # fmt: skip
    return usage(plain)[0].total
