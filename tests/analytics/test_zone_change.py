"""Changing the reporting zone moves the daily rows to the new zone's days."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from analytics.models import MONTHLY, Projection, RollupState, UsageDay
from analytics.tasks import rebuild_after_zone_change
from logs.ingest.services import ingest_records


def _at(moment, request_id):
    return {"request_id": request_id, "timestamp": moment.isoformat(), "model": "m", "status": "success",
            "prompt_tokens": 10, "completion_tokens": 5}  # fmt: skip


@pytest.mark.django_db
def test_zone_change_moves_days_and_keeps_totals(client, acme, alice, django_capture_on_commit_callbacks):
    # 20:00 UTC yesterday-ish: the same UTC day, but the next local day in Kolkata (+05:30).
    base = (datetime.now(UTC) - timedelta(days=2)).replace(hour=20, minute=0, second=0, microsecond=0)
    ingest_records(account=acme, records=[_at(base, "a"), _at(base - timedelta(hours=10), "b")])
    daily = UsageDay.objects.filter(account=acme, projection__lt=MONTHLY)
    assert set(daily.values_list("day", flat=True)) == {base.date()}

    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/settings/", {"name": acme.name, "timezone": "Asia/Kolkata"})
    assert response.status_code == 302
    assert len(callbacks) == 1  # the rebuild is queued once the change is committed

    acme.refresh_from_db()
    assert acme.timezone == "Asia/Kolkata"
    assert rebuild_after_zone_change(acme.pk) == 2
    full = UsageDay.objects.filter(account=acme, projection=Projection.FULL)
    days = dict(full.values_list("day").annotate(n=Sum("requests")))
    assert days == {base.date(): 1, base.date() + timedelta(days=1): 1}
    months = UsageDay.objects.filter(account=acme, projection=Projection.FULL_MONTH)
    expected_months = {}
    for day in days:
        expected_months[day.replace(day=1)] = expected_months.get(day.replace(day=1), 0) + 1
    assert dict(months.values_list("day").annotate(n=Sum("requests"))) == expected_months
    assert RollupState.objects.get(account=acme).day_timezone == "Asia/Kolkata"
