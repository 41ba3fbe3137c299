"""Spreadsheet-safe CSV (issue "Hardening", CSV injection): `csv_safe=1` prefixes text cells
starting with = + - @, a tab or a carriage return with ' (OWASP); off by default, when the
file imports back unchanged. Through the API and the console (stream, job, zip by month);
on SQLite the Python encoder, on PostgreSQL the COPY path (tests/logs/test_export_copy.py
compares the two paths byte for byte there)."""

import csv
import gzip
import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from logs.exports.format import EXPORT_FIELDS
from logs.imports.services import import_file
from logs.models import ExportRecord, RequestLog
from logs.tasks import run_export_job
from tests.export_reference import reference_csv
from tests.factories import make_log
from tests.logs.test_export_fast_path import _reference_rows
from tests.logs.test_exports import _body, _token

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HYPERLINK = '=HYPERLINK("http://x")'
# The cells of the "formulas" row that csv_safe changes, as stored.
FORMULAS = {"model": HYPERLINK, "api_key": "@SUM(A1)", "error_message": "+1", "user_agent": "-x"}


def _seed(acme, *, latency_ms: int = -1) -> None:
    make_log(
        acme,
        request_id="formulas",
        timestamp=T0,
        status="error",
        error_code="rate_limit",
        latency_ms=latency_ms,  # -1 by default: a number, its "-" is a minus sign, never prefixed
        ip_address="203.0.113.7",
        error_details={"why": "=1+2"},  # JSON cells start with { [ " or a number: never prefixed
        tags={"env": "@prod"},
        **FORMULAS,
    )
    make_log(
        acme,
        request_id="\tcontrol",
        timestamp=T0 - timedelta(minutes=1),
        status="error",
        error_code="=cmd",
        error_message="\rcarriage, return",
        user_agent="curl/8 -x =y",  # = + - @ inside a value are harmless
        api_key="",
        error_details="-5 is text",
    )
    make_log(acme, request_id="plain", timestamp=T0 - timedelta(minutes=2), model="gpt-4o", cost=None)


def _safe(records: list[dict]) -> list[dict]:
    """The expected values with csv_safe, spelled out per cell (not the exporter's rule)."""
    prefixed = {
        "formulas": {name: "'" + value for name, value in FORMULAS.items()},
        "\tcontrol": {
            "request_id": "'\tcontrol",
            "error_code": "'=cmd",
            "error_message": "'\rcarriage, return",
        },
    }
    return [{**record, **prefixed.get(record["request_id"], {})} for record in records]


def _rows(data: bytes) -> list[dict]:
    reader = csv.reader(io.StringIO(data.decode(), newline=""))
    assert tuple(next(reader)) == EXPORT_FIELDS
    return [dict(zip(EXPORT_FIELDS, line, strict=True)) for line in reader]


def _api(client, acme, query: str):
    return client.get(f"/api/v1/export?{query}", HTTP_AUTHORIZATION=f"Bearer {_token(acme)}")


def _export(client, acme, query: str) -> bytes:
    response = _api(client, acme, query)
    assert response.status_code == 200
    return _body(response)


@pytest.mark.django_db
def test_default_export_keeps_the_values_and_imports_back_unchanged(client, acme, globex, tmp_path):
    # The importer (the ingest's rules) refuses a negative latency; the other tests keep it.
    # (Stored as 7 rather than updated: stored logs are never edited, logs.guard.)
    _seed(acme, latency_ms=7)
    records = _reference_rows(acme)
    data = _export(client, acme, "format=csv")
    assert data == reference_csv(records).encode()
    assert data == _export(client, acme, "format=csv&csv_safe=0")
    formulas = _rows(data)[0]
    assert {name: formulas[name] for name in FORMULAS} == FORMULAS

    # The importer reads back what the exporter writes: same values in another account.
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    report = import_file(account=globex, path=path, fmt="auto")
    assert (report.format, report.accepted, report.rejected_count) == ("meterlog-csv", 3, 0)
    fields = ("request_id", "model", "api_key", "user_agent", "error_code", "error_message", "latency_ms")
    assert sorted(RequestLog.objects.filter(account=globex).values_list(*fields)) == sorted(
        RequestLog.objects.filter(account=acme).values_list(*fields)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["1", "true", "TRUE"])
def test_csv_safe_prefixes_formula_like_text_cells_and_nothing_else(client, acme, value):
    _seed(acme)
    records = _reference_rows(acme)
    data = _export(client, acme, f"format=csv&csv_safe={value}")
    assert data == reference_csv(_safe(records)).encode()

    plain = _rows(_export(client, acme, "format=csv"))
    safe = _rows(data)
    formulas = safe[0]
    assert formulas["model"] == "'" + HYPERLINK
    assert (formulas["api_key"], formulas["error_message"], formulas["user_agent"]) == ("'@SUM(A1)", "'+1", "'-x")
    assert (formulas["latency_ms"], formulas["error_details"], formulas["tags"]) == (
        "-1",
        '{"why":"=1+2"}',
        '{"env":"@prod"}',
    )
    changed = [{name for name in EXPORT_FIELDS if a[name] != b[name]} for a, b in zip(plain, safe, strict=True)]
    assert changed == [set(FORMULAS), {"request_id", "error_code", "error_message"}, set()]
    assert safe[1]["api_key"] == "" and safe[1]["user_agent"] == "curl/8 -x =y"
    assert safe[1]["error_details"] == '"-5 is text"'

    gzipped = _api(client, acme, f"format=csv&compress=gzip&csv_safe={value}")
    assert gzipped["Content-Type"] == "application/gzip"
    assert gzip.decompress(_body(gzipped)) == data
    assert list(ExportRecord.objects.values_list("csv_safe", flat=True).order_by("id")) == [True, False, True]


@pytest.mark.django_db
def test_csv_safe_zip_by_month(client, acme):
    _seed(acme)
    make_log(acme, request_id="=october", timestamp=datetime(2026, 10, 3, tzinfo=UTC), model="+m")
    query = "format=csv&split=month&start=2026-10-01T00:00:00Z&end=2026-12-01T00:00:00Z"
    for csv_safe, october, november in (
        ("", {"request_id": "=october", "model": "+m"}, FORMULAS),
        ("1", {"request_id": "'=october", "model": "'+m"}, {k: "'" + v for k, v in FORMULAS.items()}),
    ):
        response = _api(client, acme, f"{query}&csv_safe={csv_safe}")
        assert response["Content-Type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(_body(response))) as archive:
            members = {info.filename: gzip.decompress(archive.read(info)) for info in archive.infolist()}
        assert sorted(members) == ["meterlog-acme-2026-10.csv.gz", "meterlog-acme-2026-11.csv.gz"]
        [row] = _rows(members["meterlog-acme-2026-10.csv.gz"])
        assert {name: row[name] for name in october} == october
        rows = _rows(members["meterlog-acme-2026-11.csv.gz"])
        assert [r["request_id"] for r in rows] == ["formulas", "'\tcontrol" if csv_safe else "\tcontrol", "plain"]
        assert {name: rows[0][name] for name in FORMULAS} == november
    assert list(ExportRecord.objects.values_list("split", "csv_safe").order_by("id")) == [
        ("month", False),
        ("month", True),
    ]


@pytest.mark.django_db
def test_bad_csv_safe_is_a_400_naming_it(client, acme, alice):
    _seed(acme)
    response = _api(client, acme, "format=csv&csv_safe=yes")
    assert response.status_code == 400
    assert response.json() == {
        "errors": {"csv_safe": ["Unknown csv_safe value 'yes'; use 1 (or true) to turn it on, 0 or leave it out."]}
    }
    # Refused for JSON / NDJSON (it would do nothing there); off is fine.
    for fmt in ("json", "ndjson"):
        response = _api(client, acme, f"format={fmt}&csv_safe=1")
        assert response.status_code == 400
        assert response.json() == {
            "errors": {"csv_safe": [f"csv_safe applies to CSV only; leave it out for format={fmt}."]}
        }
        assert _api(client, acme, f"format={fmt}&csv_safe=0").status_code == 200
    # Every bad parameter at once.
    assert set(_api(client, acme, "format=xml&csv_safe=2&compress=zip").json()["errors"]) == {
        "format",
        "compress",
        "csv_safe",
    }
    assert ExportRecord.objects.count() == 2  # the two accepted JSON / NDJSON exports only

    client.force_login(alice)
    response = client.get("/logs/export/?format=csv&csv_safe=on")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "csv_safe: Unknown csv_safe value 'on'" in response.content.decode()


@pytest.mark.django_db
def test_console_form_and_stream(client, acme, alice):
    _seed(acme)
    client.force_login(alice)
    page = client.get("/logs/?model=" + HYPERLINK.replace('"', "%22") + "&status=error").content.decode()
    form = page[page.index('<form class="menu-form"') : page.index("</form>", page.index('<form class="menu-form"'))]
    assert 'action="/logs/export/"' in form
    assert '<input type="hidden" name="model" value="=HYPERLINK(&quot;http://x&quot;)">' in form
    assert '<input type="hidden" name="status" value="error">' in form
    assert '<input type="hidden" name="format" value="csv">' in form
    assert '<input type="checkbox" name="csv_safe" value="1">' in form
    assert "Safe for spreadsheets (prefix formula-like cells with ')" in form
    assert 'name="compress" value="gzip"' in form

    # What the form sends with the box ticked and "Download CSV, gzip".
    response = client.get("/logs/export/", {"model": HYPERLINK, "format": "csv", "csv_safe": "1", "compress": "gzip"})
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    [row] = _rows(gzip.decompress(_body(response)))
    assert {name: row[name] for name in FORMULAS} == {k: "'" + v for k, v in FORMULAS.items()}
    # Unticked: no csv_safe parameter, the values as stored.
    [row] = _rows(_body(client.get("/logs/export/", {"model": HYPERLINK, "format": "csv", "compress": ""})))
    assert {name: row[name] for name in FORMULAS} == FORMULAS
    records = ExportRecord.objects.order_by("id")
    assert [(r.user, r.compress, r.csv_safe, r.filters) for r in records] == [
        (alice, True, True, {"model": HYPERLINK}),
        (alice, False, False, {"model": HYPERLINK}),
    ]
    assert "CSV, gzip, safe for spreadsheets" in client.get("/exports/").content.decode()


@pytest.mark.django_db
def test_a_job_honours_csv_safe(client, acme, alice, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.METERLOG_EXPORT_ASYNC_ROWS = 2
    settings.METERLOG_EXPORT_DIR = tmp_path / "exports"
    _seed(acme)
    expected = {"1": reference_csv(_safe(_reference_rows(acme))), "": reference_csv(_reference_rows(acme))}
    client.force_login(alice)
    for csv_safe in ("1", ""):
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.get(f"/logs/export/?format=csv&csv_safe={csv_safe}")
        assert response.status_code == 302 and response["Location"] == "/exports/"
        assert len(callbacks) == 1
        record = ExportRecord.objects.latest("id")
        assert (record.state, record.csv_safe) == ("queued", csv_safe == "1")
        assert "csv_safe" not in record.filters  # an option, not a filter
        assert run_export_job(record.pk) == 3
        record.refresh_from_db()
        assert record.state == "done"
        download = client.get(f"/exports/{record.pk}/download/")
        assert download.status_code == 200
        assert _body(download) == expected[csv_safe].encode()
