"""Helpers of the alert tests: traffic put in through ingest (so the rollups are the ones
ingest writes), and the events handed to notify."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from logs.ingest.services import ingest_records

_ids = count(1)
# A fixed "now" for the passes (well inside every retention period of the tests' rows).
NOW = datetime.now(UTC).replace(hour=12, minute=7, second=0, microsecond=0) - timedelta(days=1)


def send(account, at: datetime, n: int = 1, **fields) -> None:
    """`n` requests of `account` at `at` (a datetime), with `fields` over the defaults."""
    records = []
    for _ in range(n):
        record = {
            "request_id": f"r{next(_ids)}",
            "timestamp": at.astimezone(UTC).isoformat(),
            "model": "gpt-4o-mini",
            "status": "success",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "cost": "0.01",
            "api_key": "team-a",
        }
        record.update({k: (str(v) if isinstance(v, Decimal) else v) for k, v in fields.items()})
        records.append(record)
    result = ingest_records(account=account, records=records)
    assert result.accepted == n, result


@pytest.fixture
def notified(monkeypatch):
    """The events each committed pass handed to alerts.notifications.notify."""
    calls = []
    monkeypatch.setattr("alerts.notifications.notify", lambda events: calls.append(list(events)))
    return calls
