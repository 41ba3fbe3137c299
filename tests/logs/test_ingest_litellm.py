"""POST /api/v1/ingest/litellm with one real batch from LiteLLM's generic_api logger."""

import copy
import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from console.models import ApiToken
from logs.ingest.litellm import litellm_to_record
from logs.models import ApiKey, RequestLog
from logs.partitions import forget_known_partitions

URL = "/api/v1/ingest/litellm"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "litellm_generic_api_batch.json"


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    # partitions._known outlives a test's rolled-back transaction (see the report on
    # ensure_partitions); start every test from the catalog.
    forget_known_partitions()


@pytest.fixture
def batch() -> list[dict]:
    return json.loads(FIXTURE.read_text())


@pytest.fixture
def ingest_token(acme) -> str:
    return ApiToken.generate(account=acme, scope="ingest")[1]


def post(client, token, body: bytes, content_type="application/json", **headers):
    return client.post(
        URL, data=body, content_type=content_type, headers={"Authorization": f"Bearer {token}", **headers}
    )


def ts(epoch: str) -> datetime:
    seconds, micros = epoch.split(".")
    return datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=int(micros))


EXPECTED = {
    "chatcmpl-758f510d-fac2-40ec-896b-c67a90cf2303": {
        "timestamp": ts("1795556997.356026"),
        "model": "gpt-4o-mini",
        "status": "success",
        "prompt_tokens": 8,
        "completion_tokens": 5,
        "total_tokens": 13,
        "cached_tokens": None,
        "reasoning_tokens": 0,
        "cost": Decimal("0.000004200000"),
        "price_id": None,
        "api_key": "litellm_proxy_master_key",
        "ip_address": "127.0.0.1",
        "user_agent": "OpenAI/Python 3.57.0",
        "latency_ms": 1250,
        "request_params": {"stream": True, "stream_options": {"include_usage": True}},
        "error_code": "",
        "error_message": "",
        "error_details": None,
    },
    "ae2e81b6-e668-4cf9-9bd0-e3d3cbaa4b92": {
        "timestamp": ts("1795556998.626509"),
        "model": "flaky-429",
        "status": "error",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "cost": Decimal("0E-12"),
        "price_id": None,
        "api_key": "litellm_proxy_master_key",
        "ip_address": "127.0.0.1",
        "user_agent": "OpenAI/Python 3.57.0",
        "latency_ms": 2,
        "request_params": {"stream": False},
        "error_code": "429",
        "error_message": "litellm.RateLimitError: this is a mock rate limit error",
        "error_details": {"error_class": "RateLimitError", "llm_provider": "openai"},
    },
    "05176ac3-8cf7-4422-90e9-7d83488918f8": {
        "timestamp": ts("1795556998.673946"),
        "model": "flaky-500",
        "status": "error",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "cost": Decimal("0E-12"),
        "price_id": None,
        "api_key": "litellm_proxy_master_key",
        "ip_address": "127.0.0.1",
        "user_agent": "OpenAI/Python 3.57.0",
        "latency_ms": 2,
        "request_params": {"stream": False},
        "error_code": "500",
        "error_message": "litellm.InternalServerError: this is a mock internal server error",
        "error_details": {"error_class": "InternalServerError", "llm_provider": "openai"},
    },
    "fba22bae-dba2-4773-afcf-a93235fb34e3": {
        "timestamp": ts("1795556998.738357"),
        "model": "gpt-4o-mini",
        "status": "error",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "cost": Decimal("0E-12"),
        "price_id": None,
        # LiteLLM's hashed key is 64 hex digits: masked like any hex key (logs.secrets).
        "api_key": "…7471",
        "ip_address": None,
        "user_agent": "",
        "latency_ms": 1,
        "request_params": {},
        "error_code": "400",
        "error_message": "No connected db.",
        "error_details": {"error_class": "ProxyException"},
    },
}


def _assert_stored_as_expected(account):
    rows = {row.request_id: row for row in RequestLog.objects.filter(account=account)}
    assert set(rows) == set(EXPECTED)
    for request_id, expected in EXPECTED.items():
        row = rows[request_id]
        actual = {field: getattr(row, field) for field in expected}
        assert actual == expected, request_id
        assert row.retention_days == account.retention_days
        assert row.tags == {}


@pytest.mark.django_db
def test_fixture_batch_maps_every_field(client, acme, ingest_token, batch):
    response = post(client, ingest_token, json.dumps(batch).encode())
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 4, "duplicates": 0, "rejected": []}
    _assert_stored_as_expected(acme)
    assert sorted(ApiKey.objects.filter(account=acme).values_list("identifier", flat=True)) == [
        "litellm_proxy_master_key",
        "…7471",
    ]


@pytest.mark.django_db
def test_no_prompt_or_response_text_is_stored(client, acme, ingest_token, batch):
    marked = copy.deepcopy(batch)
    marked[0]["messages"][0]["content"] = "MARKER-PROMPT-7f3a"
    marked[1]["response"] = {"choices": [{"message": {"content": "MARKER-COMPLETION-7f3a"}}]}
    post(client, ingest_token, json.dumps(batch[:1] + marked[1:]).encode())
    post(client, ingest_token, json.dumps(marked[:1]).encode())  # same id: a duplicate, not stored
    stored = set()
    for row in RequestLog.objects.filter(account=acme).values():
        for value in row.values():
            stored.update(_strings(value))
    dump = " ".join(stored)
    for payload in batch:
        # The response echoes the request's own id and model, which are stored as such.
        allowed = {payload["id"], payload["response"].get("model")}
        for text in _strings(payload["messages"]) + _strings(payload["response"]):
            assert text in allowed or text not in stored, text
        assert not {"messages", "response", "content", "role", "choices"} & stored
    assert "MARKER" not in dump and "streamed mock reply text" not in dump


@pytest.mark.django_db
def test_ndjson_gzip_and_resend(client, acme, ingest_token, batch):
    ndjson = "\n".join(json.dumps(payload) for payload in batch).encode()
    response = post(client, ingest_token, gzip.compress(ndjson), "application/x-ndjson", **{"Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 4, "duplicates": 0, "rejected": []}
    # LiteLLM retries a failed flush with the same payloads: all duplicates, nothing stored twice.
    assert post(client, ingest_token, json.dumps(batch).encode()).json() == {
        "accepted": 0,
        "duplicates": 4,
        "rejected": [],
    }
    _assert_stored_as_expected(acme)


@pytest.mark.django_db
def test_single_object_and_unlabelled_ndjson(client, acme, ingest_token, batch):
    assert post(client, ingest_token, json.dumps(batch[0]).encode()).json()["accepted"] == 1
    unlabelled = "\n".join(json.dumps(payload) for payload in batch[1:]).encode()
    assert post(client, ingest_token, unlabelled).json()["accepted"] == 3
    _assert_stored_as_expected(acme)


@pytest.mark.django_db
def test_bad_payloads_are_rejected_by_index(client, acme, ingest_token, batch):
    broken = copy.deepcopy(batch[0])
    broken["status"] = "pending"
    broken["startTime"] = "soon"
    body = [broken, 42, batch[1]]
    data = post(client, ingest_token, json.dumps(body).encode()).json()
    assert data["accepted"] == 1
    assert [(r["index"], sorted(r["errors"])) for r in data["rejected"]] == [
        (0, ["status", "timestamp"]),
        (1, ["non_field_errors"]),
    ]


@pytest.mark.django_db
def test_read_token_and_missing_token(client, acme, batch):
    read = ApiToken.generate(account=acme, scope="read")[1]
    assert post(client, read, json.dumps(batch).encode()).status_code == 403
    assert client.post(URL, data=json.dumps(batch), content_type="application/json").status_code == 401


def test_mapping_prefers_alias_metadata_and_usage_details(batch):
    payload = copy.deepcopy(batch[0])
    payload["metadata"]["user_api_key_alias"] = "search-team"
    payload["metadata"]["usage_object"]["prompt_tokens_details"] = {"cached_tokens": 6}
    payload["metadata"]["usage_object"]["completion_tokens_details"]["reasoning_tokens"] = 3
    payload["requester_ip_address"] = None
    payload["metadata"]["requester_ip_address"] = "10.1.2.3"
    payload["model_parameters"]["messages"] = [{"content": "leak"}]
    del payload["model_group"]
    record = litellm_to_record(payload)
    assert record["api_key"] == "search-team"
    assert (record["cached_tokens"], record["reasoning_tokens"]) == (6, 3)
    assert record["ip_address"] == "10.1.2.3"
    assert record["model"] == "openai/gpt-4o-mini"
    assert "messages" not in record and "response" not in record
    assert record["cost"] == 4.2000000000000004e-06


def _strings(value) -> list[str]:
    """Every string in a JSON value, object keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.django_db
def test_hostile_payload_fields_are_rejected_not_500(client, acme, ingest_token, batch):
    hostile = copy.deepcopy(batch[0])
    hostile["status"] = {"nested": "status"}
    hostile["endTime"] = float("inf")
    response = post(client, ingest_token, json.dumps([hostile]).encode())
    assert response.status_code == 200
    assert response.json()["rejected"][0]["errors"] == {"status": ["Must be 'success' or 'error'."]}
