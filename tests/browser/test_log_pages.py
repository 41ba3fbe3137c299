"""The log browser in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

A member logs in through the login form, sees only their own account's rows, narrows the
table with the filter bar, opens a detail page, and cannot open another account's record.
Every page must load without failed requests, HTTP errors or console errors.

The ORM is used only before the browser starts: Playwright's sync API runs an event loop
in this thread, and Django refuses ORM calls from a thread with a running loop.
"""

import os
import re
from contextlib import contextmanager
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from logs.ingest.services import ingest_records
from logs.partitions import forget_known_partitions

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("METERLOG_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 20_000


def _records(prefix: str, spec: list[tuple[str, str]], now) -> list[dict]:
    out = []
    for i, (model, status) in enumerate(spec):
        record = {
            "request_id": f"{prefix}-{i:03d}",
            "timestamp": (now - timedelta(minutes=5 + i)).isoformat(),
            "model": model,
            "status": status,
            "prompt_tokens": 100 + i,
            "completion_tokens": 10,
            "cost": "0.0012",
            "api_key": f"{prefix}-key",
            "ip_address": "203.0.113.9",
            "request_params": {"temperature": 0.2, "max_tokens": 256},
        }
        if status == "error":
            record |= {"error_code": "rate_limit_exceeded", "error_message": "Rate limit reached for requests"}
        out.append(record)
    return out


@contextmanager
def chromium_context(base: str, *, timezone_id: str, tz_cookie: str | None):
    """A fresh browser context; yields (context, page, problems) with everything that went
    wrong on the page collected in `problems`."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(timezone_id=timezone_id, locale="en-US")
            context.set_default_timeout(TIMEOUT_MS)
            if tz_cookie:
                # A returning viewer: the zone cookie as static/js/timezone.js writes it on a
                # first visit (encodeURIComponent), so no reload happens during the test.
                context.add_cookies([{"name": "meterlog_tz", "value": tz_cookie, "url": base}])
            page = context.new_page()
            # net::ERR_ABORTED is the browser cancelling a request because the page navigated
            # away (a click while a script was still loading), not a failure of the server;
            # error statuses are caught by the response handler below.
            page.on(
                "requestfailed",
                lambda r: (
                    "ERR_ABORTED" not in (r.failure or "")
                    and problems.append(f"request failed: {r.method} {r.url} {r.failure}")
                ),
            )
            page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
            page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text} {m.location}"))
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            yield context, page, problems
        finally:
            browser.close()


def _login(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/logs/")
    page.fill("#id_username", email)
    page.fill("#id_password", "pw-for-tests-1")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/logs/"))
    page.wait_for_load_state("networkidle")


def test_member_browses_filters_and_opens_own_logs(live_server, acme, globex, alice, monkeypatch):
    forget_known_partitions()
    now = timezone.now()
    acme_spec = [("gpt-4o-mini", "success")] * 5 + [("gpt-4o", "success")] * 3 + [("gpt-4o-mini", "error")]
    result = ingest_records(account=acme, records=_records("acme-req", acme_spec, now))
    assert (result.accepted, result.rejected) == (9, [])
    result = ingest_records(account=globex, records=_records("globex-secret", [("gpt-4o", "success")] * 4, now))
    assert result.accepted == 4
    # Times are shown in the viewer's zone (Tokyo, UTC+9), not the account's (UTC).
    viewer_zone = ZoneInfo("Asia/Tokyo")
    expected_time = (now - timedelta(minutes=5 + 5)).astimezone(viewer_zone).strftime("%Y-%m-%d %H:%M:%S")
    # Belt and braces for the event-loop check described in the module docstring.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    base = live_server.url
    with chromium_context(base, timezone_id="Asia/Tokyo", tz_cookie="Asia%2FTokyo") as (context, page, problems):
        # Log in through the real form; the login redirects to the log list.
        _login(page, base, "alice@acme.test")

        rows = page.locator("table.data tbody tr")
        expect(rows).to_have_count(9)
        ids = rows.locator("td.mono a").all_inner_texts()
        assert ids == [f"acme-req-{i:03d}" for i in range(9)]  # newest first
        assert "globex-secret" not in page.content()
        assert rows.first.locator("td.model").inner_text() == "gpt-4o-mini"

        # Narrow by model through the filter bar: the filter lands in the URL.
        page.select_option("#f-model", "gpt-4o")
        page.click("#log-filters button[type=submit]")
        page.wait_for_url(re.compile(r"[?&]model=gpt-4o(&|$)"))
        page.wait_for_load_state("networkidle")
        expect(rows).to_have_count(3)
        assert rows.locator("td.model").all_inner_texts() == ["gpt-4o"] * 3
        assert rows.locator("td.mono a").all_inner_texts() == ["acme-req-005", "acme-req-006", "acme-req-007"]
        assert rows.first.locator("td time").inner_text() == expected_time
        expect(page.locator(".page-actions")).to_contain_text("Times in Asia/Tokyo")

        # And by status: the one failed request.
        page.select_option("#f-model", [])
        page.select_option("#f-status", "error")
        page.click("#log-filters button[type=submit]")
        page.wait_for_url(re.compile(r"[?&]status=error"))
        page.wait_for_load_state("networkidle")
        expect(rows).to_have_count(1)

        # The detail page of that row shows its error block.
        rows.first.locator("td.mono a").click()
        page.wait_for_url(re.compile(r"/logs/acme-req-008/(\?|$)"))
        page.wait_for_load_state("networkidle")
        assert "acme-req-008" in page.locator("h1").inner_text()
        expect(page.locator(".panel-error")).to_contain_text("rate_limit_exceeded")
        expect(page.locator(".panel-error")).to_contain_text("Rate limit reached for requests")

        # Another account's request id answers 404 (fetched with the page's session but
        # outside the page, so this expected 404 is not counted as a page problem).
        response = context.request.get(f"{base}/logs/globex-secret-000/")
        assert response.status == 404
        assert "globex-secret-key" not in response.text()

    assert problems == []


def test_first_visit_learns_the_viewer_time_zone(live_server, db, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = live_server.url
    with chromium_context(base, timezone_id="America/New_York", tz_cookie=None) as (context, page, problems):
        page.goto(f"{base}/accounts/login/")
        # timezone.js sets the cookie and reloads the page once.
        page.wait_for_function("document.cookie.includes('meterlog_tz=')")
        page.wait_for_load_state("networkidle")
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        assert cookies["meterlog_tz"] == "America%2FNew_York"
        assert page.locator("#id_username").is_visible()
    # The reload may abort the first load's deferred script: the one failure expected here.
    assert [p for p in problems if "net::ERR_ABORTED" not in p] == []
