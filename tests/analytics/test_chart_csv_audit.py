"""A chart's CSV download (/analytics/?format=csv) is an export: it goes into the account's
access log with the chart, the period and the filters; a refused one writes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from console.models import AuditAction, AuditEvent
from logs.ingest.services import ingest_records

pytestmark = pytest.mark.django_db


def test_chart_csv_is_logged_for_the_account(client, acme, globex, charlie):
    now = timezone.now()
    records = [
        {
            "request_id": f"r-{i}",
            "timestamp": (now - timedelta(hours=i + 1)).isoformat(),
            "model": "gpt-4o-mini",
            "status": "success",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost": "0.0001",
        }
        for i in range(3)
    ]
    ingest_records(account=acme, records=records)
    client.force_login(charlie)
    params = {"tab": "cost", "range": "7d", "chart": "cost_by_model", "format": "csv", "model": "gpt-4o-mini"}
    response = client.get("/analytics/", params, REMOTE_ADDR="192.0.2.4")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    event = AuditEvent.objects.get()
    assert (event.account, event.username, event.action, event.ip_address) == (
        acme,
        "charlie@acme.test",
        AuditAction.REPORT_EXPORTED,
        "192.0.2.4",
    )
    assert event.details["chart"] == "cost_by_model" and event.details["tab"] == "cost"
    assert event.details["filters"] == {"tab": "cost", "range": "7d", "model": "gpt-4o-mini"}
    assert " – " in event.details["period"]
    # A chart the tab does not have is refused (400) and not logged.
    bad = client.get("/analytics/", {**params, "chart": "no_such_chart"})
    assert bad.status_code == 400
    assert AuditEvent.objects.count() == 1
    assert not AuditEvent.objects.filter(account=globex).exists()
