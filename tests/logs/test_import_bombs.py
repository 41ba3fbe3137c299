"""Hostile import files: the upload's format check inflates a bounded prefix only (the web
process never inflates a bomb whole), and the worker streams the file through the capped
inflater, so the job fails with a clear message instead of running out of memory."""

import gzip
import tracemalloc
from pathlib import Path

import pytest

from logs import decompress
from logs.imports import readers
from logs.models import ImportJob, RequestLog
from logs.tasks import run_import_job
from tests.logs.test_import_page import _files, _upload

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
MB = 1024 * 1024
pytestmark = pytest.mark.django_db


@pytest.fixture
def import_dir(settings, tmp_path):
    settings.METERLOG_IMPORT_DIR = tmp_path / "imports"
    settings.METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES = 30 * MB
    return settings.METERLOG_IMPORT_DIR


@pytest.fixture
def inflated(monkeypatch):
    """How many bytes logs.decompress.inflate has produced, in this process."""
    real = decompress.inflate
    total = {"bytes": 0}

    def counting(*args, **kwargs):
        for piece in real(*args, **kwargs):
            total["bytes"] += len(piece)
            yield piece

    monkeypatch.setattr(decompress, "inflate", counting)
    return total


def _blank_members(count: int, size: int = 20 * MB, fill: bytes = b" ") -> bytes:
    return gzip.compress(fill * size) * count  # ~20 KB each


def _first_row() -> bytes:
    return (FIXTURES / "meterlog_export.ndjson").read_bytes().split(b"\n", 1)[0]


def test_json_array_bomb_is_checked_from_its_prefix_and_fails_in_the_worker(
    client, acme, alice, import_dir, inflated, django_capture_on_commit_callbacks
):
    # 200 MB once inflated, 200 KB as sent. The old format check read a JSON array whole.
    bomb = gzip.compress(b"[" + _first_row() + b",") + _blank_members(10) + gzip.compress(b"]")
    assert len(bomb) < 400_000
    client.force_login(alice)
    tracemalloc.start()
    try:
        response, _callbacks = _upload(client, "bomb.json.gz", bomb, django_capture_on_commit_callbacks)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    job = ImportJob.objects.get()
    assert response.status_code == 302 and (job.state, job.detected_format) == ("queued", "meterlog-ndjson")
    assert inflated["bytes"] <= readers.HEAD_BYTES + 2 * decompress.READ_SIZE
    assert peak < 20 * MB

    inflated["bytes"] = 0
    run_import_job(job.pk)
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error == (
        "bomb.json.gz is larger than 30 MB once decompressed (the limit is METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES); "
        "split it into smaller files (after 1 rows, 0 accepted)"
    )  # the name uploaded, not the stored file's; the array is streamed: its first row was read
    # The worker stopped at the cap: the row estimate and the import each inflate up to it,
    # and the format is checked twice (sniff, header) from the prefix, at start and in import_file.
    assert inflated["bytes"] <= 2 * 30 * MB + 4 * (readers.HEAD_BYTES + 2 * decompress.READ_SIZE)
    assert not RequestLog.objects.exists()
    assert _files(import_dir) == []


def test_ndjson_bomb_fails_the_job_at_the_cap_with_its_counts(
    client, acme, alice, import_dir, django_capture_on_commit_callbacks
):
    blank_lines = gzip.compress((b" " * 1023 + b"\n") * (20 * 1024))  # 20 MB of blank lines, skipped
    bomb = gzip.compress(_first_row() + b"\n") + blank_lines * 5
    client.force_login(alice)
    response, _callbacks = _upload(client, "bomb.ndjson.gz", bomb, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    run_import_job(job.pk)
    job.refresh_from_db()
    assert job.state == "failed"
    assert "is larger than 30 MB once decompressed (the limit is METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES)" in job.error
    assert job.error.endswith("(after 1 rows, 0 accepted)")
    assert not RequestLog.objects.exists()


def test_prefix_of_blanks_is_refused_at_upload_without_inflating_it(
    client, acme, alice, import_dir, inflated, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    response, callbacks = _upload(client, "blank.csv.gz", _blank_members(10), django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert "blank.csv.gz starts with over 1 MB of blanks" in response.content.decode()
    assert inflated["bytes"] <= readers.HEAD_BYTES + 2 * decompress.READ_SIZE

    inflated["bytes"] = 0
    first_row_cut = gzip.compress(b"[" + _first_row()[:-1] + b" " * (2 * MB))
    response, callbacks = _upload(client, "cut.json.gz", first_row_cut, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert "its first row does not end within its first 1 MB; choose the format" in response.content.decode()
    assert ImportJob.objects.count() == 0 and callbacks == []
    assert _files(import_dir) == []


def test_many_gzip_members_are_refused_at_upload_or_fail_the_job(
    client, acme, alice, import_dir, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(readers, "MAX_GZIP_MEMBERS", 1_000)
    client.force_login(alice)
    first_row = gzip.compress(_first_row() + b"\n")
    response, _ = _upload(
        client, "a.ndjson.gz", first_row + gzip.compress(b"") * 2_000, django_capture_on_commit_callbacks
    )
    assert response.status_code == 400  # the prefix check itself runs into the cap
    assert "cannot read a.ndjson.gz: more than 1,000 gzip members" in response.content.decode()

    # Past the first 1 MB: the upload is accepted, the worker stops at the cap.
    padded = first_row + gzip.compress(b" " * (2 * MB) + b"\n") + gzip.compress(b"") * 2_000
    response, _ = _upload(client, "b.ndjson.gz", padded, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    run_import_job(job.pk)
    job.refresh_from_db()
    assert job.state == "failed" and "more than 1,000 gzip members (after 1 rows, 0 accepted)" in job.error


def test_a_line_longer_than_the_cap_fails_the_job(
    client, acme, alice, import_dir, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(readers, "MAX_LINE_CHARS", 2 * MB)
    client.force_login(alice)
    long_line = _first_row() + b"\n" + b"{" + b" " * (3 * MB) + b"}\n"
    response, _ = _upload(client, "long.ndjson", long_line, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    run_import_job(job.pk)
    job.refresh_from_db()
    assert job.state == "failed"
    assert "line 2 is longer than 2 MB (after 1 rows, 0 accepted)" in job.error
