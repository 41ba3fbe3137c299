"""Numbers past what their column holds are rejected by record, never the batch (issue
"Hardening"). Through the real endpoints with a real ingest token, on SQLite and PostgreSQL:
on PostgreSQL a cost that rounds past numeric(24, 12) used to fail the whole batch with a
500 (numeric field overflow), and a gateway that retried the batch was stuck forever."""

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from console.models import ApiToken
from logs.ingest import bounds
from logs.models import ModelPrice, RequestLog
from tests.factories import ingest_record as record

pytestmark = pytest.mark.django_db
INGEST = "/api/v1/ingest"
LITELLM = "/api/v1/ingest/litellm"
LITELLM_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "litellm_generic_api_batch.json"
INT_MAX = 2**31 - 1
# Just under 10^12, but 10^12 once rounded to 12 places: what used to overflow.
ROUNDS_OVER = "999999999999.9999999999995"
INT_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "latency_ms")


@pytest.fixture
def token(acme) -> str:
    return ApiToken.generate(account=acme, scope="ingest")[1]


def post(client, token, body, url=INGEST):
    # json.dumps writes NaN/Infinity as the bare words, which gateways' JSON encoders do too.
    return client.post(url, data=json.dumps(body), content_type="application/json",
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def stored_ids(account) -> list[str]:
    return sorted(RequestLog.objects.filter(account=account).values_list("request_id", flat=True))


def test_bounds_are_read_from_the_model_fields():
    assert bounds.BOUNDS["cost"] == bounds.DecimalBound(24, 12)
    assert bounds.COST.limit == Decimal(10) ** 12
    for name in INT_FIELDS:
        assert bounds.BOUNDS[name] == bounds.IntBound(0, INT_MAX), name


def test_overflowing_cost_rejects_only_its_record_and_a_retry_is_not_stuck(client, acme, token):
    body = [record(1), record(2, cost=ROUNDS_OVER), record(3, cost=1e12), record(4)]
    response = post(client, token, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["accepted"], data["duplicates"]) == (2, 0)
    assert [(r["index"], r["request_id"], list(r["errors"])) for r in data["rejected"]] == [
        (1, "req-2", ["cost"]),
        (2, "req-3", ["cost"]),
    ]
    assert "after rounding to 12 places" in data["rejected"][0]["errors"]["cost"][0]
    assert stored_ids(acme) == ["req-1", "req-4"]
    # The gateway retries the whole batch: the good ones are duplicates, nothing is stuck.
    again = post(client, token, body).json()
    assert (again["accepted"], again["duplicates"], len(again["rejected"])) == (0, 2, 2)
    assert RequestLog.objects.filter(account=acme).count() == 2


def test_cost_at_its_bound_and_past_it(client, acme, token):
    body = [
        # numeric(24, 12) holds up to 999999999999.999999999999 on PostgreSQL; SQLite keeps a
        # double and Django reads it with 15 digits, 10^12, which it cannot quantize: the
        # bound is the lower of the two, on both backends.
        record(1, cost="999999999999.999"),
        record(2, cost="999999999999.9994"),  # reads back from SQLite as 999999999999.999
        record(3, cost=ROUNDS_OVER),
        record(4, cost="1000000000000"),
        record(5, cost="1e999999999"),
        record(6, cost="0.0000000000005"),  # rounds half-up to the smallest step
        record(7, cost="999999999999.9996"),  # under 10^12, but SQLite would read back 10^12
        record(8, cost="999999999999.999999999999"),
    ]
    data = post(client, token, body).json()
    assert [(r["request_id"], list(r["errors"])) for r in data["rejected"]] == [
        ("req-3", ["cost"]),
        ("req-4", ["cost"]),
        ("req-5", ["cost"]),
        ("req-7", ["cost"]),
        ("req-8", ["cost"]),
    ]
    costs = dict(RequestLog.objects.filter(account=acme).values_list("request_id", "cost"))
    assert sorted(costs) == ["req-1", "req-2", "req-6"]
    assert costs["req-6"] == Decimal("0.000000000001")
    if connection.vendor == "postgresql":
        assert (costs["req-1"], costs["req-2"]) == (Decimal("999999999999.999"), Decimal("999999999999.9994"))
    else:  # SQLite: a double, 15 significant digits
        assert (costs["req-1"], costs["req-2"]) == (Decimal("999999999999.999"), Decimal("999999999999.999"))


@pytest.mark.parametrize("name", INT_FIELDS)
def test_each_integer_field_at_its_bound_and_one_past(client, acme, token, name):
    def fields(value: int) -> dict:
        if name == "total_tokens":
            return {"prompt_tokens": value - 1, "completion_tokens": 1, "total_tokens": value}
        if name in ("prompt_tokens", "completion_tokens"):
            other = "completion_tokens" if name == "prompt_tokens" else "prompt_tokens"
            return {name: value, other: 0, "total_tokens": value}
        return {name: value}

    response = post(client, token, [record(1, **fields(INT_MAX)), record(2, **fields(INT_MAX + 1)), record(3)])
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["accepted"] == 2
    [rejection] = data["rejected"]
    assert rejection["index"] == 1
    assert rejection["errors"][name] == [f"Must be at most {INT_MAX}."]
    assert getattr(RequestLog.objects.get(account=acme, request_id="req-1"), name) == INT_MAX
    assert stored_ids(acme) == ["req-1", "req-3"]


def test_sum_of_tokens_past_the_column_names_total_tokens(client, acme, token):
    data = post(client, token, [record(1, prompt_tokens=INT_MAX, completion_tokens=1), record(2)]).json()
    assert data["accepted"] == 1
    assert data["rejected"][0]["errors"] == {
        "total_tokens": [f"prompt_tokens + completion_tokens must be at most {INT_MAX}."]
    }


@pytest.mark.parametrize("name", [*INT_FIELDS, "cost"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1.7e308, -1, True, "12"])
def test_non_finite_absurd_and_wrong_typed_numbers_are_rejected_by_name(client, acme, token, name, value):
    if name == "cost" and value == "12":
        value = "twelve"  # a decimal string is a valid cost
    response = post(client, token, [record(1, **{name: value}), record(2)])
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["accepted"] == 1
    assert [(r["index"], list(r["errors"])) for r in data["rejected"]] == [(0, [name])]
    assert stored_ids(acme) == ["req-2"]


def test_a_computed_cost_past_the_column_rejects_its_record(client, acme, token):
    # Price x 2^31 tokens: 9,999,999,999 $/Mtok x 2,147,483,647 / 10^6 is about 2.1e13 $.
    ModelPrice.objects.create(
        model="pricey", input_per_mtok=Decimal("9999999999"), output_per_mtok=Decimal("1"),
        valid_from="2026-01-01T00:00:00Z",
    )  # fmt: skip
    body = [record(1, model="pricey", cost=None, prompt_tokens=INT_MAX, completion_tokens=0), record(2, cost=None)]
    response = post(client, token, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["accepted"] == 1
    assert [(r["index"], r["request_id"], list(r["errors"])) for r in data["rejected"]] == [(0, "req-1", ["cost"])]
    assert stored_ids(acme) == ["req-2"]
    assert RequestLog.objects.get(account=acme, request_id="req-2").cost is None  # unpriced, not 0


# LiteLLM ------------------------------------------------------------------------------


@pytest.fixture
def payload() -> dict:
    payload = json.loads(LITELLM_FIXTURE.read_text())[0]
    payload["startTime"] = 1795556997.0
    payload["endTime"] = 1795556998.5
    return payload


def litellm_batch(payload: dict, *changes: dict) -> list[dict]:
    batch = []
    for n, change in enumerate(changes):
        item = copy.deepcopy(payload)
        item["id"] = f"ll-{n}"
        item.update(change)
        batch.append(item)
    return batch


def test_litellm_absurd_times_drop_only_the_latency(client, acme, token, payload):
    start = payload["startTime"]
    changes = (
        {},  # 1.5 s
        {"endTime": 1.7e308},  # (end - start) x 1000 is inf: round() used to raise
        {"endTime": start - 5},  # end before start
        {"endTime": float("nan")},
        {"endTime": float("inf")},
        {"endTime": start + 2147483.647},  # the column's last millisecond
        {"endTime": start + 2147483.648},  # one past it
        {"endTime": 10**400},  # an int no float holds
    )
    response = post(client, token, litellm_batch(payload, *changes), url=LITELLM)
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 8, "duplicates": 0, "rejected": []}
    latencies = dict(RequestLog.objects.filter(account=acme).values_list("request_id", "latency_ms"))
    assert latencies == {
        "ll-0": 1500, "ll-1": None, "ll-2": None, "ll-3": None, "ll-4": None,
        "ll-5": INT_MAX, "ll-6": None, "ll-7": None,
    }  # fmt: skip


def test_litellm_absurd_start_time_and_numbers_reject_by_name(client, acme, token, payload):
    changes = (
        {"startTime": 1.7e308, "endTime": 1.7e308},
        {"startTime": float("nan")},
        {"response_cost": float(ROUNDS_OVER)},
        {"prompt_tokens": True},
        {"completion_tokens": 1e300},
        {},
    )
    response = post(client, token, litellm_batch(payload, *changes), url=LITELLM)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["accepted"] == 1
    names = [(r["index"], sorted(r["errors"])) for r in data["rejected"]]
    assert names[:4] == [(0, ["timestamp"]), (1, ["timestamp"]), (2, ["cost"]), (3, ["prompt_tokens"])]
    assert names[4][0] == 4 and "completion_tokens" in names[4][1]
    assert stored_ids(acme) == ["ll-5"]
