"""The console's pages under its Content-Security-Policy in a real headless Chromium: no
`securitypolicyviolation` event and no console error or warning on the dashboard, the log
list and a log detail, every analytics tab, the exports page, the retention page, the
account settings (switching privacy mode on through its confirm dialog), the access log, the
operator page, the operators' retention page and the API docs, and the charts drew (an SVG
in each chart container).

The gateway's strings reach the charts as plain text: a model, API key, error code or
account name written as HTML shows literally and never becomes a link or markup inside
a chart. See tests/browser/test_log_pages.py for the browser set-up and why the ORM is used
only before the browser starts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from console.audit import Actor, record_event
from logs.ingest.services import ingest_records
from logs.partitions import forget_known_partitions
from logs.retention.services import purge_expired_logs
from tests.browser.test_log_pages import _login, chromium_context

pytestmark = pytest.mark.browser

EVIL_MODEL = '<a href="https://evil.example">x</a>'
EVIL_KEY = "<b>bold-key</b>"
EVIL_CODE = "<i>rate</i>&amp;limit"
EVIL_ACCOUNT = '<a href="https://evil.example/acct">Globex</a>'

# Registered before any page script runs, on every page of the context.
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(
    e.violatedDirective + " blocked " + e.blockedURI + " at " + e.sourceFile + ":" + e.lineNumber
  );
});
"""


def _records(prefix: str, n: int, now) -> list[dict]:
    out = []
    for i in range(n):
        record = {
            "request_id": f"{prefix}-{i:03d}",
            "timestamp": (now - timedelta(minutes=5 + 61 * i)).isoformat(),
            "model": [EVIL_MODEL, "gpt-4o-mini"][i % 2],
            "status": "error" if i % 4 == 0 else "success",
            "prompt_tokens": 100 + i,
            "completion_tokens": 10 + i,
            "cost": f"0.00{i % 9 + 1}",
            "api_key": [EVIL_KEY, f"{prefix}-key"][i % 2],
        }
        if record["status"] == "error":
            record["error_code"] = EVIL_CODE
        out.append(record)
    return out


def _visit(page, url: str, console: list[str]) -> None:
    console.clear()
    page.goto(url)
    page.wait_for_load_state("networkidle")


def _assert_clean(page, console: list[str], where: str) -> None:
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], (where, violations)
    assert console == [], (where, console)


def _charts(page, count: int) -> None:
    """`count` chart containers on the page, each with plotly's SVG in it."""
    page.wait_for_function(
        "n => document.querySelectorAll('[data-figure] svg.main-svg').length >= n && "
        "Array.from(document.querySelectorAll('[data-figure]')).every(el => el.querySelector('svg.main-svg'))",
        arg=count,
    )
    assert page.locator("[data-figure]").count() == count


def _no_links_in_charts(page) -> None:
    # Plotly turns <a href> in its text into an SVG <a>; none may exist in any chart.
    assert page.locator("[data-figure] svg a").count() == 0
    assert page.locator('[data-figure] svg a[href^="https://evil.example"]').count() == 0
    assert page.locator("[data-figure] svg text b, [data-figure] svg text i").count() == 0
    bold = page.eval_on_selector_all(
        "[data-figure] svg tspan", "els => els.filter(e => e.style.fontWeight === 'bold').length"
    )
    assert bold == 0


def _tick_texts(page, chart: str) -> list[str]:
    return page.locator(f"{chart} svg .ytick text").all_text_contents()


def test_pages_run_under_the_policy_and_user_strings_stay_text(live_server, acme, globex, alice, olivia, monkeypatch):
    forget_known_partitions()
    now = timezone.now()
    assert ingest_records(account=acme, records=_records("acme", 24, now)).accepted == 24
    assert ingest_records(account=globex, records=_records("globex", 4, now)).accepted == 4
    globex.name = EVIL_ACCOUNT
    globex.save(update_fields=["name"])
    purge_expired_logs()  # a run for the retention pages to show
    record_event(account=acme, action="settings_changed", actor=Actor(user=alice), details={"name": [EVIL_KEY, "Acme"]})
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    base = live_server.url
    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (context, page, problems):
        context.add_init_script(LISTEN)
        console: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning", "trace") and console.append(f"{m.type}: {m.text}"))
        _login(page, base, "alice@acme.test")

        _visit(page, f"{base}/", console)
        _charts(page, 3)
        _assert_clean(page, console, "dashboard")

        _visit(page, f"{base}/logs/", console)
        assert page.locator("table.data tbody tr").count() == 24
        _assert_clean(page, console, "log list")
        # The model column of the list is HTML-escaped by the template, shown literally.
        assert EVIL_MODEL in page.locator("table.data tbody td.model").all_inner_texts()

        _visit(page, f"{base}/logs/acme-000/", console)
        assert page.get_by_text(EVIL_MODEL, exact=True).count() >= 1
        _assert_clean(page, console, "log detail")

        charts_per_tab = {}
        for tab in ("cost", "trend", "peak", "errors"):
            _visit(page, f"{base}/analytics/?tab={tab}&range=7d", console)
            charts_per_tab[tab] = page.locator("[data-figure]").count()
            assert charts_per_tab[tab] >= 2, tab
            _charts(page, charts_per_tab[tab])
            _no_links_in_charts(page)
            _assert_clean(page, console, f"analytics {tab}")
            if tab == "cost":
                assert EVIL_MODEL in _tick_texts(page, "#chart-cost_by_model")
                assert EVIL_KEY in _tick_texts(page, "#chart-cost_by_key")
            if tab == "errors":
                assert EVIL_CODE in _tick_texts(page, "#chart-errors_by_code")
                assert EVIL_MODEL in _tick_texts(page, "#chart-errors_by_model")

        # Hover text is plain too.
        _visit(page, f"{base}/analytics/?tab=cost&range=7d", console)
        _charts(page, charts_per_tab["cost"])
        bars = page.locator("#chart-cost_by_model svg .bars .point path")
        assert bars.count() == 2
        for index in range(2):
            # Away first, so the label read below is the new bar's, not the last one's.
            page.mouse.move(0, 0)
            page.wait_for_selector("#chart-cost_by_model .hoverlayer .hovertext", state="detached")
            bars.nth(index).hover(force=True)
            page.wait_for_selector("#chart-cost_by_model .hoverlayer .hovertext")
            hover = page.locator("#chart-cost_by_model .hoverlayer .hovertext").text_content()
            if hover.startswith(EVIL_MODEL):
                break
        assert hover.startswith(f"{EVIL_MODEL}: $"), hover
        assert page.locator("#chart-cost_by_model .hoverlayer a").count() == 0

        _visit(page, f"{base}/exports/", console)
        assert page.locator("h1").inner_text() != ""
        _assert_clean(page, console, "exports")

        _visit(page, f"{base}/retention/", console)
        assert page.locator("#retention-period").inner_text() == "30 days (standard)"
        assert page.locator("#last-purge-rows").inner_text() == "0"
        _assert_clean(page, console, "retention")

        _visit(page, f"{base}/settings/", console)
        assert page.locator("#privacy-fields tbody tr").count() >= 9
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Turn privacy mode on").click()
        page.wait_for_selector("text=Turn privacy mode off")
        _assert_clean(page, console, "settings")

        _visit(page, f"{base}/settings/access-log/", console)
        actions = page.locator("#access-log tbody tr td:nth-child(3)").all_inner_texts()
        assert actions == ["Privacy mode on", "Settings changed"]
        assert f"name: {EVIL_KEY} → Acme" in page.locator("#access-log tbody").inner_text()
        assert page.locator("#access-log tbody b").count() == 0
        _assert_clean(page, console, "access log")

        _visit(page, f"{base}/deletions/", console)
        assert page.locator("#deletion-form").count() == 1
        _assert_clean(page, console, "deletion requests")

        _visit(page, f"{base}/api/v1/docs/", console)
        page.wait_for_selector(".swagger-ui .info .title")
        assert "Meterlog API" in page.locator(".swagger-ui .info .title").inner_text()
        assert page.locator(".swagger-ui .opblock").count() > 3  # the operations were read from the schema
        _assert_clean(page, console, "API docs")
    assert problems == []

    with chromium_context(base, timezone_id="UTC", tz_cookie="UTC") as (context, page, problems):
        context.add_init_script(LISTEN)
        console = []
        page.on("console", lambda m: m.type in ("error", "warning", "trace") and console.append(f"{m.type}: {m.text}"))
        _login(page, base, "olivia@operator.test")
        _visit(page, f"{base}/analytics/operator/?range=30d", console)
        _charts(page, 1)
        _no_links_in_charts(page)
        assert EVIL_ACCOUNT in _tick_texts(page, "#fig-top-accounts-chart")
        _assert_clean(page, console, "operator")

        _visit(page, f"{base}/operator/retention/", console)
        assert page.locator("#retention-accounts tbody tr").count() == 2
        name_cell = page.locator('#retention-accounts tr[data-account="globex"] td').first
        assert name_cell.inner_text().startswith(EVIL_ACCOUNT)  # the name as text, not a link
        assert page.locator('a[href^="https://evil.example"]').count() == 0
        assert page.locator("#purge-runs tbody tr[data-run]").count() == 1
        page.locator("#purge-runs details summary").first.click()
        assert page.locator('#purge-runs [data-run-account="acme"]').is_visible()
        _assert_clean(page, console, "operator retention")

        _visit(page, f"{base}/operator/deletions/", console)
        assert page.locator("#pending-deletions").count() == 1
        _assert_clean(page, console, "operator deletions")
    assert problems == []
