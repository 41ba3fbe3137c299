"""The "by month" export (issue 4): split=month gives a zip with one gzip file per calendar
month (UTC), each holding exactly that month's rows of the filtered set (computed here)."""

import gzip
import io
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from logs.models import ExportRecord
from tests.factories import make_log
from tests.logs.test_exports import _body, _expected_sums, _newest_first, _parse, _sums, _token

# Rows around the month boundaries: the last microsecond of January and the first of February.
MOMENTS = [
    datetime(2025, 12, 31, 23, 0, tzinfo=UTC),  # before the range
    datetime(2026, 1, 15, 0, 0, tzinfo=UTC),  # the range's first instant
    datetime(2026, 1, 20, 8, 30, tzinfo=UTC),
    datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 2, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 2, 14, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 3, 3, 3, tzinfo=UTC),
    datetime(2026, 3, 19, 23, 59, tzinfo=UTC),
    datetime(2026, 3, 20, 0, 0, tzinfo=UTC),  # the range's end: excluded
]


def _seed(acme, globex) -> list:
    rows = []
    for i, moment in enumerate(MOMENTS):
        for model in ("gpt-4o", "claude-3-5-sonnet"):
            rows.append(
                make_log(
                    acme,
                    request_id=f"{model}-{i}",
                    timestamp=moment,
                    model=model,
                    prompt_tokens=10 + i,
                    completion_tokens=i,
                    total_tokens=10 + 2 * i,
                    cost=None if i == 5 else Decimal("0.0001") * (i + 1),
                )
            )
        make_log(globex, request_id=f"globex-{i}", timestamp=moment, model="gpt-4o")
    return rows


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # every member's CRC checks
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _month(moment: datetime) -> str:
    return f"{moment:%Y-%m}"


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_api_zip_has_one_gzip_file_per_month_with_its_rows(client, acme, globex, fmt):
    rows = _seed(acme, globex)
    start, end = datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC)
    query = f"format={fmt}&split=month&model=gpt-4o&start=2026-01-15T00:00:00Z&end=2026-03-20T00:00:00Z"

    response = client.get(f"/api/v1/export?{query}", HTTP_AUTHORIZATION=f"Bearer {_token(acme)}")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith('-by-month.zip"')
    members = _members(_body(response))
    assert list(members) == [f"meterlog-acme-2026-{m}.{fmt}.gz" for m in ("01", "02", "03")]
    in_range = [r for r in rows if r.model == "gpt-4o" and start <= r.timestamp < end]
    for name, packed in members.items():
        month = name.removeprefix("meterlog-acme-")[:7]
        expected = _newest_first([r for r in in_range if _month(r.timestamp) == month])
        records = _parse(gzip.decompress(packed), fmt)
        assert [r["request_id"] for r in records] == [r.request_id for r in expected], month
        assert _sums(records) == _expected_sums(expected)
    assert [len(_parse(gzip.decompress(p), fmt)) for p in members.values()] == [3, 2, 2]
    record = ExportRecord.objects.get()
    assert (record.split, record.compress, record.rows) == ("month", True, 7)
    assert record.filters == {"model": "gpt-4o", "start": "2026-01-15T00:00:00Z", "end": "2026-03-20T00:00:00Z"}


@pytest.mark.django_db
def test_without_bounds_the_months_come_from_the_data(client, acme, globex):
    rows = _seed(acme, globex)
    response = client.get(
        "/api/v1/export?format=csv&split=month&model=claude-3-5-sonnet", HTTP_AUTHORIZATION=f"Bearer {_token(acme)}"
    )
    members = _members(_body(response))
    assert list(members) == [f"meterlog-acme-{m}.csv.gz" for m in ("2025-12", "2026-01", "2026-02", "2026-03")]
    got = [r for packed in members.values() for r in _parse(gzip.decompress(packed), "csv")]
    expected = [r for r in rows if r.model == "claude-3-5-sonnet"]
    assert sorted(r["request_id"] for r in got) == sorted(r.request_id for r in expected)
    assert _sums(got) == _expected_sums(expected)
    assert "globex" not in str(got)


@pytest.mark.django_db
def test_empty_set_and_empty_months(client, acme, globex):
    _seed(acme, globex)
    raw = _token(acme)
    # Nothing matches and no bounds: an empty zip (still a valid one).
    response = client.get("/api/v1/export?split=month&model=none", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert _members(_body(response)) == {}
    # Bounds with a month without rows: its file is there, a header only.
    response = client.get(
        "/api/v1/export?split=month&start=2026-04-01&end=2026-06-01T00:00:00Z", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    members = _members(_body(response))
    assert list(members) == ["meterlog-acme-2026-04.csv.gz", "meterlog-acme-2026-05.csv.gz"]
    assert all(_parse(gzip.decompress(p), "csv") == [] for p in members.values())


@pytest.mark.django_db
def test_bad_split_parameters(client, acme):
    raw = _token(acme)
    response = client.get("/api/v1/export?split=week", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 400
    assert response.json()["errors"]["split"] == ["Unknown split 'week'; use month or leave it out."]
    response = client.get(
        "/api/v1/export?split=month&start=2000-01-01T00:00:00Z&end=2026-01-01T00:00:00Z",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 400
    assert "at most 120 files" in response.json()["errors"]["split"][0]


@pytest.mark.django_db
def test_menu_offers_the_zip_for_ranges_over_a_month_and_the_page_streams_it(client, acme, globex, alice):
    rows = _seed(acme, globex)
    client.force_login(alice)
    long_range = client.get("/logs/?start=2026-01-01T00:00&end=2026-03-31T00:00").content.decode()
    assert 'data-export="csv-month-zip"' in long_range
    assert "split=month" in long_range
    assert 'data-export="csv-month-zip"' in client.get("/logs/").content.decode()  # the whole log
    assert "split=month" not in client.get("/logs/?range=7d").content.decode()
    assert "split=month" not in client.get("/logs/?start=2026-02-01&end=2026-02-20").content.decode()

    # The page takes the viewer's zone for start/end; the members are UTC months.
    response = client.get("/logs/export/?start=2026-02-01T00:00:00Z&end=2026-03-20T00:00:00Z&format=csv&split=month")
    assert response.status_code == 200
    members = _members(_body(response))
    assert list(members) == ["meterlog-acme-2026-02.csv.gz", "meterlog-acme-2026-03.csv.gz"]
    feb = _parse(gzip.decompress(members["meterlog-acme-2026-02.csv.gz"]), "csv")
    expected = _newest_first([r for r in rows if _month(r.timestamp) == "2026-02"])
    assert [r["request_id"] for r in feb] == [r.request_id for r in expected]
    assert ExportRecord.objects.get().user == alice


@pytest.mark.django_db
def test_a_large_zip_is_a_job_too(client, acme, globex, alice, settings, tmp_path, django_capture_on_commit_callbacks):
    from logs.exports import jobs as export_jobs
    from logs.tasks import run_export_job

    settings.METERLOG_EXPORT_ASYNC_ROWS = 3
    settings.METERLOG_EXPORT_DIR = tmp_path
    rows = _seed(acme, globex)
    client.force_login(alice)
    with django_capture_on_commit_callbacks():
        response = client.get("/logs/export/?model=gpt-4o&format=ndjson&split=month&end=2026-03-01T00:00:00Z")
    assert response.status_code == 302
    record = ExportRecord.objects.get()
    assert run_export_job(record.pk) == 6
    record.refresh_from_db()
    assert record.file_name.endswith("-by-month.zip")
    members = _members(export_jobs.export_file_path(record).read_bytes())
    assert list(members) == [
        "meterlog-acme-2025-12.ndjson.gz",
        "meterlog-acme-2026-01.ndjson.gz",
        "meterlog-acme-2026-02.ndjson.gz",
    ]
    got = [r["request_id"] for p in members.values() for r in _parse(gzip.decompress(p), "ndjson")]
    cutoff = datetime(2026, 3, 1, tzinfo=UTC)
    expected = [r for r in rows if r.model == "gpt-4o" and r.timestamp < cutoff]
    assert sorted(got) == sorted(r.request_id for r in expected)
    response = client.get(f"/exports/{record.pk}/download/")
    assert response["Content-Type"] == "application/zip"
    assert timedelta(0) < record.expires_at - record.finished_at
