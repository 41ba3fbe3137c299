"""Shared by the tests of what every API endpoint says the same way (tests/api/)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alerts.models import AlertEvent, RuleKind
from console.models import ApiToken
from tests.factories import make_log

# Every GET endpoint that takes query parameters (the detail takes none: tested on its own).
GET_ENDPOINTS = ["/api/v1/logs", "/api/v1/export", "/api/v1/usage", "/api/v1/alerts/events"]
BASE = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def read_token(acme):
    return ApiToken.generate(account=acme, scope="read")[1]


@pytest.fixture
def get(client, read_token):
    def _get(path, params=None, token=read_token):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return client.get(path, params or {}, **headers)

    return _get


@pytest.fixture
def rows(acme, globex):
    """Six acme records an hour apart from BASE (two models), one globex record, and five acme
    alert events an hour apart."""
    made = [
        make_log(acme, request_id=f"r{i}", timestamp=BASE + timedelta(hours=i), model="gpt-4o" if i % 2 else "claude")
        for i in range(6)
    ]
    make_log(globex, request_id="g0", timestamp=BASE)
    for n in range(5):
        AlertEvent.objects.create(
            account=acme, kind=RuleKind.BUDGET, state="fired", value=Decimal(n), threshold=Decimal(1),
            window_start=BASE, window_end=BASE, created_at=BASE + timedelta(hours=n),
        )  # fmt: skip
    return made
