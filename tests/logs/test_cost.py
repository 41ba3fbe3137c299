"""Cost at ingest: a sent cost is kept; otherwise the price in force at the record's time."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from logs.ingest.services import ingest_records
from logs.models import MatchType, ModelPrice, RequestLog
from logs.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db

CHANGE = datetime(2026, 11, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    # partitions._known outlives a test's rolled-back transaction (see the report on
    # ensure_partitions); start every test from the catalog.
    forget_known_partitions()


def price(model, input_, output, *, valid_from=datetime(2026, 1, 1, tzinfo=UTC), cached=None, **fields):
    return ModelPrice.objects.create(
        model=model,
        input_per_mtok=Decimal(input_),
        output_per_mtok=Decimal(output),
        cached_input_per_mtok=None if cached is None else Decimal(cached),
        valid_from=valid_from,
        **fields,
    )


def rec(request_id, model="gpt-4o", ts="2026-11-20T12:00:00Z", prompt=1_000, completion=500, **fields):
    return {
        "request_id": request_id,
        "timestamp": ts,
        "model": model,
        "status": "success",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        **fields,
    }


def stored(request_id, account):
    return RequestLog.objects.get(account=account, request_id=request_id)


def test_price_history_prices_each_record_at_its_own_time(acme):
    old = price("gpt-4o", "5", "15")
    new = price("gpt-4o", "2.5", "10", valid_from=CHANGE)
    result = ingest_records(
        account=acme,
        records=[
            rec("before", ts="2026-11-09T23:59:59.999999Z"),
            rec("at", ts="2026-11-10T00:00:00Z"),
            rec("after", ts="2026-11-20T00:00:00Z"),
        ],
    )
    assert result.accepted == 3
    # 1,000 x $5/M + 500 x $15/M = 0.005 + 0.0075
    assert (stored("before", acme).cost, stored("before", acme).price_id) == (Decimal("0.012500000000"), old.pk)
    # 1,000 x $2.5/M + 500 x $10/M = 0.0025 + 0.005
    assert (stored("at", acme).cost, stored("at", acme).price_id) == (Decimal("0.007500000000"), new.pk)
    assert (stored("after", acme).cost, stored("after", acme).price_id) == (Decimal("0.007500000000"), new.pk)


def test_account_override_wins_over_list_price(acme, globex):
    price("gpt-4o", "2.5", "10")
    override = price("gpt-4o", "1", "2", account=acme)
    ingest_records(account=acme, records=[rec("r1")])
    ingest_records(account=globex, records=[rec("r1")])
    assert stored("r1", acme).cost == Decimal("0.002000000000")  # 1,000 x 1 + 500 x 2, per million
    assert stored("r1", acme).price_id == override.pk
    assert stored("r1", globex).cost == Decimal("0.007500000000")


def test_prefix_price_applies_and_exact_beats_prefix(acme):
    prefix = price("claude-3-5-sonnet", "3", "15", match=MatchType.PREFIX)
    exact = price("claude-3-5-sonnet-latest", "1", "1")
    ingest_records(
        account=acme,
        records=[rec("dated", model="claude-3-5-sonnet-20241022"), rec("latest", model="claude-3-5-sonnet-latest")],
    )
    assert stored("dated", acme).price_id == prefix.pk
    assert stored("dated", acme).cost == Decimal("0.010500000000")  # 0.003 + 0.0075
    assert stored("latest", acme).price_id == exact.pk
    assert stored("latest", acme).cost == Decimal("0.001500000000")


def test_cached_tokens_use_the_cached_price(acme):
    price("gpt-4o", "2.5", "10", cached="1.25")
    price("no-cache-price", "2", "4")
    ingest_records(
        account=acme,
        records=[rec("cached", cached_tokens=400), rec("fallback", model="no-cache-price", cached_tokens=400)],
    )
    # 600 x 2.5 + 400 x 1.25 + 500 x 10 = 1500 + 500 + 5000 -> 0.0070
    assert stored("cached", acme).cost == Decimal("0.007000000000")
    # No cached price: every prompt token at the input price, 1,000 x 2 + 500 x 4
    assert stored("fallback", acme).cost == Decimal("0.004000000000")


def test_unknown_model_stays_unpriced_not_zero(acme):
    price("gpt-4o", "2.5", "10", valid_from=CHANGE)
    ingest_records(
        account=acme, records=[rec("mystery", model="mystery-model"), rec("too-early", ts="2026-11-01T00:00:00Z")]
    )
    for request_id in ("mystery", "too-early"):
        row = stored(request_id, acme)
        assert row.cost is None and row.price_id is None
    assert RequestLog.objects.filter(account=acme, cost__isnull=True).count() == 2


def test_sent_cost_is_kept_even_when_a_price_exists(acme):
    price("gpt-4o", "2.5", "10")
    ingest_records(
        account=acme,
        records=[
            rec("sent", cost=0.0123),
            rec("zero", cost=0),
            rec("string", cost="0.000000000001"),
            rec("null", cost=None),
        ],
    )
    assert (stored("sent", acme).cost, stored("sent", acme).price_id) == (Decimal("0.012300000000"), None)
    assert stored("zero", acme).cost == Decimal("0")
    assert stored("string", acme).cost == Decimal("0.000000000001")
    assert stored("null", acme).cost == Decimal("0.007500000000")  # null means "not sent": priced


def test_float_cost_has_no_binary_noise(acme):
    ingest_records(account=acme, records=[rec("f", cost=4.2000000000000004e-06), rec("g", cost=0.1 + 0.2)])
    assert stored("f", acme).cost == Decimal("0.000004200000")
    assert stored("g", acme).cost == Decimal("0.300000000000")


def test_cost_sum_is_exact(acme):
    price("gpt-4o", "0.15", "0.6")
    records = [rec(f"r{n}", prompt=n, completion=n * 2) for n in range(1, 101)]
    ingest_records(account=acme, records=records)
    expected = sum(
        (Decimal(n) * Decimal("0.15") + Decimal(n * 2) * Decimal("0.6")) / Decimal(1_000_000) for n in range(1, 101)
    )
    total = sum(row.cost for row in RequestLog.objects.filter(account=acme))
    assert total == expected
