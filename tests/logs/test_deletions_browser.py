"""The deletion request pages in a real headless Chromium under the console's CSP: the owner
files a request (a refused one first, with its error), an operator approves it on the
operators' page, the task runs (eager) and the owner sees it done with its audit trail.
Screenshots go to $METERLOG_SCREENSHOTS when set. The ORM is used only before the browser
starts (see tests/browser/test_log_pages.py)."""

import os
from datetime import UTC, datetime, timedelta

import pytest

from console.celery import app as celery_app
from logs.deletions import services
from logs.deletions.models import DeletionRequest, DeletionStatus
from logs.gate import request_logs
from logs.partitions import forget_known_partitions
from tests.browser.test_log_pages import _login, chromium_context
from tests.browser.test_security_policy import LISTEN, _assert_clean, _visit
from tests.factories import make_log

pytestmark = pytest.mark.browser

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def _shot(page, name: str) -> None:
    folder = os.environ.get("METERLOG_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"deletions-{name}.png"), full_page=True)


def test_owner_files_operator_approves_rows_go(live_server, acme, globex, alice, bob, olivia, monkeypatch):
    forget_known_partitions()
    for i in range(3):
        make_log(acme, request_id=f"b{i}", api_key="team-b", timestamp=NOW - timedelta(days=3, minutes=i))
    make_log(acme, request_id="a0", api_key="team-a", timestamp=NOW - timedelta(days=3))
    make_log(globex, request_id="g0", api_key="team-b", timestamp=NOW - timedelta(days=3))
    services.deletion_file(
        account=globex,
        user=bob,
        reason="A former employee asked for their usage to be erased.",
        start=NOW - timedelta(days=10),
        end=NOW - timedelta(days=1),
        request_ids=["g0"],
    )
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The approval's on_commit runs the task in the live server's thread.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)

    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (context, page, problems):
        context.add_init_script(LISTEN)
        console: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning") and console.append(f"{m.type}: {m.text}"))
        _login(page, base, "alice@acme.test")
        _visit(page, f"{base}/deletions/", console)
        _assert_clean(page, console, "deletions")
        start, end = NOW - timedelta(days=4), NOW - timedelta(days=2)
        page.fill("#id_start", start.strftime("%Y-%m-%dT%H:%M"))
        page.fill("#id_end", (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        page.fill("#id_api_key", "team-b")
        page.fill("#id_reason", "Team B's test traffic contains a customer's personal data (GDPR erasure).")
        page.click("#deletion-form button[type=submit]")
        assert page.locator(".field.has-error .error").inner_text() == "The end must be after the start."
        # The refused form answers 400 (the only problem on the page): expected, then forgotten.
        assert [p.split(" ")[0:2] for p in problems] == [["HTTP", "400:"], ["console", "error:"]], problems
        assert console == ["error: Failed to load resource: the server responded with a status of 400 (Bad Request)"]
        assert page.evaluate("window.__cspViolations") == []
        problems.clear()
        console.clear()
        page.fill("#id_end", end.strftime("%Y-%m-%dT%H:%M"))
        page.click("#deletion-form button[type=submit]")
        page.wait_for_url("**/deletions/*/")
        assert page.locator('[data-status="filed"]').count() == 1
        _assert_clean(page, console, "deletion detail")
    assert problems == []

    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (context, page, problems):
        context.add_init_script(LISTEN)
        console = []
        page.on("console", lambda m: m.type in ("error", "warning") and console.append(f"{m.type}: {m.text}"))
        _login(page, base, "olivia@operator.test")
        _visit(page, f"{base}/operator/deletions/", console)
        rows = page.locator("#pending-deletions tbody tr[data-request]")
        assert rows.count() == 2
        acme_row = rows.filter(has_text="Acme Corp")
        assert acme_row.locator("td.matched").inner_text() == "3"
        _assert_clean(page, console, "operator deletions")
        _shot(page, "operator")
        acme_row.locator("textarea").fill("Checked with Acme's owner by phone.")
        acme_row.locator("button[value=approve]").click()
        page.wait_for_load_state("networkidle")
        assert page.locator("#pending-deletions tbody tr[data-request]").count() == 1
        assert page.locator('#decided-deletions [data-status="done"]').count() == 1
        _assert_clean(page, console, "operator deletions after approval")
    assert problems == []

    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (context, page, problems):
        context.add_init_script(LISTEN)
        console = []
        page.on("console", lambda m: m.type in ("error", "warning") and console.append(f"{m.type}: {m.text}"))
        _login(page, base, "alice@acme.test")
        _visit(page, f"{base}/deletions/", console)
        assert page.locator('#deletion-requests [data-status="done"]').count() == 1
        _shot(page, "owner")
        page.locator("#deletion-requests tbody a").first.click()
        page.wait_for_load_state("networkidle")
        assert page.locator("#rows-deleted").inner_text() == "3"
        actions = page.locator("#deletion-events tbody tr").evaluate_all("rs => rs.map(r => r.dataset.action)")
        assert actions == ["filed", "approved", "started", "done"]
        _assert_clean(page, console, "deletion detail done")
        _shot(page, "owner-detail")
    assert problems == []

    done = DeletionRequest.objects.get(account=acme)
    assert (done.status, done.rows_deleted) == (DeletionStatus.DONE, 3)
    assert set(request_logs(account=acme).values_list("request_id", flat=True)) == {"a0"}
    assert set(request_logs(account=globex).values_list("request_id", flat=True)) == {"g0"}
