"""Exports (issue 4, "Export"): the API's GET /api/v1/export and the page's /logs/export/.

Every test computes the expected rows in Python from the rows it created (not through the
FilterSet under test) and compares ids, order and sums with the parsed file.
"""

import csv
import gzip
import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from console.models import ApiToken
from logs import selectors
from logs.api.export_views import ExportView
from logs.api.serializers import log_record
from logs.exports import chunks
from logs.exports import sql as export_sql
from logs.exports.format import EXPORT_FIELDS, JSON_FIELDS
from logs.exports.request import CONTENT_TYPES
from logs.models import ExportRecord
from tests.factories import make_log

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _seed(acme, globex) -> list:
    """Acme rows across two models, both statuses, priced and unpriced, two sharing a
    timestamp (the id breaks the tie); globex rows that match the same filters."""
    rows = []
    for i in range(14):
        rows.append(
            make_log(
                acme,
                request_id=f"acme-{i:02d}",
                timestamp=T0 - timedelta(minutes=i if i != 5 else 4),
                model="gpt-4o" if i % 3 else "gpt-4o-mini",
                status="error" if i % 4 == 0 else "success",
                prompt_tokens=100 + i,
                completion_tokens=10 * i,
                total_tokens=100 + i + 10 * i,
                cost=None if i % 5 == 0 else Decimal("0.000123456789") * (i + 1),
            )
        )
    for i in range(4):
        make_log(globex, request_id=f"globex-{i}", timestamp=T0 - timedelta(minutes=i), model="gpt-4o")
    return rows


def _newest_first(rows):
    return sorted(rows, key=lambda r: (r.timestamp, r.pk), reverse=True)


def _token(account, scope="read") -> str:
    return ApiToken.generate(account=account, scope=scope, name=f"{scope} token")[1]


def _api(client, raw: str, query: str):
    return client.get(f"/api/v1/export?{query}", HTTP_AUTHORIZATION=f"Bearer {raw}")


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _parse(data: bytes, fmt: str) -> list[dict]:
    """Records as dicts of text/JSON values, whatever the format."""
    if fmt == "csv":
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(reader)
        assert tuple(header) == EXPORT_FIELDS
        return [dict(zip(header, line, strict=True)) for line in reader]
    if fmt == "json":
        return json.loads(data)
    # NDJSON: split on "\n" only (str.splitlines would also split on U+2028 inside a value).
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line]


def _cost(value) -> Decimal:
    return Decimal(value) if value not in (None, "") else Decimal(0)


def _sums(records: list[dict]) -> tuple:
    return (
        sum(int(r["prompt_tokens"]) for r in records),
        sum(int(r["completion_tokens"]) for r in records),
        sum(int(r["total_tokens"]) for r in records),
        sum((_cost(r["cost"]) for r in records), Decimal(0)),
    )


def _expected_sums(rows) -> tuple:
    return (
        sum(r.prompt_tokens for r in rows),
        sum(r.completion_tokens for r in rows),
        sum(r.total_tokens for r in rows),
        sum((r.cost for r in rows if r.cost is not None), Decimal(0)),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_api_export_has_exactly_the_filtered_rows_and_sums(client, acme, globex, fmt, gzipped):
    rows = _seed(acme, globex)
    raw = _token(acme)
    start = T0 - timedelta(minutes=11)
    query = f"format={fmt}&model=gpt-4o&status=success&start=2026-11-20T11:49:00Z"
    if gzipped:
        query += "&compress=gzip"

    response = _api(client, raw, query)

    assert response.status_code == 200
    content_type = "application/gzip" if gzipped else CONTENT_TYPES[fmt]
    assert response["Content-Type"] == content_type
    disposition = response["Content-Disposition"]
    suffix = f".{fmt}.gz" if gzipped else f".{fmt}"
    assert re.fullmatch(rf'attachment; filename="meterlog-acme-\d{{8}}T\d{{6}}{re.escape(suffix)}"', disposition)
    data = _body(response)
    if gzipped:
        assert data[:2] == b"\x1f\x8b"
        data = gzip.decompress(data)
    records = _parse(data, fmt)

    expected = _newest_first(
        [r for r in rows if r.model == "gpt-4o" and r.status == "success" and r.timestamp >= start]
    )
    assert len(expected) == 6
    assert [r["request_id"] for r in records] == [r.request_id for r in expected]
    assert _sums(records) == _expected_sums(expected)
    assert not any(r["request_id"].startswith("globex") for r in records)
    assert all(list(r) == list(EXPORT_FIELDS) for r in records)

    record = ExportRecord.objects.get()
    assert (record.account, record.user, record.format, record.compress) == (acme, None, fmt, gzipped)
    assert record.token_hint == raw[: len(record.token_hint)] and record.token_hint
    assert record.filters == {"model": "gpt-4o", "status": "success", "start": "2026-11-20T11:49:00Z"}
    assert record.rows == 6
    assert record.finished_at is not None


@pytest.mark.django_db
def test_values_match_the_api_representation(client, acme, globex):
    rows = _seed(acme, globex)
    raw = _token(acme)
    by_id = {r.request_id: log_record(r) for r in rows}

    as_json = _parse(_body(_api(client, raw, "format=json")), "json")
    as_csv = _parse(_body(_api(client, raw, "format=csv")), "csv")

    assert len(as_json) == len(as_csv) == 14
    for item in as_json:
        assert item == {name: by_id[item["request_id"]][name] for name in EXPORT_FIELDS}
        assert TIMESTAMP_RE.match(item["timestamp"])
    unpriced = next(item for item in as_json if item["request_id"] == "acme-00")
    assert unpriced["cost"] is None
    assert next(item for item in as_json if item["request_id"] == "acme-01")["cost"] == "0.000246913578"
    for line in as_csv:
        api = by_id[line["request_id"]]
        assert line["timestamp"] == api["timestamp"]
        assert line["cost"] == (api["cost"] or "")
        assert int(line["total_tokens"]) == api["total_tokens"]
    assert next(line for line in as_csv if line["request_id"] == "acme-00")["cost"] == ""
    # Newest first, and the two rows sharing a timestamp by id, newest id first.
    ids = [item["request_id"] for item in as_json]
    assert ids == [r.request_id for r in _newest_first(rows)]
    assert ids.index("acme-05") < ids.index("acme-04")


@pytest.mark.django_db
def test_csv_round_trip_of_awkward_values(client, acme):
    message = 'Quota "exceeded", retry later\nsecond line\r\nthird, with ünïcødé ✓ — 日本語 and \u2028'
    row = make_log(
        acme,
        request_id='odd,"id"\nx',
        status="error",
        error_code="rate_limit",
        error_message=message,
        error_details={"note": 'a "quoted", value', "n": [1, 2]},
        request_params={"stop": ["\n", ","], "temperature": 0.5},
        tags={"team": "search, ranking", "env": "=1+2"},
        user_agent="agent/1.0 (x; y)",
        cost=None,
    )
    response = client.get("/api/v1/export?format=csv", HTTP_AUTHORIZATION=f"Bearer {_token(acme)}")
    data = _body(response)
    assert data.startswith(b"request_id,timestamp,model,status,prompt_tokens,completion_tokens,total_tokens,cost,")

    [line] = _parse(data, "csv")
    api = log_record(row)
    assert line["request_id"] == 'odd,"id"\nx'
    assert line["error_message"] == message
    # Values are not altered for spreadsheets ("=1+2" stays as it is): see logs/exports/encoders.py.
    assert json.loads(line["tags"]) == {"team": "search, ranking", "env": "=1+2"}
    for name in JSON_FIELDS:
        assert json.loads(line[name]) == api[name]
    assert line["cost"] == ""
    assert line["user_agent"] == "agent/1.0 (x; y)"


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_export_larger_than_a_chunk_has_every_row_once(client, acme, globex, monkeypatch, fmt):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 7)
    rows = []
    for i in range(30):
        # Groups of three share a timestamp, so chunk boundaries fall inside ties.
        rows.append(make_log(acme, request_id=f"bulk-{i:02d}", timestamp=T0 - timedelta(seconds=i // 3), cost=None))
    make_log(globex, request_id="globex-bulk", timestamp=T0)

    data = _body(_api(client, _token(acme), f"format={fmt}&compress=gzip"))
    records = _parse(gzip.decompress(data), fmt)

    ids = [r["request_id"] for r in records]
    assert len(ids) == len(set(ids)) == 30
    assert ids == [r.request_id for r in _newest_first(rows)]
    assert ExportRecord.objects.get().rows == 30


@pytest.mark.django_db
def test_chunked_export_with_a_repeated_filter(client, acme, monkeypatch):
    # Two model values: PostgreSQL reads one keyset branch per value (logs.selectors).
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 7)
    rows = [
        make_log(acme, request_id=f"m-{i:02d}", timestamp=T0 - timedelta(seconds=i), model=("a", "b", "c")[i % 3])
        for i in range(30)
    ]
    records = _parse(_body(_api(client, _token(acme), "format=ndjson&model=a&model=c")), "ndjson")
    expected = _newest_first([r for r in rows if r.model in ("a", "c")])
    assert [r["request_id"] for r in records] == [r.request_id for r in expected]
    assert len(expected) == 20
    assert ExportRecord.objects.get().filters == {"model": ["a", "c"]}


@pytest.mark.django_db
def test_abandoned_download_leaves_the_record_unfinished(acme, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 7)
    for i in range(30):
        make_log(acme, timestamp=T0 - timedelta(seconds=i))
    request = RequestFactory().get("/api/v1/export?format=csv", HTTP_AUTHORIZATION=f"Bearer {_token(acme)}")
    response = ExportView.as_view()(request)
    assert next(response.streaming_content).startswith(b"request_id,")
    # The client goes away: the server closes the response without reading the rest.
    # (request_finished would close the test's database connection, as the test client knows.)
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)

    record = ExportRecord.objects.get()
    assert record.finished_at is None
    assert record.rows is None


@pytest.mark.django_db
def test_empty_export(client, acme):
    raw = _token(acme)
    assert _body(_api(client, raw, "format=csv")) == (",".join(EXPORT_FIELDS) + "\r\n").encode()
    assert json.loads(_body(_api(client, raw, "format=json"))) == []
    assert _body(_api(client, raw, "format=ndjson")) == b""
    assert gzip.decompress(_body(_api(client, raw, "format=json&compress=gzip"))) == b"[]\n"
    assert list(ExportRecord.objects.values_list("rows", flat=True)) == [0, 0, 0, 0]


@pytest.mark.django_db
def test_api_auth_and_bad_parameters(client, acme, globex):
    _seed(acme, globex)
    assert client.get("/api/v1/export?format=csv").status_code == 401
    assert _api(client, "mlg_not_a_token", "format=csv").status_code == 401
    assert _api(client, _token(acme, scope="ingest"), "format=csv").status_code == 403

    raw = _token(acme)
    cases = {
        "format=xml": "format",
        "format=csv&compress=zip": "compress",
        "format=csv&status=bogus": "status",
        "format=json&min_tokens=-1": "min_tokens",
        "format=json&start=yesterday": "start",
    }
    for query, param in cases.items():
        response = _api(client, raw, query)
        assert response.status_code == 400, query
        assert response["Content-Type"] == "application/json"
        assert list(response.json()["errors"]) == [param], query
    response = _api(client, raw, "format=xml&compress=zip&ip=nope")
    assert set(response.json()["errors"]) == {"format", "compress", "ip"}
    assert ExportRecord.objects.count() == 0


@pytest.mark.django_db
def test_api_export_never_contains_another_accounts_rows(client, acme, globex):
    _seed(acme, globex)
    records = _parse(_body(_api(client, _token(globex), "format=ndjson")), "ndjson")
    assert sorted(r["request_id"] for r in records) == ["globex-0", "globex-1", "globex-2", "globex-3"]
    # Filtering by an acme request id from globex's token finds nothing.
    assert _parse(_body(_api(client, _token(globex), "format=json&request_id=acme-01")), "json") == []


@pytest.mark.django_db
def test_page_export_matches_the_list_filters(client, acme, globex, alice, bob):
    rows = _seed(acme, globex)
    client.force_login(alice)

    listing = client.get("/logs/?model=gpt-4o&status=error&cursor=")
    assert 'href="/logs/export/?model=gpt-4o&amp;status=error&amp;format=csv"' in listing.content.decode()

    response = client.get("/logs/export/?model=gpt-4o&status=error&format=csv&compress=gzip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"].endswith('.csv.gz"')
    records = _parse(gzip.decompress(_body(response)), "csv")
    expected = _newest_first([r for r in rows if r.model == "gpt-4o" and r.status == "error"])
    assert [r["request_id"] for r in records] == [r.request_id for r in expected]
    assert _sums(records) == _expected_sums(expected)

    record = ExportRecord.objects.get()
    assert (record.user, record.token_hint, record.rows) == (alice, "", len(expected))
    assert record.filters == {"model": "gpt-4o", "status": "error"}

    # Bob (globex) exports with the same URL and gets only globex rows.
    client.force_login(bob)
    records = _parse(_body(client.get("/logs/export/?model=gpt-4o&format=json")), "json")
    assert [r["request_id"] for r in records] == ["globex-0", "globex-1", "globex-2", "globex-3"]


@pytest.mark.django_db
def test_page_export_errors_and_login(client, acme, alice):
    response = client.get("/logs/export/?format=csv")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")

    client.force_login(alice)
    response = client.get("/logs/export/?format=xlsx&status=bogus")
    assert response.status_code == 400
    assert "format:" in response.content.decode()
    assert "status:" in response.content.decode()
    assert ExportRecord.objects.count() == 0


@pytest.mark.django_db
def test_exports_page_is_for_owners(client, acme, globex, alice, charlie, bob):
    make_log(acme, request_id="acme-1")
    client.force_login(charlie)
    # A viewer can export what they can see, and list only the exports they started.
    assert client.get("/logs/export/?format=ndjson").status_code == 200
    ExportRecord.objects.create(account=globex, format="csv", filters={"model": "globex-only-model"})
    ExportRecord.objects.create(account=acme, format="json", filters={"model": "by-the-owner"}, user=alice)
    charlies = client.get("/exports/")
    assert charlies.status_code == 200
    assert [(r.user, r.format) for r in charlies.context["records"]] == [(charlie, "ndjson")]
    assert "by-the-owner" not in charlies.content.decode()

    client.force_login(alice)
    raw = _token(acme)
    _body(_api(client, raw, "format=json&model=gpt-4o-mini"))
    page = client.get("/exports/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "charlie@acme.test" in html
    assert ApiToken.objects.get(account=acme, scope="read").hint in html
    assert 'href="/logs/?model=gpt-4o-mini"' in html
    assert ">model=gpt-4o-mini</a>" in html
    assert "not completed" in html  # charlie's download above was never read
    assert "globex-only-model" not in html
    assert "by-the-owner" in html
    assert len(page.context["records"]) == 3

    client.force_login(bob)
    assert [r.account for r in client.get("/exports/").context["records"]] == [globex]


@pytest.mark.django_db
def test_chunks_are_keyset_queries_not_offset(client, acme, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 7)
    for i in range(30):
        make_log(acme, timestamp=T0 - timedelta(seconds=i))
    raw = _token(acme)
    with CaptureQueriesContext(connection) as queries:
        data = _body(_api(client, raw, "format=ndjson"))
    assert data.count(b"\n") == 30
    log_reads = [q["sql"] for q in queries.captured_queries if 'FROM "logs_requestlog"' in q["sql"]]
    # 7 + 7 + 7 + 7 + 2 rows: five reads of at most CHUNK_SIZE + 1 rows, each after a cursor.
    assert len(log_reads) == 5
    assert all("OFFSET" not in sql and "LIMIT 8" in sql for sql in log_reads)
    assert all('"logs_requestlog"."timestamp" <' in sql for sql in log_reads[1:])


@pytest.mark.django_db
def test_export_record_filters_as_a_query_string(acme):
    record = ExportRecord.objects.create(account=acme, format="csv", filters={"model": ["a", "b c"], "status": "error"})
    assert record.filters_query == "model=a&model=b+c&status=error"


@pytest.mark.django_db
def test_a_slow_filter_is_refused_before_the_download_starts(client, acme, alice, monkeypatch):
    make_log(acme)

    def too_slow(**kwargs):
        raise selectors.QueryTimeout(selectors.QueryTimeout.message)

    def copy_too_slow(*args, **kwargs):
        raise selectors.QueryTimeout(selectors.QueryTimeout.message)
        yield  # a generator, as the real one

    monkeypatch.setattr(selectors, "log_page", too_slow)
    monkeypatch.setattr(export_sql, "copy_csv_chunks", copy_too_slow)  # CSV on PostgreSQL
    response = _api(client, _token(acme), "format=csv&q=timeout")
    assert response.status_code == 422
    assert response.json()["code"] == "query_timeout"

    client.force_login(alice)
    response = client.get("/logs/export/?format=csv&compress=gzip&q=timeout")
    assert response.status_code == 302
    assert response["Location"] == "/logs/?q=timeout"
    assert ExportRecord.objects.count() == 0
