"""The "Generate report" page in a real headless Chromium: under the console's CSP, every
chart drawn, and before printing each chart redrawn inside an A4 page's width; the print
stylesheet hides the navigation and the form."""

import pytest

from tests.alerts.reports.conftest import ingest, records
from tests.browser.test_log_pages import _login, chromium_context
from tests.browser.test_security_policy import LISTEN

pytestmark = pytest.mark.browser


def test_generate_page_draws_its_charts_and_fits_them_to_the_printed_page(live_server, report_data, alice, monkeypatch):
    from datetime import UTC, datetime, timedelta

    # A gateway string written as HTML stays text in the charts.
    ingest(report_data, records("evil", start=datetime(2026, 11, 5, tzinfo=UTC), n=4, step=timedelta(hours=1),
                                models=['<a href="https://evil.example">x</a>'], keys=["k"]))  # fmt: skip
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (context, page, problems):
        context.add_init_script(LISTEN)
        page.set_viewport_size({"width": 1440, "height": 900})
        _login(page, base, "alice@acme.test")
        page.goto(f"{base}/reports/generate/?start=2026-11-01&end=2026-11-30")
        page.wait_for_function(
            "document.querySelectorAll('[data-figure]').length > 0 && "
            "Array.from(document.querySelectorAll('[data-figure]')).every(el => el.querySelector('svg.main-svg'))"
        )
        assert page.locator("[data-figure]").count() == 6
        assert page.locator("[data-figure] svg a").count() == 0
        wide = page.eval_on_selector(".report-chart-cost_by_day .main-svg", "el => el.getBoundingClientRect().width")
        assert wide > 1000  # drawn at the screen's width

        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        page.emulate_media(media="print")
        page.wait_for_function(
            "Array.from(document.querySelectorAll('.report-chart .main-svg'))"
            ".every(el => el.getBoundingClientRect().width <= 700)"
        )
        assert page.locator(".topbar").is_hidden() and page.locator("form.filters").is_hidden()
        assert page.locator(".page-actions").is_hidden()
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF")

        page.evaluate("window.dispatchEvent(new Event('afterprint'))")
        page.emulate_media(media="screen")
        page.wait_for_function(
            "document.querySelector('.report-chart-cost_by_day .main-svg').getBoundingClientRect().width > 1000"
        )
        assert page.evaluate("window.__cspViolations") == []
        assert problems == []
