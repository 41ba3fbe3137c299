"""The storage half of ingest: values survive COPY escaping, rows land in their partition,
and concurrent batches with the same request_ids store each one once."""

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections

from console.models import ApiToken
from logs.ingest.services import ingest_records
from logs.models import AccountModel, ApiKey, RequestLog
from logs.partitions import (
    create_partitions,
    default_partition_rows,
    expired_before,
    forget_known_partitions,
    live_period_starts,
    max_new_partitions,
    next_period_start,
    period_start,
    period_table,
)
from tests.factories import make_account


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    # partitions._known outlives a test's rolled-back transaction (see the report on
    # ensure_partitions); start every test from the catalog.
    forget_known_partitions()


def rec(request_id, **fields):
    base = {"request_id": request_id, "timestamp": "2026-11-20T12:00:00.000001Z", "model": "m", "status": "success"}
    return {**base, **fields}


@pytest.mark.django_db
def test_awkward_values_round_trip(acme):
    awkward = "tab\there\nnewline \\N backslash \\ quote ' \" ünïcødé 😀 \r end"
    ingest_records(
        account=acme,
        records=[
            rec(
                "req\\with\ttab",
                model="m\\1",
                error_message=awkward,
                user_agent="ua\t\\N",
                error_details={"k\\": [awkward, None, 1.5, True]},
                tags={"t\t": "v\\n"},
                request_params={"stop": ["\n", "\\"]},
                api_key="key\\N",
            )
        ],
    )
    row = RequestLog.objects.get(account=acme)
    assert row.request_id == "req\\with\ttab" and row.model == "m\\1"
    assert row.error_message == awkward and row.user_agent == "ua\t\\N"
    assert row.error_details == {"k\\": [awkward, None, 1.5, True]}
    assert row.tags == {"t\t": "v\\n"} and row.request_params == {"stop": ["\n", "\\"]}
    assert row.api_key == "key\\N" and ApiKey.objects.get().identifier == "key\\N"
    assert row.timestamp == datetime(2026, 11, 20, 12, 0, 0, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_json_null_error_details_and_scalars(acme):
    ingest_records(account=acme, records=[rec("a", error_details="plain"), rec("b", error_details=[1]), rec("c")])
    details = dict(RequestLog.objects.values_list("request_id", "error_details"))
    assert details == {"a": "plain", "b": [1], "c": None}


@pytest.mark.django_db
def test_big_batch_in_one_go(acme):
    records = [
        rec(f"r{n}", prompt_tokens=n, completion_tokens=1, cost="0.000001", model=f"m{n % 3}") for n in range(2500)
    ]
    result = ingest_records(account=acme, records=records)
    assert (result.accepted, result.duplicates, result.rejected) == (2500, 0, [])
    assert RequestLog.objects.filter(account=acme).count() == 2500
    assert sum(RequestLog.objects.values_list("prompt_tokens", flat=True)) == sum(range(2500))
    assert sum(RequestLog.objects.values_list("cost", flat=True)) == Decimal("0.0025")
    assert sorted(AccountModel.objects.values_list("model", flat=True)) == ["m0", "m1", "m2"]


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_rows_land_in_their_retention_and_week_partition(acme, globex):
    forget_known_partitions()
    now = datetime.now(UTC)
    a_ts, b_ts = now - timedelta(days=2), now - timedelta(days=40)
    ingest_records(account=acme, records=[rec("a", timestamp=a_ts.isoformat())])
    ingest_records(account=globex, records=[rec("b", timestamp=b_ts.isoformat())])
    with connection.cursor() as cursor:
        cursor.execute("SELECT request_id, tableoid::regclass::text FROM logs_requestlog ORDER BY request_id")
        placement = dict(cursor.fetchall())
    # acme: standard tier, 30 days -> daily partitions; globex: professional, 90 days ->
    # monthly partitions.
    assert placement == {"a": f"logs_requestlog_r30_p{a_ts:%Y%m%d}", "b": f"logs_requestlog_r90_p{b_ts:%Y%m01}"}


def _log_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'logs\\_requestlog\\_r%%' AND relkind IN ('r', 'p')"
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_old_records_go_to_the_class_default_not_a_partition_per_week(client, acme):
    """A backfill over 100 weeks creates only the live weeks' partitions; the records past
    retention are accepted and wait in the class's default partition for the purge, and
    the default-partition alarm stays quiet about them."""
    forget_known_partitions()
    now = datetime.now(UTC)
    before = _log_tables()
    records = [rec(f"w{week}", timestamp=(now - timedelta(weeks=week, hours=1)).isoformat()) for week in range(100)]
    response = client.post(
        "/api/v1/ingest",
        data=json.dumps(records),
        content_type="application/json",
        headers={"authorization": f"Bearer {ApiToken.generate(account=acme, scope='ingest')[1]}"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 100
    created = _log_tables() - before
    assert len(created) <= max_new_partitions(30), sorted(created)
    horizon = expired_before(30)
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT count(*), count(*) FILTER (WHERE "timestamp" < %s) FROM logs_requestlog_r30_default', [horizon]
        )
        in_default, expired = cursor.fetchone()
    # Past retention and in a week that ends before the horizon: the week that straddles
    # the horizon has its partition, for the records in it that are still kept.
    stamps = [now - timedelta(weeks=week, hours=1) for week in range(100)]
    old = sum(1 for ts in stamps if next_period_start(30, period_start(30, ts)) <= horizon)
    assert (in_default, expired) == (old, old) and old >= 94
    assert RequestLog.objects.filter(account=acme).count() == 100
    assert default_partition_rows() == {}
    # Still readable until the purge: the oldest record through the query API.
    listed = client.get(
        "/api/v1/logs",
        {"request_id": "w99"},
        headers={"authorization": f"Bearer {ApiToken.generate(account=acme, scope='read')[1]}"},
    )
    assert listed.status_code == 200 and [r["request_id"] for r in listed.json()["results"]] == ["w99"]


def test_a_batch_creates_a_bounded_number_of_partitions():
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    for days in (1, 7, 30, 31, 32, 90, 365, 3650):
        stamps = [now - timedelta(hours=h) for h in range(0, 24 * 4000, 6)]
        # + 2 for the class table and its default.
        assert len(live_period_starts(days, stamps, now)) + 2 <= max_new_partitions(days), days


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_the_same_ids_store_each_once():
    account = make_account("race")
    other = make_account("other")
    batch = [rec(f"r{n}", api_key="k") for n in range(300)]
    results, errors = [], []
    start = threading.Barrier(4)

    def send(target):
        try:
            start.wait()
            results.append((target.slug, ingest_records(account=target, records=batch)))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(a,)) for a in (account, account, account, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    race = [r for slug, r in results if slug == "race"]
    assert sum(r.accepted for r in race) == 300
    assert sum(r.duplicates for r in race) == 600
    assert [r.accepted for slug, r in results if slug == "other"] == [300]
    assert RequestLog.objects.filter(account=account).count() == 300
    assert RequestLog.objects.filter(account=other).count() == 300
    assert ApiKey.objects.filter(account=account).count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_days_inside_a_week_of_the_earlier_weekly_grain_get_no_partition_of_their_own():
    """Short classes were partitioned by week before they were by day: a day that an existing
    weekly period covers goes on using it, and the first day after it gets its own."""
    account = make_account("grain", retention_days_override=29)
    now = datetime.now(UTC)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    week_start = today - timedelta(days=8)
    create_partitions(29, [])  # the class table
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE logs_requestlog_r29_w PARTITION OF logs_requestlog_r29 "
            f"FOR VALUES FROM ('{week_start.isoformat()}') TO ('{(week_start + timedelta(days=7)).isoformat()}')"
        )
    inside, after = week_start + timedelta(days=3, hours=5), today - timedelta(hours=1)
    ingest_records(account=account, records=[rec("in", timestamp=inside.isoformat())])
    ingest_records(account=account, records=[rec("after", timestamp=after.isoformat())])
    with connection.cursor() as cursor:
        cursor.execute("SELECT request_id, tableoid::regclass::text FROM logs_requestlog WHERE account_id = %s",
                       [account.pk])  # fmt: skip
        placement = dict(cursor.fetchall())
    assert placement == {"in": "logs_requestlog_r29_w", "after": period_table(29, period_start(29, after))}
    assert period_start(29, after) == datetime(after.year, after.month, after.day, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [period_table(29, period_start(29, inside))])
        assert cursor.fetchone()[0] is None
