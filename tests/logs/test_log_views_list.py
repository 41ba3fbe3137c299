"""The log list's columns, remembered view settings, filter chips, presets and live tail
(GET /logs/?newer_than=...), through the Django test client against known rows."""

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs import list_prefs
from logs.models import AccountModel, ApiKey, RequestLog
from logs.pagination import encode_cursor
from tests.factories import make_log

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def _ids(response) -> list[str]:
    return [row.request_id for row in response.context["rows"]]


def _header(body: str) -> list[str]:
    """The visible column headers, in order."""
    thead = body[body.index("<thead>") : body.index("</thead>")]
    return [text for attrs, text in re.findall(r"<th([^>]*)>([^<]+)</th>", thead) if " hidden" not in attrs]


def test_rows_show_latency_and_the_error_code(client, alice, acme):
    make_log(acme, request_id="ok", latency_ms=1234, timestamp=BASE)
    make_log(acme, request_id="failed", status="error", error_code="rate_limit_exceeded", timestamp=BASE + timedelta(1))
    client.force_login(alice)
    body = client.get("/logs/", {"model": "gpt-4o-mini"}).content.decode()
    assert _header(body) == [
        "Time",
        "Model",
        "Prompt",
        "Completion",
        "Total",
        "Cost",
        "Latency",
        "Status",
        "API key",
        "Request ID",
    ]
    assert '<td class="num" data-col="latency">1,234 ms</td>' in body
    # The failed row names its code in the cell, as a link that filters by it (keeping the filters).
    failed = body[body.index('class="row-error"') :]
    failed = failed[: failed.index("</tr>")]
    assert 'href="?model=gpt-4o-mini&amp;error_code=rate_limit_exceeded"' in failed
    assert ">rate_limit_exceeded</a>" in failed


def test_column_and_page_size_cookies_shape_the_page(client, alice, acme):
    for i in range(120):
        make_log(acme, request_id=f"r-{i:03d}", timestamp=BASE + timedelta(seconds=i), ip_address="10.1.2.3")
    client.force_login(alice)
    response = client.get("/logs/")
    assert len(_ids(response)) == 50  # the default
    assert '<td class="mono" data-col="ip" hidden>10.1.2.3</td>' in response.content.decode()  # off by default

    client.cookies[list_prefs.COLUMNS_COOKIE] = "cost,ip,nonsense"
    client.cookies[list_prefs.PAGE_SIZE_COOKIE] = "100"
    response = client.get("/logs/")
    assert _ids(response) == [f"r-{i:03d}" for i in reversed(range(20, 120))]
    body = response.content.decode()
    assert _header(body) == ["Time", "Cost", "IP", "Request ID"]
    assert '<td class="mono" data-col="ip">10.1.2.3</td>' in body
    assert '<td class="model" data-col="model" hidden>' in body
    assert '<option value="100" selected>' in body

    # A size that is not offered falls back to 50; "-" hides every optional column.
    client.cookies[list_prefs.PAGE_SIZE_COOKIE] = "100000"
    client.cookies[list_prefs.COLUMNS_COOKIE] = "-"
    response = client.get("/logs/")
    assert len(_ids(response)) == 50
    assert _header(response.content.decode()) == ["Time", "Request ID"]


def test_chips_name_each_filter_and_link_to_the_list_without_it(client, alice, acme):
    ApiKey.objects.create(
        account=acme, identifier="team-a", fingerprint="fp", display_name="Search team", first_seen=BASE, last_seen=BASE
    )
    client.force_login(alice)
    query = "model=gpt-4o&model=o3-mini&api_key=team-a&status=error&min_cost=0.5&q=boom&cursor=" + encode_cursor(
        BASE, 7
    )
    response = client.get("/logs/?" + query)
    chips = {chip.label: parse_qs(chip.remove_url[1:]) for chip in response.context["chips"]}
    assert list(chips) == [
        "Model: gpt-4o",
        "Model: o3-mini",
        "API key: Search team",
        "Status: Error",
        "Cost ≥ $0.5",
        "Search: “boom”",
    ]
    # Removing one value keeps the others and starts from the newest row.
    assert chips["Model: gpt-4o"] == {
        "model": ["o3-mini"],
        "api_key": ["team-a"],
        "status": ["error"],
        "min_cost": ["0.5"],
        "q": ["boom"],
    }
    assert chips["Search: “boom”"]["model"] == ["gpt-4o", "o3-mini"] and "q" not in chips["Search: “boom”"]
    body = html.unescape(response.content.decode())
    assert 'href="?model=o3-mini&api_key=team-a&status=error&min_cost=0.5&q=boom"' in body
    assert "Clear all" in body
    assert client.get("/logs/").context["chips"] == []


def test_a_preset_fills_the_date_fields_in_the_viewers_zone(client, alice, acme):
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Asia/Tokyo"
    before = timezone.now()
    body = client.get("/logs/", {"range": "24h"}).content.decode()
    start = re.search(r'id="f-start" name="start" value="([^"]+)" step="1" data-preset', body).group(1)
    end = re.search(r'id="f-end" name="end" value="([^"]+)" step="1" data-preset', body).group(1)
    tokyo = timezone.get_fixed_timezone(9 * 60)
    start_at = datetime.fromisoformat(start).replace(tzinfo=tokyo)
    end_at = datetime.fromisoformat(end).replace(tzinfo=tokyo)
    assert timedelta(0) <= before - end_at < timedelta(minutes=1)  # to the minute
    assert end_at - start_at == timedelta(hours=24)
    # An explicit start is shown as given, not as the preset.
    body = client.get("/logs/", {"range": "24h", "start": "2026-11-20T10:00"}).content.decode()
    assert 'name="start" value="2026-11-20T10:00" step="1">' in body


# --- Live tail -------------------------------------------------------------------------


def _tail(client, cursor, **params):
    return client.get("/logs/", {"newer_than": cursor, **params})


def test_tail_answers_the_rows_newer_than_the_cursor_in_the_filter(client, alice, acme, globex):
    first = make_log(acme, request_id="shown", timestamp=BASE, model="gpt-4o")
    # A row at the same instant but created later (higher id) is newer too; one at the
    # same instant created before is not.
    make_log(acme, request_id="tie-newer", timestamp=BASE, model="gpt-4o", latency_ms=77)
    make_log(acme, request_id="later", timestamp=BASE + timedelta(minutes=1), model="gpt-4o")
    make_log(acme, request_id="other-model", timestamp=BASE + timedelta(minutes=2), model="o3-mini")
    make_log(acme, request_id="older", timestamp=BASE - timedelta(minutes=1), model="gpt-4o")
    make_log(globex, request_id="globex-new", timestamp=BASE + timedelta(minutes=3), model="gpt-4o")
    client.force_login(alice)
    response = _tail(client, encode_cursor(first.timestamp, first.pk), model="gpt-4o")
    assert response.status_code == 200
    data = response.json()
    assert (data["count"], data["more"]) == (2, False)
    # Newest first, as the table is; each row links to its detail with the list's filters.
    assert re.findall(r'href="/logs/([^/"]+)/\?model=gpt-4o"', data["html"]) == ["later", "tie-newer"]
    assert "77 ms" in data["html"] and "globex" not in data["html"]
    later = RequestLog.objects.get(account=acme, request_id="later")
    assert data["newest"] == encode_cursor(later.timestamp, later.pk)
    # Asking again from the newest answer gives nothing new.
    again = _tail(client, data["newest"], model="gpt-4o").json()
    assert (again["count"], again["html"], again["newest"]) == (0, "", None)


def test_tail_pages_a_burst_oldest_first(client, alice, acme, monkeypatch):
    from logs import views

    monkeypatch.setattr(views, "TAIL_LIMIT", 3)
    first = make_log(acme, request_id="first", timestamp=BASE)
    for i in range(5):
        make_log(acme, request_id=f"burst-{i}", timestamp=BASE + timedelta(seconds=i + 1))
    client.force_login(alice)
    data = _tail(client, encode_cursor(first.timestamp, first.pk)).json()
    assert (data["count"], data["more"]) == (3, True)
    assert re.findall(r'href="/logs/([^/"]+)/"', data["html"]) == ["burst-2", "burst-1", "burst-0"]
    data = _tail(client, data["newest"]).json()
    assert (data["count"], data["more"]) == (2, False)
    assert re.findall(r'href="/logs/([^/"]+)/"', data["html"]) == ["burst-4", "burst-3"]


def test_tail_refuses_a_bad_cursor_or_filter_with_400(client, alice, acme):
    client.force_login(alice)
    response = _tail(client, "garbage!")
    assert response.status_code == 400 and "cursor is malformed" in response.json()["errors"]["newer_than"][0]
    response = _tail(client, encode_cursor(BASE, 1), status="weird")
    assert response.status_code == 400 and "Unknown status" in response.json()["errors"]["status"][0]


def test_tail_uses_the_row_cookies_and_a_fixed_number_of_queries(client, alice, acme):
    first = make_log(acme, request_id="first", timestamp=BASE)
    ApiKey.objects.create(
        account=acme, identifier="team-a", fingerprint="fp", display_name="Search team", first_seen=BASE, last_seen=BASE
    )
    AccountModel.objects.create(account=acme, model="gpt-4o-mini", first_seen=BASE, last_seen=BASE)
    client.force_login(alice)
    client.cookies[list_prefs.COLUMNS_COOKIE] = "api_key"
    cursor = encode_cursor(first.timestamp, first.pk)
    _tail(client, cursor)  # the first view stores the current account in the session
    counts = []
    for n in (1, 30):
        for i in range(n):
            make_log(acme, timestamp=BASE + timedelta(minutes=1 + len(counts) * 100 + i), cost=Decimal("0.1"))
        with CaptureQueriesContext(connection) as queries:
            data = _tail(client, cursor).json()
        counts.append(len(queries))
    assert data["count"] == 31
    assert counts[0] == counts[1]
    assert ">Search team</a>" in data["html"]
    assert 'data-col="model" hidden' in data["html"]
