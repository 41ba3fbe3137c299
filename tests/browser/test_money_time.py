"""Numbers and time speak one way in the console, checked in a real headless Chromium:
the topbar's "Times in" switch moves the same request's time on the log list and in
analytics alike (and the first visit learns the browser's zone without a reload), and
money reads by one rule (logs.templatetags.meterlog_format.format_usd) on every page.
See tests/browser/test_log_pages.py for the browser set-up."""

import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from alerts.models import AlertRule
from logs.ingest.services import ingest_records
from logs.partitions import forget_known_partitions
from tests.browser.test_log_pages import _login, chromium_context

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("METERLOG_SCREENSHOTS", "")) if os.environ.get("METERLOG_SCREENSHOTS") else None
MONEY = re.compile(r"-?\$([\d,]+)\.(\d+)")


def bad_money(text: str) -> list[str]:
    """Amounts that break the rule: not cents from $1; more than four significant digits,
    padding zeros or fewer than two decimals below."""
    bad = []
    for match in MONEY.finditer(text):
        whole, fraction = match.group(1), match.group(2)
        if whole.replace(",", "") != "0":
            wrong = len(fraction) != 2
        else:
            digits = fraction.lstrip("0")
            wrong = len(fraction) < 2 or len(digits) > 4 or (len(fraction) > 2 and fraction.endswith("0"))
        if wrong:
            bad.append(match.group(0))
    return bad


def test_the_checker_itself():
    assert bad_money("$0.0004824 $15.87 $40.22 $0.0243 $1,234.50 $0.50 $0.00 -$0.0001235") == []
    assert bad_money("$0.00048240 $40.223342 $15.86579 $0.000000000000 $0.5 $3.1") == [
        "$0.00048240", "$40.223342", "$15.86579", "$0.000000000000", "$0.5", "$3.1",
    ]  # fmt: skip


def _record(request_id, at, model, cost, key):
    record = {"request_id": request_id, "timestamp": at.isoformat(), "model": model, "status": "success",
              "prompt_tokens": 100, "completion_tokens": 20, "api_key": key}  # fmt: skip
    if cost is not None:
        record["cost"] = cost
    return record


def _shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def test_zone_switch_moves_the_same_request_on_logs_and_analytics(live_server, acme, alice, monkeypatch):
    forget_known_partitions()
    acme.timezone = "Europe/Berlin"
    acme.save()
    at = (timezone.now() - timedelta(days=2)).replace(minute=38, second=5, microsecond=0)
    assert ingest_records(account=acme, records=[_record("req-zone", at, "gpt-4o", "0.5", "k1")]).accepted == 1
    tokyo = at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S")
    berlin = at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M:%S")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = live_server.url

    # A first visit: no zone cookie yet. The login page sets it; nothing reloads.
    with chromium_context(base, timezone_id="Asia/Tokyo", tz_cookie=None) as (_ctx, page, problems):
        page.set_viewport_size({"width": 1280, "height": 900})
        loads = []
        page.on("load", lambda: loads.append(page.url))
        _login(page, base, "alice@acme.test")
        assert len(loads) == 2, loads  # the login page, then the log list: no reload in between

        def log_time() -> str:
            _open(page, f"{base}/logs/")
            return page.locator("table.data tbody tr time").first.inner_text()

        def analytics_time() -> str:
            _open(page, f"{base}/analytics/?tab=cost&range=7d")
            return page.locator('[data-table="top_requests"] tbody tr td').nth(1).inner_text()

        assert (log_time(), analytics_time()) == (tokyo, tokyo)
        assert page.locator("[data-active-zone]").inner_text() == "Asia/Tokyo"
        _shot(page, "analytics-my-zone")

        # The switch: account zone. It returns to the same page and every page follows.
        page.click("[data-zone-menu] summary")
        _shot(page, "zone-menu-open")
        page.click("[data-zone-menu] button[value=account]")
        page.wait_for_url(re.compile(r"/analytics/\?tab=cost&range=7d"))
        assert page.locator("[data-active-zone]").inner_text() == "Europe/Berlin"
        assert (analytics_time(), log_time()) == (berlin, berlin)
        _shot(page, "logs-account-zone")
        # The date fields show the range the preset chose, in that zone.
        _open(page, f"{base}/analytics/?tab=cost&range=7d")
        today = timezone.now().astimezone(ZoneInfo("Europe/Berlin")).date()
        assert page.input_value("#a-end") == today.isoformat()
        assert page.input_value("#a-start") == (today - timedelta(days=6)).isoformat()
        assert problems == []

    # Remembered for the user: a new browser session starts in the account's zone.
    with chromium_context(base, timezone_id="Asia/Tokyo", tz_cookie="Asia%2FTokyo") as (_ctx, page, problems):
        _login(page, base, "alice@acme.test")
        assert page.locator("[data-active-zone]").inner_text() == "Europe/Berlin"
        assert page.locator("table.data tbody tr time").first.inner_text() == berlin
        assert problems == []


def test_money_reads_one_way_on_every_page(live_server, acme, alice, monkeypatch):
    forget_known_partitions()
    acme.timezone = "UTC"
    acme.save()
    now = timezone.now()
    records = [
        _record("big", now - timedelta(minutes=3), "gpt-4o", "40.223342", "k1"),
        _record("mid", now - timedelta(minutes=4), "gpt-4o", "15.86579", "k2"),
        _record("tiny", now - timedelta(minutes=5), "gpt-4o-mini", "0.0004824", "k1"),
        _record("small", now - timedelta(minutes=6), "gpt-4o-mini", "0.0243", "k2"),
        _record("nameless", now - timedelta(minutes=7), "house-model-x", None, "k3"),
    ]
    assert ingest_records(account=acme, records=records).accepted == 5
    AlertRule.objects.create(
        account=acme, kind="budget", name="Monthly cap", params={"amount": "1500", "period": "monthly"},
        state="ok", last_value=Decimal("56.113914400000"), last_threshold=Decimal(1500),
    )  # fmt: skip
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = live_server.url
    today = now.date()
    pages = {
        "dashboard": "/",
        "logs": "/logs/",
        "log-detail": "/logs/tiny/",
        "keys": "/keys/",
        "pricing": "/pricing/",
        "analytics-cost": "/analytics/?tab=cost&range=7d",
        "analytics-trend": "/analytics/?tab=trend&range=7d",
        "analytics-peak": "/analytics/?tab=peak&range=7d",
        "analytics-errors": "/analytics/?tab=errors&range=7d",
        "alerts": "/alerts/",
        "reports": "/reports/",
        "report-generate": f"/reports/generate/?start={today - timedelta(days=6)}&end={today}",
        "exports": "/exports/",
    }
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (_ctx, page, problems):
        page.set_viewport_size({"width": 1440, "height": 900})
        _login(page, base, "alice@acme.test")
        seen = {}
        for name, path in pages.items():
            _open(page, base + path)
            text = page.inner_text("body")
            assert bad_money(text) == [], (name, bad_money(text))
            assert "0.000000000000" not in text, name
            seen[name] = text
            _shot(page, f"money-{name}")
        assert problems == []

        # Known values, as the rule writes them, and every digit on hover.
        assert "$40.22" in seen["logs"] and "$15.87" in seen["logs"] and "$0.0004824" in seen["logs"]
        assert page.goto(base + "/logs/") and page.get_attribute('.money:text-is("$15.87")', "title") == "$15.86579"
        assert "$56.11" in seen["logs"]  # the totals bar
        assert "$0.0004824" in seen["log-detail"]
        assert "$40.22" in seen["keys"] and "unpriced" in seen["keys"]
        assert "$56.11" in seen["analytics-cost"]
        _open(page, base + pages["analytics-cost"])
        # Folded under "Numbers": read the cells' text, not what is on screen.
        by_model = " ".join(page.locator('[data-table="cost_by_model"] td').all_text_contents())
        assert "$56.09" in by_model and "$0.02478" in by_model and "unpriced" in by_model
        assert bad_money(by_model) == []
        assert "$56.11" in seen["dashboard"]
        assert "$56.11" in seen["alerts"] and "$1,500.00" in seen["alerts"]
        assert "$56.11" in seen["report-generate"]
        # Charts say "unpriced" on the bar of a model without a price, and hover by the rule.
        page.wait_for_selector("#chart-cost_by_model .main-svg")
        labels = page.locator("#chart-cost_by_model svg text.bartext").all_text_contents()
        assert sorted(labels) == sorted(["$56.09", "$0.02478", "unpriced"]), labels
        assert page.get_attribute('#chart-cost_by_model td[title="$0.0247824"]', "title") == "$0.0247824"
