"""POST /api/v1/ingest end to end: auth, body formats and limits, dedup, privacy, secrets."""

import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from console.models import ApiToken
from logs.ingest import parsing
from logs.models import AccountModel, ApiKey, RequestLog
from logs.partitions import forget_known_partitions
from tests.factories import make_account

URL = "/api/v1/ingest"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    # partitions._known outlives a test's rolled-back transaction (see the report on
    # ensure_partitions); start every test from the catalog.
    forget_known_partitions()


def record(n: int = 1, **fields) -> dict:
    base = {
        "request_id": f"req-{n}",
        "timestamp": f"2026-11-20T12:00:{n % 60:02d}.123456Z",
        "model": "gpt-4o-mini",
        "status": "success",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost": "0.000027",
        "api_key": "team-a",
    }
    base.update(fields)
    return base


def token_for(account, scope="ingest") -> str:
    return ApiToken.generate(account=account, scope=scope)[1]


def post(client, token, body, content_type="application/json", **headers):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(URL, data=body, content_type=content_type, headers=headers)


@pytest.fixture
def acme_token(acme):
    return token_for(acme)


def test_valid_batch_is_stored_with_every_field(client, acme, acme_token):
    body = [
        record(
            1,
            total_tokens=120,
            cached_tokens=40,
            reasoning_tokens=5,
            ip_address="203.0.113.9",
            user_agent="OpenAI/Python 1.0",
            latency_ms=812,
            request_params={"temperature": 0.5},
            tags={"env": "prod"},
        ),
        record(2, status="error", error_code="429", error_message="slow down", error_details={"retry": 2}),
    ]
    response = post(client, acme_token, body)
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    row = RequestLog.objects.get(account=acme, request_id="req-1")
    assert row.timestamp == datetime(2026, 11, 20, 12, 0, 1, 123456, tzinfo=UTC)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (100, 20, 120)
    assert (row.cached_tokens, row.reasoning_tokens, row.latency_ms) == (40, 5, 812)
    assert row.cost == Decimal("0.000027000000") and row.price_id is None
    assert row.ip_address == "203.0.113.9" and row.user_agent == "OpenAI/Python 1.0"
    assert row.request_params == {"temperature": 0.5} and row.tags == {"env": "prod"}
    assert row.retention_days == acme.retention_days == 30
    error = RequestLog.objects.get(account=acme, request_id="req-2")
    assert (error.status, error.error_code, error.error_message) == ("error", "429", "slow down")
    assert error.error_details == {"retry": 2}
    assert error.cached_tokens is None and error.error_details is not None
    assert ApiKey.objects.get(account=acme).identifier == "team-a"
    assert list(AccountModel.objects.filter(account=acme).values_list("model", flat=True)) == ["gpt-4o-mini"]


def test_invalid_records_are_rejected_by_index_and_valid_ones_stored(client, acme, acme_token):
    body = [record(1), record(2, prompt_tokens=-1), "not an object", record(4, status="ok", model="")]
    response = post(client, acme_token, body)
    assert response.status_code == 200
    data = response.json()
    assert data["accepted"] == 1 and data["duplicates"] == 0
    assert [(r["index"], r["request_id"], sorted(r["errors"])) for r in data["rejected"]] == [
        (1, "req-2", ["prompt_tokens"]),
        (2, None, ["non_field_errors"]),
        (3, "req-4", ["model", "status"]),
    ]
    assert list(RequestLog.objects.values_list("request_id", flat=True)) == ["req-1"]


def test_duplicates_within_a_batch_keep_the_first(client, acme, acme_token):
    body = [record(1, model="first"), record(2), record(1, model="second"), record(1, model="third")]
    assert post(client, acme_token, body).json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    assert RequestLog.objects.get(request_id="req-1").model == "first"


def test_resending_a_batch_counts_duplicates_and_stores_once(client, acme, acme_token):
    batch = [record(n) for n in range(1, 6)]
    assert post(client, acme_token, batch).json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    again = [*batch, record(6)]
    assert post(client, acme_token, again).json() == {"accepted": 1, "duplicates": 5, "rejected": []}
    assert RequestLog.objects.filter(account=acme).count() == 6
    assert sorted(RequestLog.objects.values_list("request_id", flat=True)) == [f"req-{n}" for n in range(1, 7)]


def test_same_request_id_in_two_accounts_is_two_records(client, acme, globex, acme_token):
    globex_token = token_for(globex)
    assert post(client, acme_token, [record(1)]).json()["accepted"] == 1
    assert post(client, globex_token, [record(1, model="globex-model")]).json()["accepted"] == 1
    assert RequestLog.objects.filter(request_id="req-1").count() == 2


def test_a_token_writes_only_into_its_account(client, acme, globex):
    response = post(client, token_for(globex), [record(1), record(2)])
    assert response.json()["accepted"] == 2
    assert RequestLog.objects.filter(account=acme).count() == 0
    assert set(RequestLog.objects.values_list("account_id", flat=True)) == {globex.pk}
    assert RequestLog.objects.filter(account=globex).first().retention_days == 90  # professional tier
    assert ApiKey.objects.filter(account=acme).count() == 0


def test_gzip_body(client, acme, acme_token):
    body = gzip.compress(json.dumps([record(n) for n in range(1, 4)]).encode())
    response = post(client, acme_token, body, **{"Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}


def test_gzip_ndjson_body(client, acme, acme_token):
    lines = "\n".join(json.dumps(record(n)) for n in range(1, 4)) + "\n"
    response = post(
        client, acme_token, gzip.compress(lines.encode()), "application/x-ndjson", **{"Content-Encoding": "gzip"}
    )
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}


def test_broken_gzip_is_400(client, acme_token):
    response = post(client, acme_token, b"\x1f\x8bnot really gzip", **{"Content-Encoding": "gzip"})
    assert response.status_code == 400 and "gzip" in response.json()["detail"]


def test_unsupported_encoding_is_415(client, acme_token):
    response = post(client, acme_token, b"[]", **{"Content-Encoding": "br"})
    assert response.status_code == 415


def test_ndjson_body_with_a_bad_line_rejects_that_item(client, acme, acme_token):
    body = "\n".join([json.dumps(record(1)), "", "{not json", json.dumps(record(3)), "[1]"]).encode()
    response = post(client, acme_token, body, "application/x-ndjson")
    assert response.status_code == 200
    data = response.json()
    assert data["accepted"] == 2
    # Indexes count records (non-blank lines); the message names the physical line.
    assert [(r["index"], r["request_id"]) for r in data["rejected"]] == [(1, None), (3, None)]
    assert data["rejected"][0]["errors"]["non_field_errors"][0].startswith("line 3 is not valid JSON")


def test_ndjson_body_without_any_json_line_is_400(client, acme_token):
    response = post(client, acme_token, b"hello\nworld\n", "application/x-ndjson")
    assert response.status_code == 400
    assert "line 1" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b'{"request_id": "x"}', "JSON array"),
        (b'"text"', "JSON array"),
        (b"\xff\xfe\xfa", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_body_that_is_not_a_json_list_is_400(client, acme_token, body, fragment):
    response = post(client, acme_token, body)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


def test_empty_array_is_fine(client, acme_token):
    assert post(client, acme_token, []).json() == {"accepted": 0, "duplicates": 0, "rejected": []}


def test_missing_and_unknown_tokens_are_401(client, acme):
    assert post(client, None, [record(1)]).status_code == 401
    assert post(client, "mlt_not-a-real-token", [record(1)]).status_code == 401
    assert RequestLog.objects.count() == 0


def test_revoked_token_is_401(client, acme):
    token, raw = ApiToken.generate(account=acme, scope="ingest")
    token.revoked_at = datetime(2026, 11, 1, tzinfo=UTC)
    token.save()
    assert post(client, raw, [record(1)]).status_code == 401


def test_read_token_cannot_ingest(client, acme):
    response = post(client, token_for(acme, scope="read"), [record(1)])
    assert response.status_code == 403
    assert RequestLog.objects.count() == 0


def test_too_many_records_is_413(client, acme_token, monkeypatch):
    monkeypatch.setattr(parsing, "MAX_RECORDS", 3)
    assert post(client, acme_token, [record(n) for n in range(4)]).status_code == 413
    ndjson = "\n".join(json.dumps(record(n)) for n in range(4)).encode()
    assert post(client, acme_token, ndjson, "application/x-ndjson").status_code == 413
    assert post(client, acme_token, [record(n) for n in range(3)]).json()["accepted"] == 3


def test_ten_thousand_and_one_records_is_413(client, acme_token):
    # Tiny items: the count limit must trip before any validation work.
    response = post(client, acme_token, b"[" + b",".join([b"0"] * 10_001) + b"]")
    assert response.status_code == 413
    assert "10000" in response.json()["detail"]


def test_body_over_20_mb_is_413(client, acme_token):
    response = post(client, acme_token, b"[" + b" " * parsing.MAX_BODY_BYTES + b"]")
    assert response.status_code == 413


def test_gzip_bomb_is_413_without_inflating_it_all(client, acme_token):
    # 100 MB of spaces compresses to ~100 KB; inflating stops just past the 20 MB limit.
    bomb = gzip.compress(b"[" + b" " * (100 * 1024 * 1024) + b"]", compresslevel=9)
    assert len(bomb) < 200_000
    response = post(client, acme_token, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompressed" in response.json()["detail"]


def test_gunzip_never_returns_more_than_the_limit():
    data = gzip.compress(b"x" * 5000)
    with pytest.raises(parsing.BodyError) as exc:
        parsing.gunzip(data, limit=4096)
    assert exc.value.status == 413
    assert parsing.gunzip(data + gzip.compress(b"y"), limit=5001) == b"x" * 5000 + b"y"


def test_future_timestamp_is_rejected(client, acme_token):
    from django.utils import timezone

    ahead = (timezone.now() + timezone.timedelta(minutes=10)).isoformat()
    data = post(client, acme_token, [record(1, timestamp=ahead)]).json()
    assert data["accepted"] == 0
    assert data["rejected"][0]["errors"] == {"timestamp": ["Is more than 5 minutes in the future."]}


def test_total_tokens_mismatch_is_rejected(client, acme_token):
    data = post(client, acme_token, [record(1, total_tokens=121)]).json()
    assert data["rejected"] == [
        {
            "index": 0,
            "request_id": "req-1",
            "errors": {"total_tokens": ["Must equal prompt_tokens + completion_tokens (120), got 121."]},
        }
    ]


def test_prompt_keys_never_reach_the_database(client, acme, acme_token):
    params = {"temperature": 1, "messages": [{"content": "TOP-SECRET-PROMPT"}], "system": "TOP-SECRET-SYSTEM"}
    post(client, acme_token, [record(1, request_params=params)])
    row = RequestLog.objects.get(request_id="req-1")
    assert row.request_params == {"temperature": 1}
    assert "TOP-SECRET" not in _dump_table(RequestLog._meta.db_table)


def test_privacy_mode_drops_params_user_agent_and_full_ip(client):
    private = make_account("private", privacy_mode=True)
    token = token_for(private)
    body = [
        record(1, ip_address="203.0.113.77", user_agent="curl/8", request_params={"temperature": 1}),
        record(2, ip_address="2001:db8:abcd:12:1:2:3:4"),
    ]
    assert post(client, token, body).json()["accepted"] == 2
    one, two = RequestLog.objects.order_by("request_id")
    assert (one.ip_address, one.user_agent, one.request_params) == ("203.0.113.0", "", {})
    assert two.ip_address == "2001:db8:abcd::"
    assert "203.0.113.77" not in _dump_table(RequestLog._meta.db_table)


def test_secret_api_key_is_stored_masked_only(client, acme, acme_token):
    secret = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789a1b2"
    other = "sk-live-ZZZZZZZZZZZZZZZZZZZZZZZZZZa1b2"  # same mask, different key
    assert post(client, acme_token, [record(1, api_key=secret), record(2, api_key=other)]).json()["accepted"] == 2
    assert set(RequestLog.objects.values_list("api_key", flat=True)) == {"sk-…a1b2"}
    keys = ApiKey.objects.filter(account=acme)
    assert keys.count() == 2  # told apart by fingerprint
    assert {k.identifier for k in keys} == {"sk-…a1b2"}
    for table in (RequestLog._meta.db_table, ApiKey._meta.db_table):
        dump = _dump_table(table)
        assert secret not in dump and other not in dump
        assert "Abcdefghijklmnop" not in dump


def test_api_key_first_and_last_seen_span_the_records(client, acme, acme_token):
    post(client, acme_token, [record(5, timestamp="2026-11-20T12:00:00Z"), record(6, timestamp="2026-11-21T08:00:00Z")])
    post(client, acme_token, [record(7, timestamp="2026-11-19T00:00:00Z")])  # a backfill
    key = ApiKey.objects.get(account=acme)
    assert key.first_seen == datetime(2026, 11, 19, tzinfo=UTC)
    assert key.last_seen == datetime(2026, 11, 21, 8, tzinfo=UTC)
    seen = AccountModel.objects.get(account=acme, model="gpt-4o-mini")
    assert (seen.first_seen, seen.last_seen) == (key.first_seen, key.last_seen)


def test_records_without_api_key_make_no_key_row(client, acme, acme_token):
    post(client, acme_token, [record(1, api_key=None), record(2, api_key="")])
    assert ApiKey.objects.count() == 0
    assert set(RequestLog.objects.values_list("api_key", flat=True)) == {""}


def _dump_table(table: str) -> str:
    """Every column of every row as text: where a secret or a prompt must not appear."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return repr(cursor.fetchall())


@pytest.mark.parametrize(
    "hostile",
    [
        {"request_id": "\ud800", "status": ["success"]},
        {"request_id": ["x"], "status": {"a": 1}, "timestamp": 1e300, "model": None},
        {"request_id": "r", "timestamp": "2026-11-20T12:00:00Z", "model": "m", "status": "success", "cost": 1e308},
        {"request_id": "r", "timestamp": "2026-11-20T12:00:00Z", "model": "m", "status": "success", "tags": {"k": ""}},
        {"request_id": "r\x00", "timestamp": float("nan"), "model": "m\ud800", "status": "success"},
    ],
)
def test_hostile_records_never_cause_a_500(client, acme_token, hostile):
    body = json.dumps([hostile]).encode()  # json.dumps writes NaN and lone surrogates as JSON allows
    response = post(client, acme_token, body)
    assert response.status_code == 200
    assert response.json()["accepted"] + len(response.json()["rejected"]) == 1


def test_deeply_nested_body_is_400_not_500(client, acme_token):
    deep = b'[{"request_params": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}]"
    assert post(client, acme_token, deep).status_code == 400
