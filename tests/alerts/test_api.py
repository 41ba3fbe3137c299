"""GET /api/v1/alerts/events: the token's account's events only, UTC times with Z, the
range and filters, keyset pages, 400 naming each bad parameter."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from alerts.evaluation import evaluate_rules
from alerts.models import AlertEvent, AlertRule, RuleKind
from console.models import ApiToken
from tests.alerts.conftest import NOW, send

URL = "/api/v1/alerts/events"


def _get(client, account, **params):
    token = ApiToken.generate(account=account, scope="read")[1]
    return client.get(URL, params, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.django_db
def test_events_of_the_tokens_account(client, acme, globex):
    assert reverse("api:alert-events") == URL
    send(acme, NOW - timedelta(minutes=3), 20, status="error", prompt_tokens=200_000, api_key="team-b")
    send(globex, NOW - timedelta(minutes=3), 30, status="error")
    AlertRule.objects.filter(account=acme, kind=RuleKind.ERROR_RATE).update(api_key="team-b")
    evaluate_rules(now=NOW)
    send(acme, NOW, 400, api_key="team-b")
    evaluate_rules(now=NOW + timedelta(minutes=5), force=True)

    body = _get(client, acme).json()
    assert body["next_cursor"] is None
    assert [(e["kind"], e["state"]) for e in body["results"]] == [
        ("error_rate", "recovered"),
        ("token_spike", "fired"),  # same time as the next: newest first by id
        ("error_rate", "fired"),
    ]
    recovered, spike, fired = body["results"]
    assert fired == {
        "id": fired["id"],
        "rule_id": AlertRule.objects.get(account=acme, kind=RuleKind.ERROR_RATE).pk,
        "kind": "error_rate",
        "state": "fired",
        "value": "1",
        "threshold": "0.1",
        "model": None,
        "api_key": "team-b",
        "window_start": (NOW.replace(minute=0) - timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "window_end": NOW.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "time": NOW.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "message": "Error rate above 10% in an hour: 20 errors in 20 requests",
        "notified": True,
    }
    assert recovered["value"] == "0.047619" and spike["value"] == "200020"
    assert recovered["time"].endswith("Z")
    globex_events = _get(client, globex).json()["results"]
    assert [(e["kind"], e["state"]) for e in globex_events] == [("error_rate", "fired")]
    assert {e["id"] for e in globex_events}.isdisjoint(e["id"] for e in body["results"])


@pytest.mark.django_db
def test_range_filters_and_pages(client, acme):
    rule = AlertRule.objects.filter(account=acme).first()
    base = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    for n in range(5):
        AlertEvent.objects.create(
            account=acme, rule=rule, kind=RuleKind.BUDGET if n % 2 else RuleKind.ERROR_RATE, state="fired",
            value=Decimal(n), threshold=Decimal(1), window_start=base, window_end=base,
            created_at=base + timedelta(hours=n),
        )  # fmt: skip
    times = lambda response: [e["time"][11:13] for e in response.json()["results"]]  # noqa: E731
    assert times(_get(client, acme)) == ["14", "13", "12", "11", "10"]
    assert times(_get(client, acme, start="2026-11-20T11:00:00Z", end="2026-11-20T13:00:00Z")) == ["12", "11"]
    assert times(_get(client, acme, start="2026-11-20T16:30:00+05:30")) == ["14", "13", "12", "11"]
    assert times(_get(client, acme, kind="budget")) == ["13", "11"]
    assert times(_get(client, acme, state="recovered")) == []
    page = _get(client, acme, limit=2).json()
    assert [e["time"][11:13] for e in page["results"]] == ["14", "13"]
    rest = _get(client, acme, limit=2, cursor=page["next_cursor"]).json()
    assert [e["time"][11:13] for e in rest["results"]] == ["12", "11"]
    last = _get(client, acme, limit=2, cursor=rest["next_cursor"]).json()
    assert [e["time"][11:13] for e in last["results"]] == ["10"] and last["next_cursor"] is None


@pytest.mark.django_db
def test_bad_parameters_answer_400_naming_each(client, acme):
    response = _get(client, acme, start="yesterday", end="2026-13-01", kind="spam", state="x", limit="0", cursor="!")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"start", "end", "kind", "state", "limit", "cursor"}
    response = _get(client, acme, start="2026-11-20T12:00:00Z", end="2026-11-20T11:00:00Z")
    assert response.status_code == 400 and response.json() == {"errors": {"end": ["Must be after start."]}}
    assert client.get(URL).status_code == 401
    ingest = ApiToken.generate(account=acme, scope="ingest")[1]
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {ingest}").status_code == 403
