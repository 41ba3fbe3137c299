"""Rollups outlive raw rows (issue 15): the purge deletes rollup rows older than
ROLLUP_RETENTION_MONTHS in the same run, keeps the younger ones (so analytics still count
days whose raw rows are gone), and never deletes rollups under raw rows still kept."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from analytics.models import UsageDay, UsageHour, UsageMinute, UsageQuarter, UsageSlice, UsageSliceDay, UsageUtcDay
from analytics.rollups.retention import months_back, rollup_cutoff
from analytics.usage import UsageQuery, totals
from logs.gate import request_logs
from logs.ingest.services import ingest_records
from logs.retention.services import purge_expired_logs
from tests.factories import make_account
from tests.logs.test_purge import rec

TIME_COLUMN = {
    UsageQuarter: "start",
    UsageHour: "start",
    UsageSlice: "start",
    UsageSliceDay: "day",
    UsageUtcDay: "day",
    UsageDay: "day",
}


def rollup_rows(account, *, before: datetime | None = None, since: datetime | None = None) -> dict[str, int]:
    counts = {}
    for model, column in TIME_COLUMN.items():
        queryset = model.objects.filter(account=account)
        bound = (lambda t: t.date()) if column == "day" else (lambda t: t)
        if before is not None:
            queryset = queryset.filter(**{f"{column}__lt": bound(before)})
        if since is not None:
            queryset = queryset.filter(**{f"{column}__gte": bound(since)})
        counts[model.__name__] = queryset.count()
    return counts


def requests(account, start: datetime, end: datetime) -> int:
    return totals(UsageQuery(account=account, start=start, end=end, zone=UTC)).requests


def test_months_back():
    assert months_back(datetime(2026, 12, 3).date(), 25).isoformat() == "2024-11-01"
    assert months_back(datetime(2026, 1, 31).date(), 1).isoformat() == "2025-12-01"
    assert months_back(datetime(2026, 3, 15).date(), 0).isoformat() == "2026-03-01"


@pytest.mark.django_db
def test_rollups_older_than_the_setting_go_and_younger_ones_stay():
    now = datetime.now(UTC)
    cutoff = datetime.combine(rollup_cutoff(now), datetime.min.time(), tzinfo=UTC)
    old, young = cutoff - timedelta(days=20), cutoff + timedelta(days=20)
    ent = make_account("ent", tier="enterprise")
    # 1,000 days of raw rows: longer than the rollups' 25 months.
    long = make_account("long", tier="enterprise", retention_days_override=1000)
    for account in (ent, long):
        records = [rec(f"{account.slug}-{n}", ts) for n, ts in enumerate((old, young, now - timedelta(days=10)))]
        assert ingest_records(account=account, records=records).accepted == 3
    before = rollup_rows(ent, before=cutoff)
    assert all(before.values()), before  # every table holds the old row's figures
    assert requests(ent, old - timedelta(days=1), old + timedelta(days=1)) == 1

    run = purge_expired_logs()

    # Raw: ent keeps only its 10-day-old row; long keeps all three (1,000 days).
    assert list(request_logs(account=ent).values_list("request_id", flat=True)) == ["ent-2"]
    assert request_logs(account=long).count() == 3
    # ent's rollups before the cutoff are gone, from every table, and nothing younger.
    assert rollup_rows(ent, before=cutoff) == dict.fromkeys(before, 0)
    assert all(rollup_rows(ent, since=cutoff).values())
    assert run.rollups["cutoff"] == cutoff.date().isoformat() and run.rollups["months"] == 25
    assert run.rollups["tables"] == {**before, "UsageMinute": 0}
    # Analytics still count the purged raw day that the rollups keep, and not the older one.
    assert requests(ent, young - timedelta(days=1), young + timedelta(days=1)) == 1
    assert requests(ent, old - timedelta(days=1), old + timedelta(days=1)) == 0
    assert requests(ent, cutoff, now + timedelta(minutes=1)) == 2
    # long's raw rows are still there, so are all its rollups.
    assert all(rollup_rows(long, before=cutoff).values())
    assert requests(long, old - timedelta(days=1), old + timedelta(days=1)) == 1
    again = purge_expired_logs()
    assert sum(again.rollups["tables"].values()) == 0


@pytest.mark.django_db
def test_the_setting_moves_the_rollup_cutoff_and_a_dry_run_keeps_them():
    now = datetime.now(UTC)
    ent = make_account("ent", tier="enterprise")
    ts = now - timedelta(days=400)
    ingest_records(account=ent, records=[rec("a", ts)])
    rows = sum(rollup_rows(ent).values())
    with override_settings(ROLLUP_RETENTION_MONTHS=6):
        dry = purge_expired_logs(dry_run=True)
        assert sum(dry.rollups["tables"].values()) == rows and sum(rollup_rows(ent).values()) == rows
        assert {e["slug"]: e["would_delete"] for e in dry.accounts} == {"ent": 1}
        run = purge_expired_logs()
    assert sum(run.rollups["tables"].values()) == rows
    assert sum(rollup_rows(ent).values()) == 0
    assert UsageMinute.objects.filter(account=ent).count() == 0
