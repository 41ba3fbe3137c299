"""The log detail page: previous / next within the list it was opened from (by keyset),
the way back to that list, the raw JSON and both zones."""

import html
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.api.serializers import log_record
from tests.factories import make_log

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def _steps(response) -> tuple[str | None, str | None]:
    """(newer, older) hrefs of the step links."""
    body = html.unescape(response.content.decode())
    newer = re.search(r'id="newer-link" rel="prev" href="([^"]+)"', body)
    older = re.search(r'id="older-link" rel="next" href="([^"]+)"', body)
    return (newer.group(1) if newer else None), (older.group(1) if older else None)


@pytest.fixture
def mixed_rows(acme, globex):
    """gpt-4o rows g0..g5 (newest last) with ties on the timestamp, other models between."""
    for i in range(6):
        ts = BASE + timedelta(seconds=i // 2)  # pairs share a timestamp: ties go by id
        make_log(acme, request_id=f"g{i}", model="gpt-4o", timestamp=ts)
        make_log(acme, request_id=f"x{i}", model="o3-mini", timestamp=ts)
    make_log(globex, request_id="globex-between", model="gpt-4o", timestamp=BASE + timedelta(seconds=1))


def test_steps_walk_the_filtered_list_in_its_order(client, alice, mixed_rows):
    client.force_login(alice)
    # Older from the newest: every gpt-4o row once, newest first, the query string kept.
    url, walked = "/logs/g5/?model=gpt-4o", []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        walked.append(response.context["row"].request_id)
        newer, url = _steps(response)
        if url:
            assert url.endswith("/?model=gpt-4o")
    assert walked == ["g5", "g4", "g3", "g2", "g1", "g0"]
    assert newer == "/logs/g1/?model=gpt-4o"
    # And back up with Newer.
    url, walked = "/logs/g0/?model=gpt-4o", []
    while url:
        response = client.get(url)
        walked.append(response.context["row"].request_id)
        url, _ = _steps(response)
    assert walked == ["g0", "g1", "g2", "g3", "g4", "g5"]


def test_without_filters_the_steps_cover_every_row_of_the_account(client, alice, mixed_rows):
    client.force_login(alice)
    response = client.get("/logs/g2/")
    # Creation order g0 x0 g1 x1 g2 x2 ...: x1 is just older, x2 (same second, later id) newer.
    assert _steps(response) == ("/logs/x2/", "/logs/x1/")
    body = response.content.decode()
    assert 'id="back-to-list" href="/logs/"' in body


def test_multiple_values_and_the_page_travel_with_the_row(client, alice, mixed_rows):
    client.force_login(alice)
    query = "model=gpt-4o&model=o3-mini&cursor=abc"
    response = client.get(f"/logs/x1/?{query}")
    newer, older = _steps(response)
    assert (newer, older) == (f"/logs/g2/?{query}", f"/logs/g1/?{query}")
    body = html.unescape(response.content.decode())
    assert f'id="back-to-list" href="/logs/?{query}"' in body


def test_ends_of_the_list_and_bad_filters_show_the_row_without_links(client, alice, mixed_rows):
    client.force_login(alice)
    response = client.get("/logs/g0/?model=gpt-4o")
    assert _steps(response) == ("/logs/g1/?model=gpt-4o", None)
    assert "This is the oldest request in this list" in response.content.decode()
    response = client.get("/logs/g3/?status=weird")
    assert response.status_code == 200 and _steps(response) == (None, None)


def test_raw_json_is_the_api_record_and_both_zones_show(client, alice, acme):
    row = make_log(
        acme,
        request_id="full",
        timestamp=datetime(2026, 11, 20, 23, 30, 5, tzinfo=UTC),
        latency_ms=845,
        cost=Decimal("0.001234000000"),
        tags={"team": "search"},
        error_code="",
        ingested_at=datetime(2026, 11, 20, 23, 31, 7, tzinfo=UTC),
    )
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Asia/Tokyo"
    body = html.unescape(client.get("/logs/full/").content.decode())
    raw = re.search(r'<pre class="code" id="raw-json">(.*?)</pre>', body, re.S).group(1)
    assert json.loads(raw) == log_record(row)
    assert json.loads(raw)["cost"] == "0.001234" and json.loads(raw)["latency_ms"] == 845
    assert "<dt>Ingested (Asia/Tokyo)</dt>" in body and "2026-11-21 08:31:07" in body
    assert "<dt>Ingested (UTC)</dt>" in body and "2026-11-20 23:31:07" in body
    assert '<dd class="num-left" id="latency">845 ms</dd>' in body
    assert 'data-copy-target="#request-id"' in body and 'data-copy-target="#raw-json"' in body


def test_detail_query_count_is_fixed(client, alice, mixed_rows):
    client.force_login(alice)
    client.get("/logs/g3/")
    with CaptureQueriesContext(connection) as plain:
        client.get("/logs/g3/")
    with CaptureQueriesContext(connection) as filtered:
        client.get("/logs/g3/?model=gpt-4o&model=o3-mini")
    # Two keyset reads (the newer and the older neighbour) whatever the filters.
    assert len(plain) == len(filtered)
    neighbour_reads = [q["sql"] for q in filtered.captured_queries if "ORDER BY" in q["sql"] and "LIMIT 2" in q["sql"]]
    assert len(neighbour_reads) == 2
