"""The measures every rollup row carries: the one place to add a measure.

A measure has a name (its column in every rollup table, its field on `Totals`), how rows
merge (summed, or the largest kept), its aggregate over raw request rows and its value for
one raw row. Everything else (the SQL of the rebuild and of the reads, merging in Python,
`Totals`) is derived from the table below, by name. A new measure also needs its column on
`analytics.models.Measures` (and a migration); tests/analytics/test_measures.py checks the
two agree.
"""

import decimal
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Measure:
    name: str
    summed: bool  # False: the largest value is kept when rows merge
    raw_sql: str  # its aggregate over raw request rows (PostgreSQL and SQLite)
    of_row: Callable[[dict], object]  # its value for one raw row (a dict of RequestLog fields)
    empty: object = 0  # its value over no rows


def _cost_or_zero(row: dict) -> Decimal:
    return row["cost"] if row["cost"] is not None else Decimal(0)


TABLE = (
    Measure("requests", True, "count(*)", lambda row: 1),
    Measure("errors", True, "count(CASE WHEN status = 'error' THEN 1 END)", lambda row: int(row["status"] == "error")),
    Measure("prompt_tokens", True, "sum(prompt_tokens)", lambda row: row["prompt_tokens"]),
    Measure("completion_tokens", True, "sum(completion_tokens)", lambda row: row["completion_tokens"]),
    Measure("total_tokens", True, "sum(total_tokens)", lambda row: row["total_tokens"]),
    Measure("cached_tokens", True, "coalesce(sum(cached_tokens), 0)", lambda row: row["cached_tokens"] or 0),
    Measure("reasoning_tokens", True, "coalesce(sum(reasoning_tokens), 0)", lambda row: row["reasoning_tokens"] or 0),
    # Cost of the priced requests only; `unpriced` counts the others.
    Measure("cost", True, "coalesce(sum(cost), 0)", _cost_or_zero, Decimal(0)),
    Measure("unpriced", True, "count(CASE WHEN cost IS NULL THEN 1 END)", lambda row: int(row["cost"] is None)),
    # Requests that reported a latency, their sum and the largest.
    Measure("latency_count", True, "count(latency_ms)", lambda row: int(row["latency_ms"] is not None)),
    Measure("latency_sum", True, "coalesce(sum(latency_ms), 0)", lambda row: row["latency_ms"] or 0),
    Measure("latency_max", False, "max(latency_ms)", lambda row: row["latency_ms"], None),
    Measure("max_total_tokens", False, "max(total_tokens)", lambda row: row["total_tokens"], None),
    Measure("max_cost", False, "max(cost)", lambda row: row["cost"], None),
)

MEASURES = tuple(m.name for m in TABLE)
ADDITIVE = tuple(m.name for m in TABLE if m.summed)
MAXIMA = tuple(m.name for m in TABLE if not m.summed)
# The busiest minute of a slot, on the quarter, hour and slice rows (largest kept).
PEAKS = ("peak_minute_requests", "peak_minute_tokens")

_ADDITIVE_AT = tuple(MEASURES.index(name) for name in ADDITIVE)
_MAXIMA_AT = tuple(MEASURES.index(name) for name in MAXIMA)
_DECIMAL_AT = (MEASURES.index("cost"), MEASURES.index("max_cost"))
_SQLITE_FLOAT = decimal.Context(prec=15)

# The measures over raw rows, in MEASURES order; RAW_SQL_NAMED names each as its column
# (for a table of them; unnamed, no output name can shadow a column in GROUP or ORDER BY).
RAW_SQL = ", ".join(m.raw_sql for m in TABLE)
RAW_SQL_NAMED = ", ".join(f"{m.raw_sql} AS {m.name}" for m in TABLE)
# Rollup rows folded into coarser rows (the rebuild's hours, months and slots).
FOLD_SQL = ", ".join(f"{'sum' if m.summed else 'max'}({m.name}) AS {m.name}" for m in TABLE)
PEAKS_FOLD_SQL = ", ".join(f"max({name}) AS {name}" for name in PEAKS)
# Rollup rows summed for a read: PostgreSQL's sum of bigint is numeric, cast back so the
# driver answers ints (cost stays numeric, for Decimal).
READ_SQL = ", ".join(
    f"sum({m.name})" if m.name == "cost" else (f"CAST(sum({m.name}) AS BIGINT)" if m.summed else f"max({m.name})")
    for m in TABLE
)


def empty_measures() -> list:
    """The measures of no rows, in MEASURES order."""
    return [m.empty for m in TABLE]


def of_row(row: dict) -> list:
    """The measures of one raw row (a dict of RequestLog fields), in MEASURES order."""
    return [m.of_row(row) for m in TABLE]


def merge(into: list, values) -> None:
    """Add `values` to `into` (both in MEASURES order): sums add, maxima keep the largest."""
    for i in _ADDITIVE_AT:
        into[i] += values[i] or 0
    for i in _MAXIMA_AT:
        if values[i] is not None and (into[i] is None or values[i] > into[i]):
            into[i] = values[i]


def add_sums(into: list, values, sign: int = 1) -> None:
    """Add (or with sign=-1 take away) only the summed measures: the maxima of a difference
    of two ranges are not known."""
    for i in _ADDITIVE_AT:
        into[i] += sign * (values[i] or 0)


def to_decimal(value) -> Decimal:
    """A SUM of costs as Decimal: exact on PostgreSQL (numeric); SQLite stores decimals as
    doubles, read back with Django's own 15 significant digits."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return _SQLITE_FLOAT.create_decimal_from_float(value)
    return Decimal(value)


def decimals(values: list) -> list:
    """`values` (a raw result row's measures) with cost and max_cost as Decimal, in place."""
    cost_at, max_cost_at = _DECIMAL_AT
    values[cost_at] = to_decimal(values[cost_at])
    if values[max_cost_at] is not None:
        values[max_cost_at] = to_decimal(values[max_cost_at])
    return values


def named(values) -> dict:
    """The measures in MEASURES order as a dict by name (for `Totals(**named(values))`)."""
    return dict(zip(MEASURES, values, strict=True))
