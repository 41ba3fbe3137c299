"""The console's import page (issue 4): owners upload a file, a worker imports it through
the same services.import_file as `manage.py import_logs`, the page shows progress, counts and
the first rejected rows. The queued task is captured and called directly."""

import gzip
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from logs.imports import jobs
from logs.models import ImportJob, RequestLog
from logs.tasks import fail_stale_jobs, run_import_job

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"


@pytest.fixture
def import_dir(settings, tmp_path):
    settings.METERLOG_IMPORT_DIR = tmp_path / "imports"
    return settings.METERLOG_IMPORT_DIR


def _upload(client, name: str, data: bytes, django_capture_on_commit_callbacks, **fields):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/imports/", {"file": SimpleUploadedFile(name, data), "format": "auto", **fields}, format="multipart"
        )
    return response, callbacks


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


@pytest.mark.django_db
def test_owner_imports_a_file_through_the_page(client, acme, alice, import_dir, django_capture_on_commit_callbacks):
    client.force_login(alice)
    data = gzip.compress((FIXTURES / "meterlog_export.csv").read_bytes())
    response, callbacks = _upload(client, "export.csv.gz", data, django_capture_on_commit_callbacks)

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.pk}/"
    assert len(callbacks) == 1
    assert (job.state, job.format, job.detected_format, job.user) == ("queued", "auto", "meterlog-csv", alice)
    assert (job.file_name, job.file_size, job.rows_estimate) == ("export.csv.gz", len(data), None)
    stored = import_dir / job.file_path
    assert stored.read_bytes() == data
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert f'data-progress-url="/imports/{job.pk}/progress/"' in page
    assert client.get(f"/imports/{job.pk}/progress/").json()["state"] == "queued"

    assert run_import_job(job.pk) == 3
    assert run_import_job(job.pk) is None  # claimed once

    job.refresh_from_db()
    assert job.state == "done"
    assert job.rows_estimate == 7  # the file's lines less the header (one row spans two lines)
    assert (job.rows, job.accepted, job.duplicates, job.skipped, job.rejected_count) == (6, 3, 1, 0, 2)
    assert [(r["line"], r["errors"]) for r in job.rejected] == [
        (6, {"total_tokens": ["Must equal prompt_tokens + completion_tokens (15), got 16."]}),
        (7, {"error_details": ["Is not valid JSON text."], "status": ["Must be 'success' or 'error'."]}),
    ]
    assert sorted(RequestLog.objects.filter(account=acme).values_list("request_id", flat=True)) == [
        "chatcmpl-AbC1",
        "chatcmpl-AbC2",
        "chatcmpl-AbC3",
    ]
    assert not stored.exists()  # the upload is deleted when the job ends
    progress = client.get(f"/imports/{job.pk}/progress/").json()
    assert (progress["state"], progress["percent"], progress["accepted"], progress["rejected"]) == ("done", 100, 3, 2)
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "Must equal prompt_tokens + completion_tokens (15), got 16." in page
    assert "Is not valid JSON text." in page
    assert "data-progress-url" not in page
    listing = client.get("/imports/").content.decode()
    assert "export.csv.gz" in listing

    # The same file again: nothing new, every valid row a duplicate.
    _upload(client, "export.csv.gz", data, django_capture_on_commit_callbacks)
    again = ImportJob.objects.latest("id")
    run_import_job(again.pk)
    again.refresh_from_db()
    assert (again.accepted, again.duplicates, again.rejected_count) == (0, 4, 2)
    assert RequestLog.objects.filter(account=acme).count() == 3


@pytest.mark.django_db
def test_new_api_with_quota_per_usd_through_the_job(
    client, acme, alice, import_dir, django_capture_on_commit_callbacks
):
    from decimal import Decimal

    from logs.imports.services import import_file

    client.force_login(alice)
    data = (FIXTURES / "newapi_logs.json").read_bytes()
    _upload(client, "logs.json", data, django_capture_on_commit_callbacks, format="new-api", quota_per_usd="500000")
    job = ImportJob.objects.get()
    assert job.quota_per_usd == Decimal("500000")
    run_import_job(job.pk)
    job.refresh_from_db()
    # The same counts as the command's service on the same file, into another account.
    from tests.factories import make_account

    other = make_account("othercorp")
    report = import_file(
        account=other, path=FIXTURES / "newapi_logs.json", fmt="new-api", quota_per_usd=Decimal(500000)
    )
    assert (job.rows, job.accepted, job.duplicates, job.skipped, job.rejected_count) == (
        report.rows,
        report.accepted,
        report.duplicates,
        report.skipped,
        report.rejected_count,
    )
    assert job.accepted > 0 and job.skipped > 0
    costs = sorted(RequestLog.objects.filter(account=acme).values_list("cost", flat=True))
    assert costs == sorted(RequestLog.objects.filter(account=other).values_list("cost", flat=True))


@pytest.mark.django_db
def test_refused_uploads_say_why(client, acme, alice, settings, import_dir, django_capture_on_commit_callbacks):
    client.force_login(alice)
    settings.METERLOG_IMPORT_MAX_BYTES = 100
    response, callbacks = _upload(client, "big.csv", b"x" * 101, django_capture_on_commit_callbacks)
    assert response.status_code == 413
    assert "the limit is" in response.content.decode()
    settings.METERLOG_IMPORT_MAX_BYTES = 10_000

    response, callbacks = _upload(client, "odd.csv", b"colour,flavour\nred,sweet\n", django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert "cannot tell the format of odd.csv" in response.content.decode()

    response, callbacks = _upload(client, "empty.csv", b"", django_capture_on_commit_callbacks)
    assert response.status_code == 400

    data = (FIXTURES / "meterlog_export.ndjson").read_bytes()
    response = client.post(
        "/imports/", {"file": SimpleUploadedFile("x.ndjson", data), "format": "meterlog-csv"}, format="multipart"
    )
    assert response.status_code == 400
    assert "not CSV" in response.content.decode()
    assert ImportJob.objects.count() == 0
    assert callbacks == []
    assert _files(import_dir) == []  # nothing kept


@pytest.mark.django_db
def test_only_owners_import_and_jobs_stay_in_their_account(
    client, acme, globex, alice, charlie, bob, import_dir, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    _upload(client, "export.csv", (FIXTURES / "meterlog_export.csv").read_bytes(), django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()

    client.force_login(charlie)  # a viewer of acme
    assert client.get("/imports/").status_code == 403
    response, _ = _upload(client, "export.csv", b"request_id\n", django_capture_on_commit_callbacks)
    assert response.status_code == 403
    assert client.get(f"/imports/{job.pk}/").status_code == 403

    client.force_login(bob)  # the owner of globex
    assert client.get(f"/imports/{job.pk}/").status_code == 404
    assert client.get(f"/imports/{job.pk}/progress/").status_code == 404
    assert client.get("/imports/").context["jobs"] == []
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db
def test_a_file_broken_midway_fails_the_job_with_the_reason(client, acme, alice, import_dir):
    path = import_dir / "1" / "broken.ndjson.gz"
    path.parent.mkdir(parents=True)
    good = (FIXTURES / "meterlog_export.ndjson").read_bytes()
    path.write_bytes(gzip.compress(good)[:-12])  # the gzip trailer is cut off
    job = ImportJob.objects.create(
        account=acme,
        format="meterlog-ndjson",
        detected_format="meterlog-ndjson",
        file_name="broken.ndjson.gz",
        file_path="1/broken.ndjson.gz",
    )
    jobs.run_import_job(job.pk)
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error
    assert not path.exists()
    client.force_login(alice)
    assert "The import stopped:" in client.get(f"/imports/{job.pk}/").content.decode()


@pytest.mark.django_db
def test_jobs_whose_worker_died_are_failed_by_the_sweep(client, acme, alice, import_dir, settings):
    """A worker killed mid-import never runs the task's `except`: without the beat sweep the
    job would stay "running" and its page would show a progress bar forever."""
    settings.METERLOG_JOB_STALE_MINUTES = 20
    now = timezone.now()
    upload = import_dir / str(acme.pk) / "0123456789abcdef-big.csv"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"request_id,timestamp\r\n")
    dead = ImportJob.objects.create(
        account=acme,
        format="auto",
        file_name="big.csv",
        file_path=f"{acme.pk}/0123456789abcdef-big.csv",
        state="running",
        rows_estimate=50_000,
        rows=21_000,
        accepted=20_000,
        created_at=now - timedelta(hours=1),
        started_at=now - timedelta(minutes=50),
        heartbeat_at=now - timedelta(minutes=21),
    )
    alive = ImportJob.objects.create(
        account=acme,
        format="auto",
        file_name="bigger.csv",
        state="running",
        created_at=now - timedelta(hours=3),
        heartbeat_at=now - timedelta(seconds=30),
    )
    lost_in_queue = ImportJob.objects.create(
        account=acme, format="auto", file_name="a.csv", created_at=now - timedelta(minutes=25)
    )
    fresh = ImportJob.objects.create(account=acme, format="auto", file_name="b.csv", created_at=now)

    assert fail_stale_jobs() == {"exports": 0, "imports": 2, "deletions": 0}
    assert fail_stale_jobs() == {"exports": 0, "imports": 0, "deletions": 0}

    assert dict(ImportJob.objects.values_list("pk", "state")) == {
        dead.pk: "failed",
        alive.pk: "running",
        lost_in_queue.pk: "failed",
        fresh.pk: "queued",
    }
    dead.refresh_from_db()
    assert dead.error == (
        "no progress for 20 minutes (the worker was restarted or crashed). Rows accepted before it stopped "
        "are kept; upload the file again to import the rest (rows already imported count as duplicates)."
    )
    assert (dead.rows, dead.accepted, dead.percent) == (21_000, 20_000, 42)
    assert dead.finished_at >= now
    assert not upload.exists()
    alive.refresh_from_db()
    fresh.refresh_from_db()
    assert (alive.error, alive.finished_at, fresh.error, fresh.finished_at) == ("", None, "", None)

    # The page stops polling: no progress URL, the reason instead.
    client.force_login(alice)
    page = client.get(f"/imports/{dead.pk}/").content.decode()
    assert "data-progress-url" not in page
    assert "The import stopped: no progress for 20 minutes" in page
    assert client.get(f"/imports/{dead.pk}/progress/").json()["state"] == "failed"
    # The sweep's claim is final: a late delivery of the task does not run the import.
    assert run_import_job(lost_in_queue.pk) is None
