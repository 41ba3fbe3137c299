"""The export's values-only path (logs.exports.chunks reads `values_list` tuples) gives byte for byte
the file that encoding `log_record` of the model instances gives: the reference encoding
below is the one the export used before, applied to rows re-read through the ORM."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from console.models import ApiToken
from logs.api.serializers import log_record
from logs.exports import chunks
from logs.exports.format import EXPORT_FIELDS
from logs.models import RequestLog
from tests.export_reference import compact, reference_csv
from tests.factories import make_log

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BIG = 2_147_483_647  # the largest value of the integer columns


def _tricky(acme) -> None:
    make_log(
        acme,
        request_id='quote " comma , and\nnewline\r\nend',
        timestamp=T0,  # microsecond 000000
        model="модель-ü-模型-😀",
        cost=None,
        api_key="",
        user_agent="",
        error_details=None,
        request_params={"prompt": 'héllo "world"\n', "emoji": "😀", "big": 2**63, "f": 1e-07, "x": [1, 0.5]},
        tags={"team": "ünïcode", "k,v": "a\tb"},
    )
    make_log(acme, request_id="zero", timestamp=T0 - timedelta(microseconds=1), cost=Decimal("0"))
    make_log(acme, request_id="tiny", timestamp=T0 - timedelta(seconds=1), cost=Decimal("0.000000000001"))
    make_log(
        acme,
        request_id="big",
        timestamp=T0 - timedelta(seconds=2, microseconds=10),
        cost=Decimal("98765.4321"),
        prompt_tokens=BIG,
        completion_tokens=BIG,
        total_tokens=BIG,
        cached_tokens=BIG,
        reasoning_tokens=0,
        latency_ms=BIG,
        ip_address="2001:db8::ff00:42:8329",
        user_agent='curl/8.0 (x86_64; "q")',
    )
    make_log(
        acme,
        request_id="error",
        timestamp=datetime(2026, 11, 19, 23, 59, 59, 999999, tzinfo=UTC),
        status="error",
        cost=Decimal("1.5"),
        ip_address="203.0.113.7",
        error_code="rate_limit",
        error_message='Too many, "slow" down\nplease',
        error_details={"retry_after": 1.25, "nested": {"ü": [None, True, False]}},
        request_params={},
        tags={},
    )
    make_log(acme, request_id="string-details", timestamp=T0 - timedelta(days=2), error_details="plain text ü")
    make_log(acme, request_id="same-time-a", timestamp=T0 - timedelta(days=3), cost=Decimal("10"))
    make_log(acme, request_id="same-time-b", timestamp=T0 - timedelta(days=3), cost=Decimal("0.10"))
    make_log(acme, request_id="numbers", timestamp=T0 - timedelta(days=4), error_details=NUMBERS, tags={"n": [0.1, 7]})


# JSON numbers whose text changes on a float round trip (jsonb keeps 0.00001 where Python
# writes 1e-05): the export must write what log_record gives, Python's text.
NUMBERS = {"a": 100.0, "b": 0.0, "c": -0.0, "d": 1e16, "e": 123456789012345.0, "f": 1.5e-05, "g": 2.5, "h": 2**70}


def _reference_rows(acme) -> list[dict]:
    rows = RequestLog.objects.filter(account=acme).order_by("-timestamp", "-id")
    return [{name: log_record(row)[name] for name in EXPORT_FIELDS} for row in rows]


def _reference(records: list[dict], fmt: str) -> bytes:
    if fmt == "csv":
        return reference_csv(records).encode()
    if fmt == "ndjson":
        return "".join(compact(record) + "\n" for record in records).encode()
    if not records:
        return b"[]\n"
    return ("[\n" + ",\n".join(compact(record) for record in records) + "\n]\n").encode()


def _export(client, acme, query: str) -> bytes:
    raw = ApiToken.generate(account=acme, scope="read", name="read")[1]
    response = client.get(f"/api/v1/export?{query}", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.mark.django_db
@pytest.mark.parametrize("chunk_size", [3, 2_000])
@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_fast_path_is_byte_identical_to_log_record_encoding(client, acme, globex, monkeypatch, fmt, chunk_size):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", chunk_size)
    _tricky(acme)
    make_log(globex, request_id="other-account", timestamp=T0)
    records = _reference_rows(acme)
    assert len(records) == 9
    expected = _reference(records, fmt)

    assert _export(client, acme, f"format={fmt}") == expected
    assert gzip.decompress(_export(client, acme, f"format={fmt}&compress=gzip")) == expected


@pytest.mark.django_db
def test_fast_path_values_of_tricky_rows(client, acme):
    _tricky(acme)
    by_id = {r["request_id"]: r for r in map(json.loads, _export(client, acme, "format=ndjson").splitlines())}
    assert by_id['quote " comma , and\nnewline\r\nend']["timestamp"] == "2026-11-20T12:00:00.000000Z"
    assert by_id['quote " comma , and\nnewline\r\nend']["cost"] is None
    assert by_id['quote " comma , and\nnewline\r\nend']["api_key"] is None
    assert by_id['quote " comma , and\nnewline\r\nend']["request_params"]["big"] == 2**63
    assert by_id["zero"]["cost"] == "0"
    assert by_id["zero"]["timestamp"] == "2026-11-20T11:59:59.999999Z"
    assert by_id["tiny"]["cost"] == "0.000000000001"
    assert by_id["big"]["cost"] == "98765.4321"
    assert by_id["big"]["prompt_tokens"] == BIG
    assert by_id["big"]["ip_address"] == "2001:db8::ff00:42:8329"
    assert by_id["same-time-b"]["cost"] == "0.1"
    assert by_id["same-time-a"]["cost"] == "10"
    assert by_id["string-details"]["error_details"] == "plain text ü"

    rows = list(csv.reader(io.StringIO(_export(client, acme, "format=csv").decode(), newline="")))
    assert rows[1][:3] == ['quote " comma , and\nnewline\r\nend', "2026-11-20T12:00:00.000000Z", "модель-ü-模型-😀"]
    assert rows[1][EXPORT_FIELDS.index("cost")] == ""
    assert [row[0] for row in rows[-3:-1]] == ["same-time-b", "same-time-a"]  # the later id first


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_fast_path_empty_export_is_byte_identical(client, acme, fmt):
    assert _export(client, acme, f"format={fmt}") == _reference([], fmt)


@pytest.mark.django_db
def test_repeated_filter_chunks_are_byte_identical(client, acme, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 2)
    _tricky(acme)
    for i in range(5):
        make_log(acme, request_id=f"other-model-{i}", model="claude", timestamp=T0 - timedelta(minutes=i))
    wanted = {"модель-ü-模型-😀", "gpt-4o-mini"}
    records = [r for r in _reference_rows(acme) if r["model"] in wanted]
    assert len(records) == 9
    # Two models: on PostgreSQL the chunks are UNION ALL branches (selectors._branches).
    query = urlencode([("format", "csv"), ("model", "gpt-4o-mini"), ("model", "модель-ü-模型-😀")])
    assert _export(client, acme, query) == _reference(records, "csv")
