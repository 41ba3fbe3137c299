"""The analytics page in a real headless Chromium: every tab draws its plotly charts (SVG
with data points) from our own static plotly.js, with no failed request, HTTP error or
console error; clicking an error bar opens the matching failed requests in the log list.
See tests/browser/test_log_pages.py for the browser set-up and why the ORM is used only before the
browser starts."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from logs.ingest.services import ingest_records
from logs.partitions import forget_known_partitions
from tests.browser.test_log_pages import _login, chromium_context

pytestmark = pytest.mark.browser


def _records(prefix: str, n: int, now) -> list[dict]:
    out = []
    for i in range(n):
        record = {
            "request_id": f"{prefix}-{i:03d}",
            "timestamp": (now - timedelta(minutes=5 + 97 * i)).isoformat(),
            "model": ["gpt-4o-mini", "gpt-4o"][i % 2],
            "status": "error" if i % 5 == 0 else "success",
            "prompt_tokens": 100 + i,
            "completion_tokens": 10 + i,
            "cost": f"0.00{i % 9 + 1}",
            "api_key": f"{prefix}-key-{i % 3}",
        }
        if record["status"] == "error":
            record["error_code"] = "rate_limit_exceeded"
        out.append(record)
    return out


def _drawn(page, selector: str) -> int:
    """How many non-empty SVG paths (or heatmap images) match inside the page's plots."""
    return page.eval_on_selector_all(
        selector,
        "els => els.filter(e => e.tagName.toLowerCase() === 'image' ? !!e.getAttribute('href') : "
        "(e.getAttribute('d') || '').replace(/M0,0Z/g, '').length > 2).length",
    )


def _open_tab(page, base: str, tab: str) -> None:
    page.goto(f"{base}/analytics/?tab={tab}&range=7d")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector(".js-plotly-plot .main-svg")


def test_every_tab_draws_its_charts(live_server, acme, globex, alice, monkeypatch):
    forget_known_partitions()
    now = timezone.now()
    records = _records("acme", 40, now)
    assert ingest_records(account=acme, records=records).accepted == 40
    assert ingest_records(account=globex, records=_records("globex-secret", 5, now)).accepted == 5
    errors_expected = sum(r["status"] == "error" for r in records)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    base = live_server.url
    with chromium_context(base, timezone_id="America/New_York", tz_cookie="America%2FNew_York") as (
        _ctx,
        page,
        problems,
    ):
        _login(page, base, "alice@acme.test")

        _open_tab(page, base, "cost")
        assert page.locator(".js-plotly-plot").count() == 5  # with the two stacked charts
        assert _drawn(page, "#chart-cost_over_time_by_model .bars path") >= 1
        assert _drawn(page, "#chart-cost_over_time_by_api_key .bars path") >= 1
        assert _drawn(page, "#chart-cost_by_day .bars path") >= 1
        assert _drawn(page, "#chart-cost_by_model .bars path") == 2
        assert _drawn(page, "#chart-cost_by_key .bars path") == 3
        assert page.locator("#chart-top_requests tbody tr").count() == 10
        assert "globex" not in page.content()

        _open_tab(page, base, "trend")
        assert page.locator(".js-plotly-plot").count() == 3
        assert _drawn(page, "#chart-requests_over_time .scatterlayer .trace path.js-line") >= 1
        assert _drawn(page, "#chart-requests_over_time .scatterlayer .point") >= 2
        assert _drawn(page, "#chart-tokens_over_time .bars path") >= 2
        assert _drawn(page, "#chart-cost_over_time .scatterlayer .trace path.js-line") >= 1

        _open_tab(page, base, "peak")
        assert _drawn(page, "#chart-weekday_hour .heatmaplayer image") == 1
        assert _drawn(page, "#chart-hour_of_day .bars path") >= 2
        page.locator(".totals").filter(has_text="Busiest hour").wait_for()

        _open_tab(page, base, "errors")
        assert _drawn(page, "#chart-error_rate .scatterlayer .point") >= 2
        assert page.locator("#chart-error_rate .shapelayer path").count() == 1  # the 10% alert level
        assert _drawn(page, "#chart-errors_by_model .bars path") == 2
        bar = page.locator("#chart-errors_by_code .bars path").first
        bar.scroll_into_view_if_needed()
        box = bar.bounding_box()
        assert box and box["width"] > 0
        # A click on the bar opens the failed requests behind it in the log list.
        # Plotly clicks the point under the hover, so hover first.
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.locator("#chart-errors_by_code .hoverlayer .hovertext").wait_for()
        page.mouse.click(x, y)
        page.wait_for_url(re.compile(r"/logs/\?status=error&.*error_code=rate_limit_exceeded"))
        page.wait_for_load_state("networkidle")
        assert page.locator("table.data tbody tr").count() == errors_expected

        # The filter bar keeps its state in the URL; switching tabs keeps it too.
        page.goto(f"{base}/analytics/?tab=cost&range=30d&model=gpt-4o&zone=viewer")
        page.wait_for_selector(".js-plotly-plot .main-svg")
        page.click("nav.tabs a:has-text('Usage trend')")
        page.wait_for_url(re.compile(r"tab=trend"))
        assert re.search(r"range=30d", page.url) and "model=gpt-4o" in page.url and "zone=viewer" in page.url
        page.wait_for_selector(".js-plotly-plot .main-svg")
        assert "times in America/New_York" in page.locator(".page-actions").inner_text()
        # A preset applies at once, keeping the tab and filters; empty dates stay out of the URL.
        page.click("#analytics-filters label:has-text('90d')")
        page.wait_for_url(re.compile(r"range=90d"))
        assert "tab=trend" in page.url and "model=gpt-4o" in page.url and "start=" not in page.url
        page.wait_for_selector(".js-plotly-plot .main-svg")

    assert problems == []
