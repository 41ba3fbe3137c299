"""GET /api/v1/logs and /api/v1/logs/<request_id> against known rows.

Each filter test computes the expected request ids from the rows' own definition with a
plain Python predicate, so the API answer is compared with an independent result.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from console.models import ApiToken
from logs import partitions
from logs.api import query_views
from logs.api.params import sign_cursor
from logs.api.query_views import CURSOR_SCOPE
from logs.api.serializers import LogRecordSerializer
from logs.pagination import encode_cursor
from logs.selectors import QueryTimeout
from tests.factories import make_log

LIST_URL = "/api/v1/logs"
BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"]
KEYS = ["team-a", "team-b", "sk-…a1b2"]


def _slot(i: int) -> int:
    # Rows 10-12 share one timestamp: the keyset must still order them by id.
    return 10 if 10 <= i <= 12 else i


def _spec(i: int) -> dict:
    """Row i of the known data: 30 rows over models, keys, statuses, IPs, tags and costs."""
    is_error = i % 5 == 0
    return {
        "request_id": f"Req-{i:03d}/chat:{i % 4}",
        "timestamp": BASE + timedelta(minutes=7 * _slot(i), microseconds=1001 * _slot(i)),
        "model": MODELS[i % 3],
        "status": "error" if is_error else "success",
        "prompt_tokens": 100 + 10 * i,
        "completion_tokens": 3 * i,
        "cached_tokens": 50 if i % 4 == 0 else None,
        "cost": None if i % 7 == 3 else Decimal(i) / Decimal(1_000_000),
        "api_key": KEYS[i % 3 if i % 4 else 0],
        "ip_address": "2001:db8::7" if i == 29 else f"10.0.0.{i % 6}",
        "tags": {"team": "search" if i % 2 else "ads", "env": "prod"},
        "error_code": ("rate_limit" if i % 10 == 0 else "timeout") if is_error else "",
        "error_message": ("Rate limit exceeded" if i % 10 == 0 else "Upstream Timeout after 30s") if is_error else "",
    }


SPECS = [_spec(i) for i in range(30)]


def _newest_first(specs) -> list[str]:
    # Created in index order, so a higher index is a higher id: the keyset tie-break.
    ordered = sorted(enumerate(specs), key=lambda item: (item[1]["timestamp"], item[0]), reverse=True)
    return [spec["request_id"] for _, spec in ordered]


def _token(account, scope="read") -> str:
    return ApiToken.generate(account=account, scope=scope)[1]


def _get(client, token, url=LIST_URL, **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(url, data=params, **headers)


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [record["request_id"] for record in response.json()["results"]]


@pytest.fixture(autouse=True)
def _forget_known_partitions():
    # logs.partitions caches the partitions it has created, but each test's transaction
    # rolls the DDL back: without this, a later test inserts into a partition that is gone.
    partitions._known.clear()


@pytest.fixture
def known_logs(acme, globex):
    for spec in SPECS:
        make_log(acme, total_tokens=spec["prompt_tokens"] + spec["completion_tokens"], **spec)
    # A globex row that matches most filters: it must never show up for acme.
    make_log(globex, request_id="globex-only", model="gpt-4o", status="error", error_code="timeout")
    return SPECS


@pytest.fixture
def read_token(acme):
    return _token(acme)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


FILTER_CASES = [
    ({"model": "gpt-4o"}, lambda s: s["model"] == "gpt-4o"),
    ({"model": ["gpt-4o", "claude-3-5-sonnet"]}, lambda s: s["model"] in ("gpt-4o", "claude-3-5-sonnet")),
    ({"status": "error"}, lambda s: s["status"] == "error"),
    ({"status": ["error", "success"]}, lambda s: True),
    ({"api_key": "team-b"}, lambda s: s["api_key"] == "team-b"),
    ({"api_key": ["team-b", "sk-…a1b2"]}, lambda s: s["api_key"] in ("team-b", "sk-…a1b2")),
    ({"ip": "10.0.0.1"}, lambda s: s["ip_address"] == "10.0.0.1"),
    ({"ip": ["10.0.0.1", "2001:db8::7"]}, lambda s: s["ip_address"] in ("10.0.0.1", "2001:db8::7")),
    ({"error_code": "rate_limit"}, lambda s: s["error_code"] == "rate_limit"),
    ({"error_code": ["rate_limit", "timeout"]}, lambda s: s["error_code"] != ""),
    ({"request_id": "Req-007/chat:3"}, lambda s: s["request_id"] == "Req-007/chat:3"),
    ({"request_id": "req-007/chat:3"}, lambda s: False),  # exact, case-sensitive
    ({"q": "req-01"}, lambda s: "req-01" in s["request_id"].lower()),
    ({"q": "TIMEOUT"}, lambda s: "timeout" in s["error_message"].lower()),
    ({"q": "chat:2"}, lambda s: "chat:2" in s["request_id"]),
    ({"min_tokens": 300}, lambda s: s["prompt_tokens"] + s["completion_tokens"] >= 300),
    ({"max_tokens": 226}, lambda s: s["prompt_tokens"] + s["completion_tokens"] <= 226),
    ({"min_tokens": 200, "max_tokens": 300}, lambda s: 200 <= s["prompt_tokens"] + s["completion_tokens"] <= 300),
    ({"min_cost": "0.000020"}, lambda s: s["cost"] is not None and s["cost"] >= Decimal("0.00002")),
    ({"max_cost": "0.000004"}, lambda s: s["cost"] is not None and s["cost"] <= Decimal("0.000004")),
    ({"tag": "team:search"}, lambda s: s["tags"]["team"] == "search"),
    ({"tag": "env:prod"}, lambda s: True),
    ({"tag": "env:dev"}, lambda s: False),
    ({"unpriced": "true"}, lambda s: s["cost"] is None),
    ({"unpriced": "false"}, lambda s: s["cost"] is not None),
    ({"start": _ts(SPECS[20]["timestamp"])}, lambda s: s["timestamp"] >= SPECS[20]["timestamp"]),
    ({"end": _ts(SPECS[20]["timestamp"])}, lambda s: s["timestamp"] < SPECS[20]["timestamp"]),
    (
        {"start": "2026-11-20T13:00:00+01:00", "end": str(int(BASE.timestamp()) + 3600)},
        lambda s: BASE <= s["timestamp"] < BASE + timedelta(hours=1),
    ),
    (
        {"model": "gpt-4o-mini", "status": "success", "api_key": "team-a", "start": _ts(SPECS[6]["timestamp"])},
        lambda s: (
            s["model"] == "gpt-4o-mini"
            and s["status"] == "success"
            and s["api_key"] == "team-a"
            and s["timestamp"] >= SPECS[6]["timestamp"]
        ),
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "predicate"), FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
def test_each_filter_returns_exactly_the_expected_rows(client, known_logs, read_token, params, predicate):
    expected = _newest_first([s for s in known_logs if predicate(s)])
    assert _ids(_get(client, read_token, limit=1000, **params)) == expected


@pytest.mark.django_db
def test_filters_are_not_vacuous(known_logs):
    # Guard for the table above: each single-value case selects some rows but not all.
    counts = {
        "gpt-4o": sum(s["model"] == "gpt-4o" for s in known_logs),
        "error": sum(s["status"] == "error" for s in known_logs),
        "unpriced": sum(s["cost"] is None for s in known_logs),
        "team-b": sum(s["api_key"] == "team-b" for s in known_logs),
        "rate_limit": sum(s["error_code"] == "rate_limit" for s in known_logs),
    }
    assert counts == {"gpt-4o": 10, "error": 6, "unpriced": 4, "team-b": 7, "rate_limit": 3}


@pytest.mark.django_db
def test_pages_of_seven_cover_every_row_once_newest_first(client, known_logs, read_token):
    seen, sizes, cursor = [], [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = _get(client, read_token, **params).json()
        sizes.append(len(body["results"]))
        seen += [record["request_id"] for record in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sizes == [7, 7, 7, 7, 2]
    assert seen == _newest_first(known_logs)
    assert len(set(seen)) == 30


@pytest.mark.django_db
def test_pages_keep_the_filter(client, known_logs, read_token):
    seen, cursor = [], None
    for _ in range(10):
        body = _get(client, read_token, model="gpt-4o", limit=3, **({"cursor": cursor} if cursor else {})).json()
        seen += [record["request_id"] for record in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == _newest_first([s for s in known_logs if s["model"] == "gpt-4o"])


@pytest.mark.django_db
def test_last_full_page_has_no_next_cursor_when_nothing_is_left(client, acme, read_token):
    for minute in range(4):
        make_log(acme, timestamp=BASE + timedelta(minutes=minute))
    body = _get(client, read_token, limit=4).json()
    assert len(body["results"]) == 4
    assert body["next_cursor"] is None


@pytest.mark.django_db
def test_start_inclusive_end_exclusive_to_the_microsecond(client, acme, read_token):
    t = datetime(2026, 11, 24, 21, 42, 31, 123456, tzinfo=UTC)
    for offset in range(3):
        make_log(acme, request_id=f"at+{offset}us", timestamp=t + timedelta(microseconds=offset))
    one_us = timedelta(microseconds=1)
    assert _ids(_get(client, read_token, start=_ts(t + one_us), end=_ts(t + 2 * one_us))) == ["at+1us"]
    assert _ids(_get(client, read_token, start=_ts(t))) == ["at+2us", "at+1us", "at+0us"]
    assert _ids(_get(client, read_token, end=_ts(t))) == []
    assert _ids(_get(client, read_token, end=_ts(t + one_us))) == ["at+0us"]
    # The same instant written with an offset.
    assert _ids(_get(client, read_token, start="2026-11-24T22:42:31.123458+01:00")) == ["at+2us"]


@pytest.mark.django_db
def test_range_preset_counts_back_from_now(client, acme, read_token):
    from django.utils import timezone

    now = timezone.now()
    make_log(acme, request_id="recent", timestamp=now - timedelta(minutes=30))
    make_log(acme, request_id="older", timestamp=now - timedelta(hours=2))
    assert _ids(_get(client, read_token, range="1h")) == ["recent"]
    assert _ids(_get(client, read_token, range="24h")) == ["recent", "older"]


BAD_PARAMS = [
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "abc"}, "limit"),
    ({"limit": "-5"}, "limit"),
    ({"limit": "2.5"}, "limit"),
    ({"cursor": "garbage"}, "cursor"),
    ({"cursor": "W1sxXV0"}, "cursor"),  # valid base64 of a JSON that is not [int, int]
    ({"status": "weird"}, "status"),
    ({"status": ["success", "weird"]}, "status"),
    ({"start": "notadate"}, "start"),
    ({"end": "2026-13-45"}, "end"),
    ({"ip": "300.1.1.1"}, "ip"),
    ({"min_tokens": "-1"}, "min_tokens"),
    ({"max_tokens": "many"}, "max_tokens"),
    ({"min_cost": "-0.5"}, "min_cost"),
    ({"tag": "novalue"}, "tag"),
    ({"range": "2y"}, "range"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "name"), BAD_PARAMS, ids=[str(c[0]) for c in BAD_PARAMS])
def test_bad_parameter_answers_400_naming_it(client, acme, read_token, params, name):
    response = _get(client, read_token, **params)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [name]
    assert all(isinstance(message, str) and message for message in errors[name])


@pytest.mark.django_db
def test_several_bad_parameters_are_reported_together(client, acme, read_token):
    response = _get(client, read_token, limit="0", cursor="garbage", status="weird", ip="300.1.1.1")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"limit", "cursor", "status", "ip"}


@pytest.mark.django_db
def test_limit_bounds_are_accepted(client, acme, read_token):
    make_log(acme)
    assert len(_ids(_get(client, read_token, limit="1"))) == 1
    assert len(_ids(_get(client, read_token, limit="1000"))) == 1
    assert len(_ids(_get(client, read_token))) == 1  # default 100


@pytest.mark.django_db
def test_a_cursor_from_another_query_is_just_a_position(client, known_logs, read_token):
    # A cursor this endpoint signed is a (timestamp, id) position, whatever filters made it:
    # rows strictly older than it. The same position unsigned answers 400 (tests/api/).
    cursor = sign_cursor(encode_cursor(SPECS[25]["timestamp"], 10**12), scope=CURSOR_SCOPE)
    expected = _newest_first([s for s in known_logs if s["timestamp"] <= SPECS[25]["timestamp"]])
    assert _ids(_get(client, read_token, cursor=cursor, limit=1000)) == expected
    assert _get(client, read_token, cursor=encode_cursor(SPECS[25]["timestamp"], 10**12)).status_code == 400


@pytest.mark.django_db
def test_query_timeout_answers_422_with_a_message(client, acme, read_token, monkeypatch):
    def slow_page(**kwargs):
        raise QueryTimeout(QueryTimeout.message)

    monkeypatch.setattr(query_views, "log_page", slow_page)
    response = _get(client, read_token, q="needle")
    assert response.status_code == 422
    assert response.json() == {"detail": QueryTimeout.message, "code": "query_timeout"}


@pytest.mark.django_db
def test_tokens_missing_wrong_scope_and_unknown(client, acme, known_logs):
    assert _get(client, None).status_code == 401
    assert _get(client, _token(acme, "ingest")).status_code == 403
    assert _get(client, "mlt_not-a-real-token").status_code == 401
    detail_url = f"{LIST_URL}/{SPECS[0]['request_id']}"
    assert _get(client, None, url=detail_url).status_code == 401
    assert _get(client, _token(acme, "ingest"), url=detail_url).status_code == 403


@pytest.mark.django_db
def test_revoked_token_is_refused(client, acme):
    from django.utils import timezone

    token, raw = ApiToken.generate(account=acme, scope="read")
    token.revoked_at = timezone.now()
    token.save()
    assert _get(client, raw).status_code == 401


@pytest.mark.django_db
def test_two_accounts_never_see_each_other(client, acme, globex, known_logs):
    acme_token, globex_token = _token(acme), _token(globex)
    acme_id = SPECS[7]["request_id"]

    assert _ids(_get(client, globex_token, limit=1000)) == ["globex-only"]
    assert _ids(_get(client, globex_token, request_id=acme_id)) == []
    assert _ids(_get(client, globex_token, q="Req-")) == []
    assert _get(client, globex_token, url=f"{LIST_URL}/{acme_id}").status_code == 404

    assert "globex-only" not in _ids(_get(client, acme_token, limit=1000))
    assert _get(client, acme_token, url=f"{LIST_URL}/globex-only").status_code == 404
    assert _get(client, globex_token, url=f"{LIST_URL}/globex-only").status_code == 200


@pytest.mark.django_db
def test_detail_returns_the_bare_record_with_slashes_and_colons_in_the_id(client, acme, read_token):
    make_log(
        acme,
        request_id="gw/eu-1:chatcmpl-abc/7",
        timestamp=datetime(2026, 11, 24, 21, 42, 31, 123456, tzinfo=UTC),
        model="gpt-4o",
        status="error",
        prompt_tokens=1200,
        completion_tokens=0,
        total_tokens=1200,
        cached_tokens=1024,
        reasoning_tokens=0,
        cost=Decimal("0.000180000000"),
        api_key="sk-…a1b2",
        ip_address="203.0.113.9",
        user_agent="OpenAI/Python 1.54.0",
        latency_ms=30012,
        request_params={"temperature": 0.2, "max_tokens": 512},
        tags={"team": "search"},
        error_code="timeout",
        error_message="Upstream timed out",
        error_details={"provider": "openai", "attempts": 3},
    )
    response = _get(client, read_token, url=f"{LIST_URL}/gw/eu-1:chatcmpl-abc/7")
    assert response.status_code == 200
    assert response.json() == {
        "request_id": "gw/eu-1:chatcmpl-abc/7",
        "timestamp": "2026-11-24T21:42:31.123456Z",
        "model": "gpt-4o",
        "status": "error",
        "prompt_tokens": 1200,
        "completion_tokens": 0,
        "total_tokens": 1200,
        "cached_tokens": 1024,
        "reasoning_tokens": 0,
        "cost": "0.00018",
        "api_key": "sk-…a1b2",
        "ip_address": "203.0.113.9",
        "user_agent": "OpenAI/Python 1.54.0",
        "latency_ms": 30012,
        "request_params": {"temperature": 0.2, "max_tokens": 512},
        "tags": {"team": "search"},
        "error_code": "timeout",
        "error_message": "Upstream timed out",
        "error_details": {"provider": "openai", "attempts": 3},
    }
    # Percent-encoded slashes reach the same record.
    assert _get(client, read_token, url=f"{LIST_URL}/gw%2Feu-1%3Achatcmpl-abc%2F7").json()["model"] == "gpt-4o"
    assert _get(client, read_token, url=f"{LIST_URL}/gw/eu-1:chatcmpl-abc").status_code == 404
    assert _get(client, read_token, url=f"{LIST_URL}/nope").json() == {"detail": "No such request"}


@pytest.mark.django_db
def test_detail_of_an_id_with_a_line_break_answers_json(client, acme, read_token):
    # Found by tests/test_api_fuzz.py: <path:...> stops at a newline, so /api/v1/logs/a%0Ab
    # fell through to the console's HTML 404 page instead of the API's JSON answer.
    response = _get(client, read_token, url=f"{LIST_URL}/a%0Ab")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "No such request"}
    make_log(acme, request_id="multi\nline/id")
    response = _get(client, read_token, url=f"{LIST_URL}/multi%0Aline/id")
    assert response.status_code == 200
    assert response.json()["request_id"] == "multi\nline/id"


@pytest.mark.django_db
def test_list_and_detail_share_one_representation(client, acme, read_token):
    make_log(acme, request_id="same", cost=None, api_key="", user_agent="", error_code="", error_message="")
    listed = _get(client, read_token).json()["results"][0]
    detail = _get(client, read_token, url=f"{LIST_URL}/same").json()
    assert listed == detail
    assert list(detail) == list(LogRecordSerializer().fields)
    # Absent optional text is null, not "", and unpriced is null, not 0.
    assert {k: detail[k] for k in ("cost", "api_key", "user_agent", "error_code", "error_message")} == dict.fromkeys(
        ("cost", "api_key", "user_agent", "error_code", "error_message")
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (Decimal("0.000027000000"), "0.000027"),
        (Decimal("0"), "0"),
        (Decimal("0.000000000001"), "0.000000000001"),
        (Decimal("12.5"), "12.5"),
        (Decimal("1500"), "1500"),
        (None, None),
    ],
)
def test_cost_is_a_plain_decimal_string_or_null(client, acme, read_token, stored, shown):
    make_log(acme, cost=stored)
    assert _get(client, read_token).json()["results"][0]["cost"] == shown


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (datetime(2026, 11, 24, 21, 42, 31, tzinfo=UTC), "2026-11-24T21:42:31.000000Z"),
        (datetime(2026, 11, 24, 21, 42, 31, 5, tzinfo=UTC), "2026-11-24T21:42:31.000005Z"),
        # Stored from another zone, answered in UTC.
        (datetime.fromisoformat("2026-11-25T06:42:31.123456+09:00"), "2026-11-24T21:42:31.123456Z"),
    ],
)
def test_timestamps_are_utc_with_six_fraction_digits(client, acme, read_token, stored, shown):
    make_log(acme, timestamp=stored)
    assert _get(client, read_token).json()["results"][0]["timestamp"] == shown


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [3, 120])
def test_query_count_does_not_grow_with_the_page(client, acme, read_token, django_assert_max_num_queries, rows):
    for i in range(rows):
        make_log(acme, timestamp=BASE + timedelta(seconds=i))
    # Token lookup, its last_used_at stamp, the page (plus, on PostgreSQL, the account's
    # retention classes and the statement-timeout savepoint and settings): never one query per row.
    with django_assert_max_num_queries(7):
        response = _get(client, read_token, limit=1000)
    assert len(response.json()["results"]) == rows
