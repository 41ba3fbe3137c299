"""The log list and detail in headless Chromium: the type-ahead multi-selects and the filter
chips, the live tail showing a row ingested (through the real ingest API) during the test,
and previous / next on the detail page within the filtered list.

With METERLOG_SCREENSHOTS=<dir> the tests also save screenshots at 1440 and 390 px there.
The ORM is used only before the browser starts (see tests/browser/test_log_pages.py).
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from console.models import ApiToken
from logs.ingest.services import ingest_records
from tests.browser.test_log_pages import _login, chromium_context

pytestmark = pytest.mark.browser

MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022", "o3-mini"]
KEYS = ["team-a", "team-b", "research-batch-jobs"]
SHOTS = os.environ.get("METERLOG_SCREENSHOTS")


def _spec(i: int, now) -> dict:
    record = {
        "request_id": f"req-{i:03d}",
        "timestamp": (now - timedelta(minutes=3 * i + 2)).isoformat(),
        "model": MODELS[i % 4],
        "status": "error" if i % 6 == 5 else "success",
        "prompt_tokens": 100 + 7 * i,
        "completion_tokens": 20 + i,
        "cost": f"0.000{i + 1:03d}",
        "api_key": KEYS[i % 3],
        "latency_ms": 300 + 11 * i,
        "ip_address": "203.0.113.9",
    }
    if record["status"] == "error":
        record |= {"error_code": "rate_limit_exceeded", "error_message": "Rate limit reached", "prompt_tokens": 0}
    return record


def _live(request_id: str, timestamp: str, **fields) -> dict:
    return {"request_id": request_id, "timestamp": timestamp, "status": "success", "prompt_tokens": 1,
            "completion_tokens": 1} | fields  # fmt: skip


def _ids(page) -> list[str]:
    return page.locator("#log-table tbody tr td.mono a").all_inner_texts()


def _shot(page, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


@pytest.fixture
def acme_rows(acme, globex):
    now = timezone.now()
    specs = [_spec(i, now) for i in range(24)]
    assert ingest_records(account=acme, records=specs).accepted == 24
    other = [_spec(i, now) | {"request_id": f"globex-{i}", "model": "globex-only-model"} for i in range(3)]
    assert ingest_records(account=globex, records=other).accepted == 3
    return specs


def test_multi_select_filters_with_type_ahead_and_chips(live_server, alice, acme_rows, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (_context, page, problems):
        page.set_viewport_size({"width": 1440, "height": 900})
        _login(page, base, "alice@acme.test")
        expect(page.locator("#log-table tbody tr")).to_have_count(24)

        # The account's models are offered, never another account's.
        search = page.locator("#f-model-search")
        search.click()
        options = page.locator("#f-model-list .ms-option")
        assert sorted(options.all_inner_texts()) == sorted(MODELS)
        # Type-ahead narrows the list; Enter picks the first match.
        search.fill("sonn")
        expect(options).to_have_count(1)
        search.press("Enter")
        expect(search).to_have_value("")  # the typed text goes once it has picked
        search.fill("o3")
        expect(options).to_have_text(["o3-mini"])
        search.press("Enter")
        expect(page.locator("#f-model + .ms .ms-chip")).to_have_text(["claude-3-5-sonnet-20241022×", "o3-mini×"])
        # The native select holds the choice the form submits.
        assert page.eval_on_selector("#f-model", "s => Array.from(s.selectedOptions, o => o.value)") == [
            "claude-3-5-sonnet-20241022",
            "o3-mini",
        ]
        page.locator("#f-key-search").fill("batch")
        page.locator("#f-key-search").press("Enter")
        # A click on an option picks too.
        page.locator("#f-key-search").fill("team-a")
        page.locator("#f-key-list .ms-option", has_text="team-a").dispatch_event("mousedown")
        if SHOTS:
            page.locator("#f-key-search").fill("team")
            _shot(page, "list-multiselect-open")
            page.locator("#f-key-search").fill("")
        page.locator("#f-key-search").press("Escape")
        page.click("#log-filters button[type=submit]")
        page.wait_for_url(re.compile(r"model=claude-3-5-sonnet-20241022&model=o3-mini"))
        assert "api_key=research-batch-jobs&api_key=team-a" in page.url
        expected = [
            s["request_id"]
            for s in acme_rows
            if s["model"] in ("claude-3-5-sonnet-20241022", "o3-mini")
            and s["api_key"] in ("research-batch-jobs", "team-a")
        ]
        assert expected and _ids(page) == expected
        # The widgets come back with the URL's values as chips (in the picker's order); the
        # chip row names each filter in the URL's order.
        expect(page.locator("#f-key + .ms .ms-chip")).to_have_text(["research-batch-jobs×", "team-a×"])
        chips = page.locator("#filter-chips .chip")
        expect(chips).to_have_text(
            [
                "Model: claude-3-5-sonnet-20241022× (remove)",
                "Model: o3-mini× (remove)",
                "API key: research-batch-jobs× (remove)",
                "API key: team-a× (remove)",
            ]
        )
        _shot(page, "list-filtered")

        # One click on a chip drops that value and keeps the rest.
        chips.filter(has_text="o3-mini").click()
        page.wait_for_load_state("networkidle")
        assert "o3-mini" not in page.url and "model=claude-3-5-sonnet-20241022" in page.url
        expected = [
            s["request_id"]
            for s in acme_rows
            if s["model"] == "claude-3-5-sonnet-20241022" and s["api_key"] in ("research-batch-jobs", "team-a")
        ]
        assert _ids(page) == expected

        # Backspace in an empty box drops the last chip; applying shows every model again.
        page.locator("#f-model-search").click()
        page.locator("#f-model-search").press("Backspace")
        expect(page.locator("#f-model + .ms .ms-chip")).to_have_count(0)
        # Nothing is highlighted until one types, so Enter in the box applies the filters.
        page.locator("#f-model-search").press("Enter")
        page.wait_for_load_state("networkidle")
        assert "model=" not in page.url
        assert len(_ids(page)) == len([s for s in acme_rows if s["api_key"] in ("research-batch-jobs", "team-a")])
    assert problems == []


def test_live_tail_shows_a_row_ingested_during_the_test(live_server, alice, acme, acme_rows, monkeypatch):
    _, token = ApiToken.generate(account=acme, scope="ingest")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (context, page, problems):
        page.set_viewport_size({"width": 1440, "height": 900})
        _login(page, base, "alice@acme.test")
        page.goto(f"{base}/logs/?model=gpt-4o")
        first_ids = _ids(page)
        assert first_ids == [s["request_id"] for s in acme_rows if s["model"] == "gpt-4o"]
        page.click("#live-toggle")
        expect(page.locator("#live-status")).to_contain_text("checked")

        def ingest(*records):
            response = context.request.post(
                f"{base}/api/v1/ingest",
                data=list(records),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status == 200, response.text()
            assert response.json()["accepted"] == len(records), response.text()

        now = timezone.now().isoformat()
        ingest(
            _live("live-new", now, model="gpt-4o", prompt_tokens=42, latency_ms=987, api_key="team-b"),
            _live("live-other-model", now, model="gpt-4o-mini"),
        )
        rows = page.locator("#log-table tbody tr")
        # Polled every 3 s: the new row lands on top, with the page's columns and the filter kept.
        expect(rows.first.locator("td.mono a")).to_have_text("live-new", timeout=15_000)
        expect(rows.first).to_have_class(re.compile("row-new"))
        expect(rows.first.locator("[data-col=latency]")).to_have_text("987 ms")
        assert _ids(page) == ["live-new", *first_ids]
        assert rows.first.locator("td.mono a").get_attribute("href") == "/logs/live-new/?model=gpt-4o"
        expect(page.locator("#live-status")).to_contain_text("1 new since Live was switched on")
        _shot(page, "list-live")

        # Editing a filter pauses the tail: a row sent meanwhile does not show.
        page.fill("#f-q", "something")
        expect(page.locator("#live-status")).to_contain_text("Paused: apply the filters", timeout=10_000)
        ingest(_live("live-while-paused", timezone.now().isoformat(), model="gpt-4o"))
        page.wait_for_timeout(4_000)
        assert "live-while-paused" not in _ids(page)

        # The switch is remembered for the tab: after applying other filters it runs again
        # and picks the row up.
        page.fill("#f-q", "")
        page.click("#log-filters button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.is_checked("#live-toggle")
        expect(rows.first.locator("td.mono a")).to_have_text("live-while-paused")
    assert problems == []


def test_detail_previous_next_within_the_filtered_list(live_server, alice, acme_rows, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    expected = [s["request_id"] for s in acme_rows if s["model"] == "gpt-4o-mini" and s["api_key"] != "team-b"]
    base = live_server.url
    with chromium_context(base, timezone_id="Asia/Tokyo", tz_cookie="Asia%2FTokyo") as (context, page, problems):
        page.set_viewport_size({"width": 1440, "height": 900})
        _login(page, base, "alice@acme.test")
        list_url = f"{base}/logs/?model=gpt-4o-mini&api_key=team-a&api_key=research-batch-jobs"
        page.goto(list_url)
        assert _ids(page) == expected and len(expected) >= 3
        page.locator("#log-table tbody tr td.mono a").first.click()
        page.wait_for_load_state("networkidle")
        expect(page.locator("#request-id")).to_have_text(expected[0])
        expect(page.locator("#newer-link")).to_have_count(0)  # the newest of this list
        _shot(page, "detail")

        # Older walks the filtered list, skipping the rows it leaves out.
        page.click("#older-link")
        page.wait_for_load_state("networkidle")
        expect(page.locator("#request-id")).to_have_text(expected[1])
        page.keyboard.press("j")  # the same with the keyboard
        page.wait_for_load_state("networkidle")
        expect(page.locator("#request-id")).to_have_text(expected[2])
        page.click("#newer-link")
        page.wait_for_load_state("networkidle")
        expect(page.locator("#request-id")).to_have_text(expected[1])
        page.keyboard.press("k")
        page.wait_for_load_state("networkidle")
        expect(page.locator("#request-id")).to_have_text(expected[0])

        # The raw JSON view, and the copy button puts the id on the clipboard.
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page.click("#raw-json-panel summary")
        expect(page.locator("#raw-json")).to_contain_text(f'"request_id": "{expected[0]}"')
        page.click("button[data-copy-target='#request-id']")
        expect(page.locator("button[data-copy-target='#request-id']")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == expected[0]

        # "← All logs" returns to the filtered list it came from.
        page.click("#back-to-list")
        page.wait_for_load_state("networkidle")
        assert page.url == list_url
        assert _ids(page) == expected
    assert problems == []
