"""The dashboard home and the operator's all-accounts view in a real headless Chromium: the
plotly charts drew (an SVG with data points, plotly.js served from our own static files) and
no request failed. See tests/browser/test_log_pages.py for the browser set-up and why the ORM is used
only before the browser starts."""

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from logs.ingest.services import ingest_records
from logs.partitions import forget_known_partitions
from tests.browser.test_log_pages import _login, chromium_context

pytestmark = pytest.mark.browser


def _spread(prefix: str, now, n: int, *, cost: str, today_start=None) -> list[dict]:
    """`n` records spread over the last 20 days, every fifth an error. The first lies at or
    after `today_start`, so today has one even in the first minute after local midnight."""
    records = []
    for i in range(n):
        ts = now - timedelta(minutes=1 + i * 97) if i < n // 2 else now - timedelta(days=1 + i % 20, minutes=i)
        if i == 0 and today_start is not None:
            ts = max(ts, today_start)
        record = {
            "request_id": f"{prefix}-{i:03d}",
            "timestamp": ts.isoformat(),
            "model": "gpt-4o-mini",
            "status": "error" if i % 5 == 0 else "success",
            "prompt_tokens": 100 + i,
            "completion_tokens": 20,
            "cost": cost,
            "api_key": f"{prefix}-key",
        }
        if record["status"] == "error":
            record["error_code"] = "rate_limit_exceeded"
        records.append(record)
    return records


def _charts_drawn(page, selector: str) -> int:
    """Wait until plotly drew the figure into `selector`; return its number of data points
    (bars are `g.point`, line markers `path.point`)."""
    page.wait_for_selector(f"{selector}.js-plotly-plot svg.main-svg")
    return page.locator(f"{selector} svg.main-svg .point").count()


def test_dashboard_and_operator_charts_draw(live_server, acme, globex, alice, olivia, monkeypatch):
    forget_known_partitions()
    now = timezone.now()
    acme.timezone = "Asia/Kolkata"
    acme.save(update_fields=["timezone"])
    kolkata = ZoneInfo("Asia/Kolkata")
    today_start = datetime.combine(now.astimezone(kolkata).date(), time(0), tzinfo=kolkata)
    acme_records = _spread("acme", now, 30, cost="0.125", today_start=today_start)
    assert ingest_records(account=acme, records=acme_records).accepted == 30
    assert ingest_records(account=globex, records=_spread("globex", now, 10, cost="2")).accepted == 10
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    base = live_server.url
    with chromium_context(base, timezone_id="Asia/Kolkata", tz_cookie="Asia%2FKolkata") as (_context, page, problems):
        _login(page, base, "alice@acme.test")
        page.goto(f"{base}/")
        page.wait_for_load_state("networkidle")
        expect(page.locator("h1")).to_have_text("Dashboard")
        expect(page.locator('[data-period="today"] [data-stat="requests"]')).not_to_have_text("0")
        # Each small chart drew its 30 days / 24 hours (bars and markers for every bucket).
        assert _charts_drawn(page, "#fig-requests-by-day-chart") == 30
        assert _charts_drawn(page, "#fig-cost-by-day-chart") == 30
        assert _charts_drawn(page, "#fig-requests-by-hour-chart") == 24
        assert "globex" not in page.content().lower()
        # The links lead on to the logs.
        page.click(".page-actions a[href='/logs/']")
        page.wait_for_url(re.compile(r"/logs/$"))
        page.wait_for_load_state("networkidle")
    assert problems == []

    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (_context, page, problems):
        _login(page, base, "olivia@operator.test")
        page.goto(f"{base}/analytics/operator/?range=30d")
        page.wait_for_load_state("networkidle")
        expect(page.locator("#operator-table tbody tr")).to_have_count(2)
        assert page.locator("#operator-table tbody tr").first.get_attribute("data-account") == "globex"
        # The top-accounts bar chart: one bar per account with a cost.
        assert _charts_drawn(page, "#fig-top-accounts-chart") == 2
        # Staff open an account's dashboard through the account switcher.
        page.locator("#operator-table tr[data-account=acme] button").click()
        page.wait_for_url(f"{base}/")
        page.wait_for_load_state("networkidle")
        expect(page.locator(".account-switcher, #account-switcher")).to_have_value(str(acme.pk))
        assert _charts_drawn(page, "#fig-requests-by-hour-chart") == 24
    assert problems == []
