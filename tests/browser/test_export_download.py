"""The log list's Export menu in a real headless Chromium: a member filters the list,
downloads the CSV export and gets exactly the filtered rows (see tests/browser/test_log_pages.py for
the browser set-up and why the ORM is used only before the browser starts)."""

import csv
import io
import re
import time

import pytest
from django.utils import timezone

from logs.exports.format import EXPORT_FIELDS
from logs.ingest.services import ingest_records
from logs.partitions import forget_known_partitions
from tests.browser.test_log_pages import _login, _records, chromium_context

pytestmark = pytest.mark.browser


def test_member_downloads_the_filtered_csv(live_server, acme, globex, alice, monkeypatch):
    forget_known_partitions()
    now = timezone.now()
    spec = [("gpt-4o-mini", "success")] * 4 + [("gpt-4o", "success")] * 3 + [("gpt-4o", "error")]
    records = _records("acme-req", spec, now)
    records[5]["error_message"] = 'a "quoted", multi-line\nmessage ✓'
    assert ingest_records(account=acme, records=records).accepted == 8
    assert ingest_records(account=globex, records=_records("globex-secret", [("gpt-4o", "success")] * 3, now)).accepted
    # The filtered set, computed from what was sent: newest first (timestamps step back).
    expected = [r for r in records if r["model"] == "gpt-4o"]
    expected_tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in expected)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (_context, page, problems):
        _login(page, base, "alice@acme.test")
        page.goto(f"{base}/logs/?model=gpt-4o")
        page.wait_for_load_state("networkidle")
        page.click(".export-menu summary")
        with page.expect_download() as download_info:
            page.click(".export-menu a[data-export=csv]")
        download = download_info.value
        assert re.fullmatch(r"meterlog-acme-\d{8}T\d{6}\.csv", download.suggested_filename)
        with open(download.path(), encoding="utf-8", newline="") as handle:
            text = handle.read()

    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert [row["request_id"] for row in rows] == [r["request_id"] for r in expected]
    assert [row["model"] for row in rows] == ["gpt-4o"] * 4
    assert sum(int(row["total_tokens"]) for row in rows) == expected_tokens
    assert rows[1]["error_message"] == 'a "quoted", multi-line\nmessage ✓'
    assert "globex-secret" not in text
    # A download is a navigation Chromium aborts on purpose (net::ERR_ABORTED): not a problem.
    assert [p for p in problems if "net::ERR_ABORTED" not in p] == []


def test_safe_for_spreadsheets_checkbox(live_server, acme, alice, monkeypatch):
    """The menu's CSV form: ticking "Safe for spreadsheets" and downloading gives the list's
    filtered rows with formula-like cells prefixed with '; unticked, the values as sent."""
    forget_known_partitions()
    now = timezone.now()
    records = _records("acme-req", [("gpt-4o", "error"), ("gpt-4o", "success"), ("claude", "success")], now)
    records[0]["error_message"] = '=HYPERLINK("http://x")'
    records[1]["user_agent"] = "-x"
    assert ingest_records(account=acme, records=records).accepted == 3
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    base = live_server.url
    texts = []
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (_context, page, problems):
        _login(page, base, "alice@acme.test")
        for tick in (True, False):
            page.goto(f"{base}/logs/?model=gpt-4o")
            page.wait_for_load_state("networkidle")
            page.click(".export-menu summary")
            if tick:
                page.check(".export-menu input[name=csv_safe]")
            with page.expect_download() as download_info:
                page.click(".export-menu button[data-export=csv-form]")
            download = download_info.value
            assert re.fullmatch(r"meterlog-acme-\d{8}T\d{6}\.csv", download.suggested_filename)
            with open(download.path(), encoding="utf-8", newline="") as handle:
                texts.append(handle.read())

    safe, plain = (list(csv.DictReader(io.StringIO(text, newline=""))) for text in texts)
    assert [row["request_id"] for row in safe] == [r["request_id"] for r in records[:2]]
    assert [row["request_id"] for row in plain] == [r["request_id"] for r in records[:2]]
    assert safe[0]["error_message"] == '\'=HYPERLINK("http://x")' and safe[1]["user_agent"] == "'-x"
    assert plain[0]["error_message"] == '=HYPERLINK("http://x")' and plain[1]["user_agent"] == "-x"
    assert [p for p in problems if "net::ERR_ABORTED" not in p] == []


def test_large_export_runs_as_a_job_with_a_progress_bar(live_server, acme, alice, settings, tmp_path, monkeypatch):
    """Over METERLOG_EXPORT_ASYNC_ROWS the menu queues a job; the Exports page polls it
    (static/js/exports.js), reloads when it is done and the download has the filtered rows.
    The worker is a thread started a moment after the commit, in place of Celery."""
    import threading

    from django.db import connection

    from logs.exports import jobs as export_jobs

    forget_known_partitions()
    settings.METERLOG_EXPORT_ASYNC_ROWS = 3
    settings.METERLOG_EXPORT_DIR = tmp_path / "exports"
    now = timezone.now()
    records = _records("acme-job", [("gpt-4o", "success")] * 5 + [("gpt-4o-mini", "success")] * 2, now)
    assert ingest_records(account=acme, records=records).accepted == 7
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    def worker(record_id: int) -> None:
        def run() -> None:
            time.sleep(2.5)  # long enough for the page to show the job still queued
            try:
                export_jobs.run_export_job(record_id)
            finally:
                connection.close()

        threading.Thread(target=run, daemon=True).start()

    monkeypatch.setattr(export_jobs, "_enqueue", worker)

    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (_context, page, problems):
        _login(page, base, "alice@acme.test")
        page.goto(f"{base}/logs/?model=gpt-4o")
        page.click(".export-menu summary")
        page.click(".export-menu a[data-export=csv]")
        page.wait_for_url(f"{base}/exports/")
        assert page.locator(".export-progress progress").count() == 1
        assert "being prepared" in page.content()
        download_link = page.locator("a[data-export-download]")
        download_link.wait_for(timeout=30_000)  # the script reloads the page when the job ends
        with page.expect_download() as download_info:
            download_link.click()
        download = download_info.value
        assert re.fullmatch(r"meterlog-acme-\d{8}T\d{6}\.csv", download.suggested_filename)
        with open(download.path(), encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))

    assert [row["request_id"] for row in rows] == [r["request_id"] for r in records if r["model"] == "gpt-4o"]
    assert [p for p in problems if "net::ERR_ABORTED" not in p] == []
