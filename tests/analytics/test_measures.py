"""analytics.measures is the one table of measures: the rollup models' columns, `Totals` and
the two ways a raw row becomes measures (Python at ingest, SQL at rebuild) follow it."""

from decimal import Decimal

import pytest
from django.db import connection

from analytics.measures import MEASURES, RAW_SQL, decimals, empty_measures, merge, of_row
from analytics.models import Measures, PeakMinute, UsageHour, UsageQuarter, UsageSlice, UsageSliceDay
from analytics.usage import Totals
from logs import gate
from logs.ingest.services import ingest_records
from logs.models import RequestLog


def test_models_and_totals_carry_every_measure_by_name():
    assert tuple(f.name for f in Measures._meta.get_fields()) == MEASURES
    assert tuple(Totals.__dataclass_fields__) == MEASURES
    for model in (UsageQuarter, UsageHour, UsageSlice, UsageSliceDay):
        assert {"peak_minute_requests", "peak_minute_tokens"} <= {f.name for f in model._meta.get_fields()}
        assert issubclass(model, PeakMinute)
    totals = Totals.from_values([*range(1, len(MEASURES) + 1)])
    assert (totals.requests, totals.errors, totals.max_cost) == (1, 2, len(MEASURES))


def test_merge_adds_sums_and_keeps_largest():
    into = empty_measures()
    merge(into, of_row(_row(cost=Decimal("0.5"), latency_ms=30, total_tokens=7)))
    merge(into, of_row(_row(cost=None, latency_ms=None, total_tokens=9, status="error")))
    got = dict(zip(MEASURES, into, strict=True))
    assert got["requests"] == 2 and got["errors"] == 1 and got["unpriced"] == 1
    assert got["cost"] == Decimal("0.5") and got["max_cost"] == Decimal("0.5")
    assert got["latency_count"] == 1 and got["latency_sum"] == 30 and got["latency_max"] == 30
    assert got["total_tokens"] == 16 and got["max_total_tokens"] == 9


@pytest.mark.django_db
def test_python_and_sql_measures_of_raw_rows_agree(acme):
    records = [
        {
            "request_id": "m1",
            "timestamp": "2026-01-05T10:00:01Z",
            "model": "gpt-4o",
            "status": "success",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "cost": "0.25",
            "latency_ms": 120,
        },
        {
            "request_id": "m2",
            "timestamp": "2026-01-05T10:00:02Z",
            "model": "gpt-4o",
            "status": "error",
            "prompt_tokens": 3,
            "completion_tokens": 0,
            "total_tokens": 3,
            "error_code": "rate_limit",
        },
    ]
    ingest_records(account=acme, records=records)
    rows = list(gate.request_logs(account=acme).values())
    in_python = empty_measures()
    for row in rows:
        merge(in_python, of_row(row))
    table, where, params = gate.request_log_sql(acme)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {RAW_SQL} FROM {table} WHERE {where}", params)
        in_sql = decimals(list(cursor.fetchone()))
    assert len(rows) == 2 and RequestLog in {type(r) for r in gate.request_logs(account=acme)}
    assert in_sql == in_python
    assert dict(zip(MEASURES, in_sql, strict=True))["cost"] == Decimal("0.25")


def _row(*, cost, latency_ms, total_tokens, status="success"):
    return {
        "status": status,
        "prompt_tokens": total_tokens,
        "completion_tokens": 0,
        "total_tokens": total_tokens,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "cost": cost,
        "latency_ms": latency_ms,
    }
