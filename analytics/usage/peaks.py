"""The busiest minute of a range: branch and bound over daily, slot and raw rows."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.db import connection

from analytics.models import (
    UsageQuarter,
)
from analytics.sql import adapt, as_utc, is_pg, minute_sql
from analytics.timekeys import QUARTER, as_date, local_midnight, ranges_by_month, utc_days
from analytics.usage.planner import _filter_attribute, _filtered_pieces, _Piece, slice_column
from analytics.usage.query import _WORK_MEM, UsageQuery, _epoch_us, _from_epoch_us_sql
from analytics.usage.read import _filters_sql, _scoped, _slots_sql
from logs import gate
from logs.selectors import statement_timeout


def _raw_peak(cursor, q: UsageQuery, ranges: list[tuple[datetime, datetime]]) -> tuple[int, int]:
    """Requests and tokens of the busiest minute among the raw rows of `ranges`."""
    table, account_sql, params = _scoped(q, "raw")
    filters_sql, filter_params = _filters_sql(q)
    per = "account_id, " if q.every_account else ""
    spans = " OR ".join(["(timestamp >= %s AND timestamp < %s)"] * len(ranges))
    cursor.execute(
        f"SELECT max(n), max(t) FROM (SELECT count(*) AS n, sum(total_tokens) AS t FROM {table} "
        f"WHERE {account_sql} AND ({spans}){filters_sql} GROUP BY {per}{minute_sql('timestamp')}) AS minutes",
        [*params, *(adapt(v) for span in ranges for v in span), *filter_params],
    )
    requests, tokens = cursor.fetchone()
    return requests or 0, tokens or 0


_PEAK_BATCH = 48  # slots counted again from raw rows per round


_PEAK_DAYS = 4  # days whose slots are bounded in the first round; doubled each round


_MAX_PEAK_ROUNDS = 8  # then everything still hopeful is counted in one go


# From this many values on, bounds are also held under the busiest minute of all requests:
# measured at 10 M rows, it pruned nothing for two models and most days for three or more.
_TOTALS_FROM_VALUES = 3


# A block of time with upper bounds on its busiest minute: (start, requests, tokens).
_Bounded = tuple[datetime, float, float]


def _slices_peak(cursor, q: UsageQuery, piece: _Piece) -> tuple[int, int]:
    """The busiest minute of slice rows. With one value per slot it is the largest slot
    peak. With several (two models), a minute of the union holds at least the largest
    single peak L, and a block of time's busiest minute at most the sum of its values'
    peaks in the block. Branch and bound on three levels: UTC days by the sum of each
    value's busiest minute that day (UsageSliceDay, 365 rows a value-year); the slots of
    the most hopeful days (4, then 8, 16 ...) by the sum of their values' slot peaks; the
    raw rows of the most hopeful slots; until no block left can beat the best minute
    found. With many values (eight of sixteen models) the sums grow loose, and the
    busiest minute of all the account's requests that day or slot bounds them too."""
    values = getattr(q, _filter_attribute(slice_column(q))) if piece.source == "slice" else ()
    if len(values) <= 1:
        where, params = _slots_sql(q, piece)
        cursor.execute(f"SELECT max(peak_minute_requests), max(peak_minute_tokens) FROM {where}", params)
        requests, tokens = cursor.fetchone()
        return requests or 0, tokens or 0
    within_totals = not q.every_account and len(values) >= _TOTALS_FROM_VALUES

    def count_slots(slots: list[datetime], best: list[int]) -> list[int]:
        return count_raw(_slot_ranges(slots), best)

    def count_days(batch: list[datetime], best: list[int]) -> list[int]:
        spans = [(max(day, piece.start), min(day + timedelta(days=1), piece.end)) for day in batch]
        slots, least = _slot_bounds(cursor, q, spans, best, within_totals)
        best = _better(best, least)
        return _bound_and_count(best, slots, count_slots, lambda best: count_raw(spans, best))

    def count_raw(spans: list[tuple[datetime, datetime]], best: list[int]) -> list[int]:
        for ranges in ranges_by_month(spans).values():
            best = _better(best, _raw_peak(cursor, q, ranges))
        return best

    best, days = _day_bounds(cursor, q, piece)
    if within_totals:
        totals = {day: (r, t) for day, r, t in _day_totals(cursor, q, piece)}
        days = [(day, min(r, totals.get(day, (r, t))[0]), min(t, totals.get(day, (r, t))[1])) for day, r, t in days]
    everything = [(piece.start, piece.end)]
    best = _bound_and_count(best, days, count_days, lambda best: count_raw(everything, best), first_batch=_PEAK_DAYS)
    return best[0], best[1]


def _day_totals(cursor, q: UsageQuery, piece: _Piece) -> list[_Bounded]:
    """Per UTC day of the piece, the busiest minute of all the account's requests (its
    UsageSliceDay rows of dimension 0): a bound on the busiest minute of any of its values."""
    table, account_sql, params = _scoped(q, "slice_day")
    cursor.execute(
        f"SELECT day, peak_minute_requests, peak_minute_tokens FROM {table} "
        f"WHERE {account_sql} AND dimension = 0 AND value = '' AND day >= %s AND day <= %s",
        [*params, *utc_days(piece.start, piece.end)],
    )
    return [(local_midnight(as_date(day), UTC), r, t) for day, r, t in cursor.fetchall()]


def _batch(blocks: list[_Bounded], counted: set, best: list[int], size: int) -> set[datetime]:
    """The starts of the `size` blocks with the highest bound on each measure that could
    still beat `best` and are not yet counted."""
    batch = set()
    for measure in (0, 1):  # requests, tokens
        hopeful = [b for b in blocks if b[0] not in counted and b[1 + measure] > best[measure]]
        hopeful.sort(key=lambda b: b[1 + measure], reverse=True)
        batch.update(b[0] for b in hopeful[:size])
    return batch


def _better(best: list[int], found: tuple[int, int]) -> list[int]:
    return [max(best[0], found[0]), max(best[1], found[1])]


def _bound_and_count(best: list[int], blocks: list[_Bounded], count, count_rest, first_batch: int = 0) -> list[int]:
    """Branch and bound: in rounds, count the blocks with the highest bound on either
    measure that could still beat `best` (count(starts, best) -> best): _PEAK_BATCH a
    round, or `first_batch` doubled each round. After _MAX_PEAK_ROUNDS rounds,
    count_rest(best) settles whatever is left."""
    counted: set[datetime] = set()
    rounds = 0
    while batch := _batch(blocks, counted, best, first_batch << rounds if first_batch else _PEAK_BATCH):
        if rounds == _MAX_PEAK_ROUNDS:
            return count_rest(best)
        best = count(sorted(batch), best)
        counted |= batch
        rounds += 1
    return best


def _day_bounds(cursor, q: UsageQuery, piece: _Piece) -> tuple[list[int], list[_Bounded]]:
    """Per UTC day of the piece, the sum over values of each value's busiest minute that
    day (UsageSliceDay): an upper bound on that day's busiest minute. Also the busiest
    minute of one value on a day wholly inside the piece: a lower bound on the answer.
    Token sums as doubles: exact below 2**53 and far cheaper to add than numeric."""
    table, account_sql, params = _scoped(q, "slice_day")
    filters_sql, filter_params = _filters_sql(q, "slice")
    cursor.execute(
        f"SELECT day, sum(requests), sum(CAST(tokens AS DOUBLE PRECISION)), max(requests), max(tokens) FROM "
        f"(SELECT day, max(peak_minute_requests) AS requests, max(peak_minute_tokens) AS tokens FROM {table} "
        f"WHERE {account_sql} AND day >= %s AND day <= %s{filters_sql} GROUP BY day, value) AS days GROUP BY day",
        [*params, *utc_days(piece.start, piece.end), *filter_params],
    )
    best, days = [0, 0], []
    for day, up_requests, up_tokens, requests, tokens in cursor.fetchall():
        start = local_midnight(as_date(day), UTC)
        if piece.start <= start and start + timedelta(days=1) <= piece.end:
            best = _better(best, (requests or 0, tokens or 0))
        days.append((start, up_requests, up_tokens))
    return best, days


def _slot_bounds(
    cursor, q: UsageQuery, spans: list[tuple[datetime, datetime]], best: list[int], within_totals: bool = False
) -> tuple[list[_Bounded], tuple[int, int]]:
    """The slice slots in `spans` whose sum of their values' peaks could beat `best`; with
    `within_totals`, each bound no higher than the slot's busiest minute of all requests
    (its quarter row). Also the largest single-value peak among them: a lower bound. On
    PostgreSQL in one statement, each span its own index range scan (a LATERAL aggregate)."""
    table, account_sql, params = _scoped(q, "slice")
    filters_sql, filter_params = _filters_sql(q, "slice")
    tokens = "sum(CAST(peak_minute_tokens AS DOUBLE PRECISION))"
    slots_sql = (
        f"SELECT start, sum(peak_minute_requests) AS up_requests, {tokens} AS up_tokens, "
        f"max(peak_minute_requests) AS low_requests, max(peak_minute_tokens) AS low_tokens FROM {table} "
        f"WHERE {account_sql} AND start >= {{lower}} AND start < {{upper}}{filters_sql} "
        f"GROUP BY start HAVING sum(peak_minute_requests) > %s OR {tokens} > %s"
    )
    columns, join, join_params = "slots.start, slots.up_requests, slots.up_tokens", "", []
    lows = ", slots.low_requests, slots.low_tokens"
    if within_totals:
        least = "LEAST" if is_pg() else "MIN"  # SQLite's min() of two arguments is LEAST
        columns = (
            f"slots.start, {least}(slots.up_requests, coalesce(totals.peak_minute_requests, slots.up_requests)), "
            f"{least}(slots.up_tokens, coalesce(CAST(totals.peak_minute_tokens AS DOUBLE PRECISION), slots.up_tokens))"
        )
        totals, totals_sql, join_params = gate.rollup_sql(UsageQuarter, q.account, alias="totals")
        join = f" LEFT JOIN {totals} AS totals ON {totals_sql} AND totals.start = slots.start"
    if is_pg():
        cursor.execute(
            f"SELECT {columns}{lows} FROM unnest(%s::bigint[], %s::bigint[]) AS spans(lower_us, upper_us) "
            "CROSS JOIN LATERAL ("
            + slots_sql.format(lower=_from_epoch_us_sql("spans.lower_us"), upper=_from_epoch_us_sql("spans.upper_us"))
            + f") AS slots{join}",
            [
                [_epoch_us(lower) for lower, _ in spans],
                [_epoch_us(upper) for _, upper in spans],
                *params,
                *filter_params,
                *best,
                *join_params,
            ],
        )
        rows = cursor.fetchall()
    else:
        rows = []
        for lower, upper in spans:
            cursor.execute(
                f"SELECT {columns}{lows} FROM (" + slots_sql.format(lower="%s", upper="%s") + f") AS slots{join}",
                [*params, adapt(lower), adapt(upper), *filter_params, *best, *join_params],
            )
            rows += cursor.fetchall()
    least = (max((row[3] for row in rows), default=0), max((row[4] for row in rows), default=0))
    return [(as_utc(start), up_requests, up_tokens) for start, up_requests, up_tokens, *_ in rows], least


def _slot_ranges(slots: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted quarter slots as time ranges, adjacent ones in a month merged."""
    ranges: list[tuple[datetime, datetime]] = []
    for slot in slots:
        if ranges and ranges[-1][1] == slot and slot.month == ranges[-1][0].month:
            ranges[-1] = (ranges[-1][0], slot + QUARTER)
        else:
            ranges.append((slot, slot + QUARTER))
    return ranges


def peak_minute(q: UsageQuery) -> tuple[int, int]:
    """Requests and tokens of the busiest minute in the range (each its own maximum)."""
    best = [0, 0]
    anywhere = replace(q, bucket=None)  # a minute lies in one hour: hours serve any zone
    with statement_timeout(parallel=False, work_mem=_WORK_MEM), connection.cursor() as cursor:
        for piece in _filtered_pieces(anywhere):
            if piece.source == "raw":
                requests, tokens = _raw_peak(cursor, q, [(piece.start, piece.end)])
            else:
                requests, tokens = _slices_peak(cursor, q, piece)
            best = [max(best[0], requests), max(best[1], tokens)]
    return best[0], best[1]
