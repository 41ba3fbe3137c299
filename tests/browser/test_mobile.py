"""The console at phone width (390x844) in a real headless Chromium.

The log list's first screen shows table rows (the filters fold behind a "Filters" button that
counts the active filters and opens the form), the section links of the top bar keep their
whole words (the row scrolls), and a wide table scrolls inside its card with the first column
pinned. At desktop width the filter form shows as before, without the button.
Set METERLOG_SHOTS=<dir> to keep screenshots of /logs/, /analytics/ and /alerts/.

The ORM is used only before the browser starts (see tests/browser/test_log_pages.py).
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from logs.ingest.services import ingest_records
from logs.partitions import forget_known_partitions
from tests.browser.test_log_pages import _login, _records, chromium_context

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _shot(page, name: str) -> None:
    folder = os.environ.get("METERLOG_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def _nav_clipped(page) -> list[str]:
    """Section links whose text does not fit their box (a cut word)."""
    return page.eval_on_selector_all(
        ".topbar .nav a",
        "links => links.filter(a => a.scrollWidth > a.clientWidth || a.getBoundingClientRect().width < 1)"
        ".map(a => a.textContent.trim())",
    )


def test_phone_first_screen_filters_nav_and_pinned_column(live_server, acme, alice, monkeypatch):
    forget_known_partitions()
    now = timezone.now()
    spec = [("gpt-4o-mini-2024-07-18", "success")] * 6 + [("gpt-4o", "error")] * 2
    result = ingest_records(account=acme, records=_records("acme-phone", spec, now - timedelta(minutes=1)))
    assert (result.accepted, result.rejected) == (8, [])
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (_context, page, problems):
        _login(page, base, "alice@acme.test")
        page.set_viewport_size(PHONE)
        page.goto(f"{base}/logs/?model=gpt-4o&status=error")
        page.wait_for_load_state("networkidle")

        # The first screen shows rows: the filter form is folded, the first row is in view.
        toggle = page.locator("#log-filters").locator("xpath=ancestor::details[1]/summary")
        form = page.locator("#log-filters")
        expect(toggle).to_be_visible()
        expect(form).to_be_hidden()
        expect(toggle.locator("[data-filters-count]")).to_have_text("2")  # model and status
        rows = page.locator("#log-table tbody tr")
        expect(rows).to_have_count(2)
        assert page.evaluate("window.scrollY") == 0
        box = rows.first.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
        _shot(page, "logs-filtered-390")

        # The button opens the form and closes it again.
        toggle.click()
        expect(form).to_be_visible()
        expect(page.locator("#f-model")).to_be_attached()
        toggle.click()
        expect(form).to_be_hidden()

        # All rows, unfiltered: no count shown, still rows on the first screen.
        page.goto(f"{base}/logs/")
        page.wait_for_load_state("networkidle")
        expect(rows).to_have_count(8)
        expect(toggle.locator("[data-filters-count]")).to_be_hidden()
        box = rows.first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
        _shot(page, "logs-390")

        # No section link cuts its word; the nav row scrolls sideways instead.
        assert _nav_clipped(page) == []
        nav = page.eval_on_selector(".topbar .nav", "n => [n.scrollWidth, n.clientWidth]")
        assert nav[0] > nav[1]  # ten sections do not fit 390 px: the row scrolls
        widths = page.eval_on_selector_all(".topbar .nav a", "ls => ls.map(a => a.getBoundingClientRect().width)")
        texts = page.eval_on_selector_all(".topbar .nav a", "ls => ls.map(a => a.textContent.trim())")
        assert texts[:4] == ["Dashboard", "Logs", "API keys", "Analytics"]
        assert all(w >= 30 for w in widths), dict(zip(texts, widths, strict=True))

        # The table scrolls inside its card; the first column stays at the card's left.
        wrap = page.locator("#log-table").locator("xpath=..")
        sizes = wrap.evaluate("w => [w.scrollWidth, w.clientWidth]")
        assert sizes[0] > sizes[1], sizes
        first_cell = rows.first.locator("td").first
        other_cell = rows.first.locator("td.model")
        before, other_before = first_cell.bounding_box(), other_cell.bounding_box()
        wrap.evaluate("w => { w.scrollLeft = 200; }")
        assert wrap.evaluate("w => w.scrollLeft") >= 150
        after, other_after = first_cell.bounding_box(), other_cell.bounding_box()
        assert abs(after["x"] - before["x"]) <= 1, (before, after)
        assert other_after["x"] < other_before["x"] - 150  # the other columns did move
        head_first = page.locator("#log-table thead th").first.bounding_box()
        assert abs(head_first["x"] - before["x"]) <= 1

        # Analytics folds its filters the same way; alerts' table keeps its first column.
        page.goto(f"{base}/analytics/")
        page.wait_for_load_state("networkidle")
        expect(page.locator("#analytics-filters")).to_be_hidden()
        a_toggle = page.locator("#analytics-filters").locator("xpath=ancestor::details[1]/summary")
        a_toggle.click()
        expect(page.locator("#analytics-filters")).to_be_visible()
        a_toggle.click()
        _shot(page, "analytics-390")
        page.goto(f"{base}/alerts/")
        page.wait_for_load_state("networkidle")
        assert _nav_clipped(page) == []
        rules_wrap = page.locator("#alert-rules").locator("xpath=..")
        rule_cell = page.locator("#alert-rules tbody tr").first.locator("td").first
        rule_x = rule_cell.bounding_box()["x"]
        rules_wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
        assert rules_wrap.evaluate("w => w.scrollLeft") > 50
        assert abs(rule_cell.bounding_box()["x"] - rule_x) <= 1
        _shot(page, "alerts-390")

        # At desktop width the form shows and the button does not.
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{base}/logs/")
        page.wait_for_load_state("networkidle")
        expect(form).to_be_visible()
        expect(toggle).to_be_hidden()
        # Between 860 and 1280 px the sections take their own row: the user menu stays on screen.
        page.set_viewport_size({"width": 1000, "height": 900})
        assert page.eval_on_selector(".topbar-right", "e => e.getBoundingClientRect().right") <= 1000
        assert page.evaluate("document.documentElement.scrollWidth") == 1000
        assert _nav_clipped(page) == []
        # Narrow, then wide again: the folded form comes back.
        page.set_viewport_size(PHONE)
        page.reload()
        page.wait_for_load_state("networkidle")
        expect(form).to_be_hidden()
        page.set_viewport_size({"width": 1280, "height": 900})
        expect(form).to_be_visible()

        assert problems == []


def test_filters_show_without_javascript(live_server, acme, alice, monkeypatch):
    """Progressive enhancement: with scripts off, the phone layout shows the filter form open."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    from tests.browser.test_log_pages import CHROMIUM, LAUNCH_ARGS

    base = live_server.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(java_script_enabled=False, viewport=PHONE)
            page = context.new_page()
            page.goto(f"{base}/accounts/login/?next=/logs/")
            page.fill("#id_username", "alice@acme.test")
            page.fill("#id_password", "pw-for-tests-1")
            page.click("form button[type=submit]")
            page.wait_for_url(f"{base}/logs/")
            assert page.locator("#log-filters").is_visible()
            assert page.locator("#log-filters button[type=submit]").is_visible()
        finally:
            browser.close()
