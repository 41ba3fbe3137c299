"""The demo's trickle: new requests through the ingest service while the demo runs, only
with DEBUG and METERLOG_DEMO_TRICKLE on, and only into the demo accounts."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from logs.demo import DEMO_ACCOUNTS
from logs.demo.tasks import demo_trickle
from logs.demo.traffic import live_records
from logs.models import RequestLog
from tests.factories import make_account

pytestmark = pytest.mark.django_db


def test_live_records_are_fresh_valid_and_new_each_time():
    now = datetime(2026, 11, 20, 12, 30, 10, tzinfo=UTC)
    first = live_records(DEMO_ACCOUNTS[0], now, 5, random.Random(1))
    again = live_records(DEMO_ACCOUNTS[0], now, 5, random.Random(2))
    assert len(first) == 5
    assert not {r["request_id"] for r in first} & {r["request_id"] for r in again}
    for record in first:
        at = datetime.fromisoformat(record["timestamp"])
        assert now - timedelta(seconds=3) <= at <= now
        assert record["latency_ms"] > 0


def test_trickle_ingests_into_the_demo_accounts_only(settings):
    settings.DEBUG = True
    settings.METERLOG_DEMO_TRICKLE = True
    demo = [make_account(d.slug, name=d.name, timezone=d.timezone) for d in DEMO_ACCOUNTS]
    outsider = make_account("initech")
    before = timezone.now()
    stored = sum(demo_trickle(max_per_account=4) for _ in range(5))
    assert stored > 0
    rows = RequestLog.objects.all()
    assert rows.count() == stored
    assert set(rows.values_list("account__slug", flat=True)) == {d.slug for d in DEMO_ACCOUNTS}
    assert not rows.filter(account=outsider).exists()
    assert all(row.timestamp >= before - timedelta(seconds=3) for row in rows)
    # Through the ingest service: priced where the model has a price, latency kept.
    assert rows.filter(latency_ms__isnull=True).count() == 0
    assert {a.pk for a in demo} == set(rows.values_list("account_id", flat=True))


@pytest.mark.parametrize(("debug", "trickle"), [(False, True), (True, False)])
def test_trickle_does_nothing_unless_debug_and_switched_on(settings, debug, trickle):
    settings.DEBUG = debug
    settings.METERLOG_DEMO_TRICKLE = trickle
    for d in DEMO_ACCOUNTS:
        make_account(d.slug, name=d.name, timezone=d.timezone)
    assert demo_trickle(max_per_account=4) == 0
    assert RequestLog.objects.count() == 0


def test_the_trickle_is_not_scheduled_unless_switched_on():
    from django.conf import settings

    # The test run has DEBUG on but METERLOG_DEMO_TRICKLE unset, as a production install has it.
    assert settings.METERLOG_DEMO_TRICKLE is False
    assert "demo-trickle" not in settings.CELERY_BEAT_SCHEDULE
