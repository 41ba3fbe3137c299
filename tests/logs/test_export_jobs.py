"""Large browser exports as jobs (issue 4): over METERLOG_EXPORT_ASYNC_ROWS the Export menu
queues an ExportRecord, the task writes the file, the Exports page shows progress and the
download, the beat task expires it; downloads check the account.

The task function is called directly (the queued callback is captured, not run); one test
runs it in a real Celery worker through Redis.
"""

import gzip
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from logs import selectors
from logs.exports import jobs as export_jobs
from logs.exports import service
from logs.models import ExportRecord, ExportState
from logs.tasks import expire_export_files, fail_stale_jobs, run_export_job
from tests.factories import make_account, make_log
from tests.logs.test_exports import T0, _expected_sums, _newest_first, _parse, _seed, _sums
from tests.logs.test_tasks import TEST_REDIS_URL, celery_worker_process  # noqa: F401 - a fixture


@pytest.fixture
def job_settings(settings, tmp_path):
    settings.METERLOG_EXPORT_ASYNC_ROWS = 5
    settings.METERLOG_EXPORT_DIR = tmp_path / "exports"
    settings.METERLOG_EXPORT_TTL_HOURS = 24
    return settings


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _queue(client, query: str, django_capture_on_commit_callbacks) -> ExportRecord:
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get(f"/logs/export/?{query}")
    assert response.status_code == 302
    assert response["Location"] == "/exports/"
    assert len(callbacks) == 1  # the task is queued once the record is committed
    return ExportRecord.objects.get()


@pytest.mark.django_db
def test_large_export_becomes_a_job_with_exactly_the_filtered_rows(
    client, acme, globex, alice, job_settings, django_capture_on_commit_callbacks
):
    rows = _seed(acme, globex)
    expected = _newest_first([r for r in rows if r.model == "gpt-4o"])
    assert len(expected) == 9  # over the threshold of 5
    client.force_login(alice)

    record = _queue(client, "model=gpt-4o&format=csv&compress=gzip", django_capture_on_commit_callbacks)
    assert (record.state, record.user, record.format, record.compress) == ("queued", alice, "csv", True)
    assert record.filters == {"model": "gpt-4o"}
    page = client.get("/exports/")
    assert b'data-progress-url="/exports/%d/progress/"' % record.pk in page.content
    assert b"js/exports.js" in page.content
    assert client.get(f"/exports/{record.pk}/progress/").json()["state"] == "queued"
    assert client.get(f"/exports/{record.pk}/download/").status_code == 409

    assert run_export_job(record.pk) == 9
    assert run_export_job(record.pk) is None  # a second delivery finds it taken

    record.refresh_from_db()
    assert (record.state, record.rows) == ("done", 9)
    if connection.vendor == "sqlite":
        assert record.rows_estimate == 9  # exact on SQLite, the planner's guess on PostgreSQL
    assert record.expires_at - record.finished_at == timedelta(hours=24)
    assert record.file_name.startswith("meterlog-acme-") and record.file_name.endswith(".csv.gz")
    progress = client.get(f"/exports/{record.pk}/progress/").json()
    assert (progress["state"], progress["rows"], progress["percent"]) == ("done", 9, 100)
    assert progress["download_url"] == f"/exports/{record.pk}/download/"

    response = client.get(progress["download_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"] == f'attachment; filename="{record.file_name}"'
    data = _body(response)
    assert len(data) == record.file_size
    records = _parse(gzip.decompress(data), "csv")
    assert [r["request_id"] for r in records] == [r.request_id for r in expected]
    assert _sums(records) == _expected_sums(expected)
    assert b'data-export-download href="/exports/%d/download/"' % record.pk in client.get("/exports/").content


@pytest.mark.django_db
def test_small_exports_still_stream(client, acme, globex, alice, job_settings):
    _seed(acme, globex)
    client.force_login(alice)
    response = client.get("/logs/export/?model=gpt-4o&status=error&format=ndjson")  # 2 rows
    assert response.status_code == 200 and response.streaming
    assert _body(response).count(b"\n") == 2
    assert ExportRecord.objects.get().state == ExportState.STREAMED


@pytest.mark.django_db
def test_job_keeps_the_viewers_time_bounds_and_the_range_preset(
    client, acme, alice, job_settings, django_capture_on_commit_callbacks
):
    """The worker has no viewer zone and runs later: the record stores absolute bounds."""
    job_settings.METERLOG_EXPORT_ASYNC_ROWS = 3
    for i in range(12):
        make_log(acme, request_id=f"r-{i:02d}", timestamp=T0 - timedelta(minutes=10 * i))
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "America/New_York"  # UTC-5 in November
    # 06:05 to 06:55 New York = 11:05Z to 11:55Z: the rows at 11:10, 11:20, ... 11:50.
    record = _queue(
        client, "start=2026-11-20T06:05&end=2026-11-20T06:55&format=ndjson", django_capture_on_commit_callbacks
    )
    assert record.filters == {"start": "2026-11-20T11:05:00Z", "end": "2026-11-20T11:55:00Z"}
    run_export_job(record.pk)
    data = export_jobs.export_file_path(ExportRecord.objects.get()).read_bytes()
    assert [r["request_id"] for r in _parse(data, "ndjson")] == ["r-01", "r-02", "r-03", "r-04", "r-05"]

    ExportRecord.objects.all().delete()
    for i in range(6):
        make_log(acme, request_id=f"now-{i}", timestamp=datetime.now(UTC) - timedelta(hours=i))
    before = datetime.now(UTC)
    record = _queue(client, "range=24h&format=csv", django_capture_on_commit_callbacks)
    start = datetime.fromisoformat(record.filters["start"])
    assert "range" not in record.filters
    assert before - timedelta(hours=24, seconds=5) < start <= datetime.now(UTC) - timedelta(hours=24)


@pytest.mark.django_db
def test_a_set_too_big_to_count_in_time_is_a_job(
    client, acme, alice, job_settings, monkeypatch, django_capture_on_commit_callbacks
):
    make_log(acme)

    def too_slow(**kwargs):
        raise selectors.QueryTimeout(selectors.QueryTimeout.message)

    monkeypatch.setattr(service, "count_at_most", too_slow)
    client.force_login(alice)
    assert _queue(client, "format=csv", django_capture_on_commit_callbacks).state == "queued"


@pytest.mark.django_db
def test_a_job_that_times_out_is_failed_with_the_message(acme, alice, job_settings, monkeypatch):
    make_log(acme)
    record = ExportRecord.objects.create(account=acme, user=alice, format="csv", state="queued", filters={"q": "x"})

    @contextmanager
    def too_slow(ms=None):
        raise selectors.QueryTimeout(selectors.QueryTimeout.message)
        yield

    # Every log query of the job (estimate, values or COPY chunks) runs under this timeout.
    monkeypatch.setattr(selectors, "statement_timeout", too_slow)
    run_export_job(record.pk)
    record.refresh_from_db()
    assert (record.state, record.error) == ("failed", selectors.QueryTimeout.message)
    # The half-written temp file is removed.
    assert [p for p in settings.METERLOG_EXPORT_DIR.rglob("*") if p.is_file()] == []


@pytest.mark.django_db
def test_downloads_check_the_account_and_the_expiry(client, acme, globex, alice, charlie, bob, job_settings):
    make_log(acme, request_id="acme-only")
    record = ExportRecord.objects.create(account=acme, user=alice, format="ndjson", state="queued")
    run_export_job(record.pk)
    record.refresh_from_db()
    path = export_jobs.export_file_path(record)
    assert path.read_bytes().count(b"acme-only") == 1
    url = f"/exports/{record.pk}/download/"

    # Another account's owner, and a member who did not start it: 404, no hint it exists.
    client.force_login(bob)
    assert client.get(url).status_code == 404
    assert client.get(f"/exports/{record.pk}/progress/").status_code == 404
    assert client.get("/exports/").context["records"] == []
    client.force_login(charlie)
    assert client.get(url).status_code == 404
    client.force_login(alice)
    assert client.get(url).status_code == 200

    # Due but not yet swept: 410 already. Then the beat task deletes the file.
    assert export_jobs.expire_export_files(now=record.expires_at - timedelta(seconds=1)) == 0
    ExportRecord.objects.filter(pk=record.pk).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    gone = client.get(url)
    assert gone.status_code == 410
    assert "has expired" in gone.content.decode()
    assert path.exists()
    assert expire_export_files() == 1
    assert expire_export_files() == 0  # safe to run twice
    assert not path.exists()
    record.refresh_from_db()
    assert record.state == "expired"
    assert client.get(url).status_code == 410
    assert client.get(f"/exports/{record.pk}/progress/").json() == {
        "id": record.pk,
        "state": "expired",
        "rows": 1,
        "rows_estimate": record.rows_estimate,
        "percent": 100,
        "error": "",
        "download_url": None,
        "expires_at": record.expires_at.isoformat(),
    }
    assert "expired" in client.get("/exports/").content.decode()


@pytest.mark.django_db
def test_jobs_that_lost_their_worker_are_failed_by_the_sweep(client, acme, alice, job_settings):
    job_settings.METERLOG_JOB_STALE_MINUTES = 30
    now = datetime.now(UTC)
    # Running, last heartbeat 31 minutes ago (created long before: a long job that was alive).
    dead = ExportRecord.objects.create(
        account=acme,
        format="csv",
        state="running",
        rows=120_000,
        created_at=now - timedelta(hours=2),
        heartbeat_at=now - timedelta(minutes=31),
    )
    partial = job_settings.METERLOG_EXPORT_DIR / str(acme.pk) / f"{dead.pk}-0123456789abcdef" / ".x.csv.tmp"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"request_id,...\r\n")
    # Running for hours but with a fresh heartbeat: alive.
    alive = ExportRecord.objects.create(
        account=acme,
        format="csv",
        state="running",
        created_at=now - timedelta(hours=7),
        heartbeat_at=now - timedelta(minutes=1),
    )
    never_claimed = ExportRecord.objects.create(
        account=acme, format="csv", state="queued", created_at=now - timedelta(minutes=45)
    )
    just_queued = ExportRecord.objects.create(
        account=acme, format="csv", state="queued", created_at=now - timedelta(minutes=5)
    )
    done = ExportRecord.objects.create(account=acme, format="csv", state="done", created_at=now - timedelta(hours=3))

    assert fail_stale_jobs() == {"exports": 2, "imports": 0, "deletions": 0}
    assert fail_stale_jobs() == {"exports": 0, "imports": 0, "deletions": 0}  # safe to run twice

    states = dict(ExportRecord.objects.values_list("pk", "state"))
    assert states == {
        dead.pk: "failed",
        alive.pk: "running",
        never_claimed.pk: "failed",
        just_queued.pk: "queued",
        done.pk: "done",
    }
    dead.refresh_from_db()
    assert dead.error == (
        "The export stopped: no progress for 30 minutes (the worker was restarted or crashed). Export again."
    )
    assert dead.finished_at is not None and dead.rows == 120_000
    assert not partial.exists() and not partial.parent.exists()
    alive.refresh_from_db()
    assert (alive.error, alive.finished_at) == ("", None)
    # The progress endpoint the page polls now reports the failure, so the bar stops.
    client.force_login(alice)
    progress = client.get(f"/exports/{dead.pk}/progress/").json()
    assert (progress["state"], progress["error"]) == ("failed", dead.error)
    # Half an hour on without heartbeats, the two younger active jobs go too.
    assert export_jobs.fail_stale_jobs(now=now + timedelta(minutes=31)) == 2
    assert set(ExportRecord.objects.values_list("state", flat=True)) == {"failed", "done"}


def test_the_stale_job_sweep_runs_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["fail-stale-jobs"]
    assert entry["task"] == "logs.tasks.fail_stale_jobs"
    assert entry["schedule"] <= 15 * 60


def test_expiry_runs_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["expire-export-files"]
    assert entry["task"] == "logs.tasks.expire_export_files"
    assert entry["schedule"] <= 60 * 60


@pytest.mark.postgres_only
@pytest.mark.redis
def test_export_job_runs_in_a_real_worker_through_redis(transactional_db, celery_worker_process, tmp_path):  # noqa: F811
    """The worker (another process, METERLOG_VAR_DIR=tmp_path) writes the file under
    tmp_path/media/exports; the record it updates is the committed one."""
    from celery import Celery

    queue, log_path = celery_worker_process
    account = make_account("workerco")
    costs = [Decimal("0.001"), Decimal("0.002"), None, Decimal("0.0005")]
    for i, cost in enumerate(costs):
        make_log(account, request_id=f"w-{i}", timestamp=T0 - timedelta(minutes=i), cost=cost)
    record = ExportRecord.objects.create(account=account, format="csv", state="queued", filters={})
    client = Celery("meterlog-test-client", broker=TEST_REDIS_URL, backend=TEST_REDIS_URL)
    try:
        result = client.send_task("logs.tasks.run_export_job", args=[record.pk], queue=queue)
        deadline = time.monotonic() + 90
        while not result.ready():
            if time.monotonic() > deadline:
                pytest.fail("no result from the worker in 90 s; its log:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        assert result.get(timeout=5) == 4
    finally:
        client.close()
    record.refresh_from_db()
    assert (record.state, record.rows) == ("done", 4)
    data = (tmp_path / "media" / "exports" / record.file_path).read_bytes()
    records = _parse(data, "csv")
    assert [r["request_id"] for r in records] == ["w-0", "w-1", "w-2", "w-3"]
    assert sum((Decimal(r["cost"]) for r in records if r["cost"]), Decimal(0)) == Decimal("0.0035")
