"""Costs and times are written one way across the API: a cost is a decimal string exact to 12
places without trailing zeros (a record's and a usage sum's alike), unpriced is null and
counted, never "0"; record times are UTC with Z, usage bucket edges keep the zone's offset."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from logs.ingest.services import ingest_records
from tests.api.conftest import BASE

COST = re.compile(r"\d+(\.\d{0,11}[1-9])?")  # no trailing zero, no exponent, at most 12 places
Z_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _record(request_id, model, cost, hours=0):
    record = {
        "request_id": request_id,
        "timestamp": (BASE + timedelta(hours=hours)).isoformat(),
        "model": model,
        "status": "success",
        "prompt_tokens": 10,
        "completion_tokens": 5,
    }
    return record if cost is None else {**record, "cost": cost}


@pytest.fixture
def priced_and_not(acme):
    acme.timezone = "Asia/Kolkata"
    acme.save()
    records = [
        _record("p1", "priced", "4.12731"),
        _record("p2", "priced", "0.000000000001", hours=1),
        _record("m1", "mixed", "0.25"),
        _record("m2", "mixed", None),
        _record("u1", "unpriced", None),  # no cost sent and no price known for the model
        _record("u2", "unpriced", None, hours=2),
        _record("f1", "free", "0"),  # priced at zero: "0", which null must not be confused with
    ]
    result = ingest_records(account=acme, records=records)
    assert result.accepted == len(records)


def _usage(get, **params):
    response = get("/api/v1/usage", {"start": "2026-11-20", "end": "2026-11-21", **params})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_a_wholly_unpriced_group_costs_null_not_zero(get, priced_and_not):
    (bucket,) = _usage(get, group_by="model")["buckets"]
    by_model = {r["model"]: r for r in bucket["results"]}
    assert by_model["unpriced"]["cost"] is None
    assert by_model["unpriced"]["unpriced_requests"] == 2 == by_model["unpriced"]["requests"]
    # Partly priced: the priced requests' cost, and the count of the others.
    assert (by_model["mixed"]["cost"], by_model["mixed"]["unpriced_requests"]) == ("0.25", 1)
    # Every result says it, 0 included.
    assert (by_model["priced"]["cost"], by_model["priced"]["unpriced_requests"]) == ("4.127310000001", 0)
    assert (by_model["free"]["cost"], by_model["free"]["unpriced_requests"]) == ("0", 0)


@pytest.mark.django_db
def test_ungrouped_totals_count_the_unpriced_and_cost_the_priced(get, priced_and_not):
    (bucket,) = _usage(get)["buckets"]
    (total,) = bucket["results"]
    assert total["requests"] == 7 and total["unpriced_requests"] == 3
    assert total["cost"] == "4.377310000001"


@pytest.mark.django_db
def test_hour_buckets_say_null_for_an_hour_of_unpriced_requests(get, priced_and_not):
    buckets = _usage(
        get, bucket="hour", timezone="UTC", start="2026-11-20T10:00:00Z", end="2026-11-20T13:00:00Z", group_by="model"
    )
    results = [{r["model"]: (r["cost"], r["unpriced_requests"]) for r in b["results"]} for b in buckets["buckets"]]
    assert results == [
        {"priced": ("4.12731", 0), "mixed": ("0.25", 1), "unpriced": (None, 1), "free": ("0", 0)},
        {"priced": ("0.000000000001", 0)},
        {"unpriced": (None, 1)},
    ]


@pytest.mark.django_db
def test_record_costs_add_up_to_the_usage_cost_character_for_character(get, priced_and_not):
    records = get("/api/v1/logs", {"model": "priced"}).json()["results"]
    costs = [r["cost"] for r in records]
    assert costs == ["0.000000000001", "4.12731"]
    assert all(COST.fullmatch(cost) for cost in costs)
    (bucket,) = _usage(get, model="priced")["buckets"]
    summed = sum(Decimal(cost) for cost in costs)
    assert bucket["results"][0]["cost"] == format(summed, "f") == "4.127310000001"
    # Unpriced records are null, as the usage API's wholly unpriced group.
    assert {r["cost"] for r in get("/api/v1/logs", {"model": "unpriced"}).json()["results"]} == {None}


@pytest.mark.django_db
def test_record_times_are_utc_with_z_and_bucket_edges_keep_the_zones_offset(get, rows, priced_and_not):
    for record in get("/api/v1/logs").json()["results"]:
        assert Z_TIME.fullmatch(record["timestamp"]), record["timestamp"]
    for event in get("/api/v1/alerts/events").json()["results"]:
        for name in ("time", "window_start", "window_end"):
            assert Z_TIME.fullmatch(event[name]), event[name]
    body = _usage(get)  # the account's zone, Asia/Kolkata
    assert (body["start"], body["end"]) == ("2026-11-20T00:00:00+05:30", "2026-11-21T00:00:00+05:30")
    assert [(b["start"], b["end"]) for b in body["buckets"]] == [(body["start"], body["end"])]
    body = _usage(get, timezone="UTC")
    assert body["buckets"][0]["start"] == "2026-11-20T00:00:00+00:00"


@pytest.mark.django_db
def test_the_schema_documents_it(client):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    result = components["UsageResult"]["properties"]
    assert result["cost"]["nullable"] is True and "null when every request" in result["cost"]["description"]
    assert "unpriced_requests" in components["UsageResult"]["required"]
    assert "offset" in components["UsageBucket"]["properties"]["start"]["description"]
    for path in (
        "/api/v1/logs",
        "/api/v1/usage",
        "/api/v1/alerts/events",
        "/api/v1/export",
        "/api/v1/logs/{request_id}",
    ):
        assert "400" in schema["paths"][path]["get"]["responses"], path
    usage = schema["paths"]["/api/v1/usage"]["get"]["description"]
    assert "keep the offset" in usage and "unknown parameter answers 400" in usage
