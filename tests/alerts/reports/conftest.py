"""Rows for the report tests: acme (Europe/Berlin) in October and November 2026, globex in
November with its own model and key; and a real SMTP server (aiosmtpd) per test."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from console.email_url import parse_email_url
from logs.ingest.services import ingest_records
from logs.models import RequestLog
from tests.console.test_mail import start_server

BERLIN = ZoneInfo("Europe/Berlin")


def records(prefix: str, *, start: datetime, n: int, step: timedelta, models: list[str], keys: list[str]) -> list:
    """n requests `step` apart from `start`: every 4th an error (two codes), every 7th unpriced."""
    out = []
    for i in range(n):
        record = {
            "request_id": f"{prefix}-{i:04d}",
            "timestamp": (start + i * step).isoformat(),
            "model": models[i % len(models)],
            "status": "error" if i % 4 == 0 else "success",
            "prompt_tokens": 100 + 7 * i,
            "completion_tokens": 20 + i,
            "api_key": keys[i % len(keys)],
        }
        if i % 7 != 6:
            record["cost"] = str(Decimal(i + 1) / Decimal(10_000))
        if record["status"] == "error":
            record["error_code"] = "rate_limited" if i % 8 == 0 else "timeout"
        out.append(record)
    return out


def ingest(account, rows):
    result = ingest_records(account=account, records=rows)
    assert (result.accepted, result.rejected) == (len(rows), [])


def expected(account, first_day, last_day, zone=BERLIN, **filters):
    """Sums over the stored rows of the local days [first_day, last_day], computed here."""
    rows = [
        row
        for row in RequestLog.objects.filter(account=account, **filters)
        if first_day <= row.timestamp.astimezone(zone).date() <= last_day
    ]
    return {
        "requests": len(rows),
        "errors": sum(1 for row in rows if row.status == "error"),
        "tokens": sum(row.total_tokens for row in rows),
        "cost": sum((row.cost for row in rows if row.cost is not None), Decimal(0)),
        "days": {
            day: sum(1 for row in rows if row.timestamp.astimezone(zone).date() == day)
            for day in {row.timestamp.astimezone(zone).date() for row in rows}
        },
    }


@pytest.fixture
def report_data(acme, globex):
    acme.timezone = "Europe/Berlin"
    acme.save(update_fields=["timezone"])
    # Both ends of November in Berlin: 23:30 UTC on Oct 31 is already Nov 1 there.
    november = records("acme-nov", start=datetime(2026, 10, 31, 23, 30, tzinfo=UTC), n=300,
                       step=timedelta(minutes=144), models=["gpt-4o", "claude-3"],
                       keys=["team-a", "team-b", "team-c"])  # fmt: skip
    october = records("acme-oct", start=datetime(2026, 10, 1, 6, 0, tzinfo=UTC), n=100,
                      step=timedelta(hours=7), models=["gpt-4o"], keys=["team-a"])  # fmt: skip
    ingest(acme, november + october)
    ingest(globex, records("globex", start=datetime(2026, 11, 2, tzinfo=UTC), n=40, step=timedelta(hours=9),
                           models=["globex-secret-model"], keys=["globex-secret-key"]))  # fmt: skip
    return acme


@pytest.fixture
def smtp_server():
    controller, inbox = start_server()
    with override_settings(
        **parse_email_url(f"smtp://127.0.0.1:{controller.port}"),
        EMAIL_TIMEOUT=5,
        DEFAULT_FROM_EMAIL="Meterlog <meterlog@example.test>",
        METERLOG_BASE_URL="https://meterlog.example.test",
    ):
        yield inbox
    controller.stop()
