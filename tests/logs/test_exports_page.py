"""The Exports page (issue 17): "New export" with the log list's filters, and Run again /
Download again of a past export, which repeats its stored filters and options."""

import gzip
import html
import re
from datetime import UTC, datetime

import pytest

from console.models import AuditAction, AuditEvent
from logs.models import AccountModel, ApiKey, ExportRecord, ExportState
from logs.tasks import run_export_job
from tests.factories import make_log

pytestmark = pytest.mark.django_db
T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def rows(acme, globex):
    for i in range(6):
        make_log(acme, request_id=f"a-{i}", model="gpt-4o" if i % 2 else "claude", timestamp=T.replace(minute=i))
    make_log(globex, request_id="g-1", model="gpt-4o", timestamp=T)
    AccountModel.objects.create(account=acme, model="gpt-4o", first_seen=T, last_seen=T)
    AccountModel.objects.create(account=acme, model="claude", first_seen=T, last_seen=T)
    AccountModel.objects.create(account=globex, model="globex-only", first_seen=T, last_seen=T)
    ApiKey.objects.create(account=acme, identifier="team-a", fingerprint="fa", first_seen=T, last_seen=T)


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _ids(data: bytes) -> list[str]:
    return re.findall(r'"request_id": ?"([^"]+)"', data.decode())


def test_new_export_opens_a_form_with_the_accounts_filters(client, alice, rows):
    client.force_login(alice)
    closed = client.get("/exports/").content.decode()
    assert 'href="?new=1#new-export">New export</a>' in closed
    assert '<details class="panel new-export" id="new-export">' in closed
    page = client.get("/exports/", {"new": "1"}).content.decode()
    assert '<details class="panel new-export" id="new-export" open>' in page
    assert '<option value="gpt-4o">gpt-4o</option>' in page and '<option value="claude">claude</option>' in page
    assert "globex-only" not in page  # another account's model
    assert '<option value="team-a">team-a</option>' in page
    assert '<input type="hidden" name="origin" value="exports">' in page


def test_the_form_exports_the_filtered_rows_and_logs_it(client, alice, rows):
    client.force_login(alice)
    response = client.get(
        "/logs/export/",
        {"origin": "exports", "range": "", "start": "", "end": "", "model": "gpt-4o", "status": "", "format": "ndjson"},
    )
    assert response.status_code == 200
    assert _ids(_body(response)) == ["a-5", "a-3", "a-1"]
    record = ExportRecord.objects.get()
    assert (record.format, record.filters) == ("ndjson", {"model": "gpt-4o"})
    assert AuditEvent.objects.filter(account=record.account, action=AuditAction.EXPORT_CREATED).count() == 1


def test_a_refused_form_comes_back_with_its_errors(client, alice, rows):
    client.force_login(alice)
    response = client.get(
        "/logs/export/", {"origin": "exports", "format": "json", "csv_safe": "1", "model": "gpt-4o", "start": "nope"}
    )
    assert response.status_code == 400
    body = html.unescape(response.content.decode())
    assert '<details class="panel new-export" id="new-export" open>' in body
    assert "csv_safe applies to CSV only" in body
    assert response.context["new_export"]["errors"]["start"]
    assert '<option value="gpt-4o" selected>' in body
    assert not ExportRecord.objects.exists()
    # Without origin=exports (a hand-edited URL) the answer stays plain text.
    plain = client.get("/logs/export/", {"format": "json", "csv_safe": "1"})
    assert plain.status_code == 400 and plain["Content-Type"].startswith("text/plain")


def test_download_again_repeats_the_filters_and_options(client, alice, rows):
    client.force_login(alice)
    first = client.get("/logs/export/", {"model": "claude", "start": "2026-11-20T12:01:00Z", "format": "json"})
    assert _ids(_body(first)) == ["a-4", "a-2"]
    record = ExportRecord.objects.get()
    assert record.filters == {"model": "claude", "start": "2026-11-20T12:01:00Z"}
    page = client.get("/exports/")
    rerun = re.search(r'<a class="btn btn-small" href="([^"]+)"[^>]*>Download again</a>', page.content.decode())
    url = html.unescape(rerun.group(1))
    assert url.startswith("/logs/export/?")
    again = client.get(url)
    assert again["Content-Type"] == "application/json"
    assert _ids(_body(again)) == ["a-4", "a-2"]
    assert ExportRecord.objects.count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT_CREATED).count() == 2


def test_run_again_of_an_expired_job_makes_a_new_job(
    client, alice, rows, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.METERLOG_EXPORT_ASYNC_ROWS = 2
    settings.METERLOG_EXPORT_DIR = tmp_path / "exports"
    client.force_login(alice)
    with django_capture_on_commit_callbacks():
        assert client.get("/logs/export/", {"format": "csv", "compress": "gzip"}).status_code == 302
    job = ExportRecord.objects.get()
    assert run_export_job(job.pk) == 6
    job.refresh_from_db()
    # Kept file: Download (the same file) and Run again, both offered.
    page = client.get("/exports/").content.decode()
    assert f'href="/exports/{job.pk}/download/">Download</a>' in page and ">Run again</a>" in page
    assert gzip.decompress(_body(client.get(f"/exports/{job.pk}/download/"))).count(b"\n") == 7  # header + 6

    ExportRecord.objects.filter(pk=job.pk).update(state=ExportState.EXPIRED)
    gone = client.get(f"/exports/{job.pk}/download/")
    assert gone.status_code == 410 and "Run this export again" in gone.content.decode()
    url = html.unescape(re.search(r'href="([^"]+)">Run this export again', gone.content.decode()).group(1))
    assert "format=csv" in url and "compress=gzip" in url
    with django_capture_on_commit_callbacks():
        assert client.get(url).status_code == 302  # a job again
    new = ExportRecord.objects.exclude(pk=job.pk).get()
    assert (new.format, new.compress, new.state, new.filters) == ("csv", True, "queued", job.filters)


def test_run_again_is_not_offered_while_a_job_runs(client, alice, acme):
    ExportRecord.objects.create(account=acme, user=alice, format="csv", state="queued")
    client.force_login(alice)
    page = client.get("/exports/").content.decode()
    assert "Run again" not in page and "Download again" not in page
