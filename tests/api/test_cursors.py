"""Cursors are signed per endpoint (logs.api.params): a made-up, edited or borrowed cursor
answers 400 instead of paging from wherever it points."""

import base64
import json

import pytest

from console.models import ApiToken
from logs.pagination import decode_cursor, encode_cursor
from tests.api.conftest import BASE

PAGED = ["/api/v1/logs", "/api/v1/alerts/events"]


def _pages(get, path):
    seen, cursor = [], None
    while True:
        body = get(path, {"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen.append([r.get("request_id", r.get("id")) for r in body["results"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


@pytest.mark.django_db
def test_signed_cursors_page_through_everything(get, rows):
    assert _pages(get, "/api/v1/logs") == [["r5", "r4"], ["r3", "r2"], ["r1", "r0"]]
    assert [len(page) for page in _pages(get, "/api/v1/alerts/events")] == [2, 2, 1]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGED)
def test_a_forged_cursor_answers_400(get, rows, path):
    cursor = get(path, {"limit": 2}).json()["next_cursor"]
    raw, signature = cursor.rsplit(":", 1)
    timestamp, pk = decode_cursor(raw)
    forged = [
        raw,  # the position without its signature: well formed, as cursors used to be
        encode_cursor(BASE, 10**9),  # made up
        f"{encode_cursor(timestamp, pk + 1)}:{signature}",  # edited, old signature kept
        f"{raw}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # signature edited
        f"{raw}:",
        "garbage",
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
    ]
    for cursor in forged:
        response = get(path, {"cursor": cursor})
        assert response.status_code == 400, cursor
        assert list(response.json()["errors"]) == ["cursor"]
        assert "next_cursor" in response.json()["errors"]["cursor"][0]


@pytest.mark.django_db
def test_a_cursor_of_one_endpoint_is_refused_by_the_other(get, rows):
    logs_cursor = get("/api/v1/logs", {"limit": 2}).json()["next_cursor"]
    events_cursor = get("/api/v1/alerts/events", {"limit": 2}).json()["next_cursor"]
    assert get("/api/v1/alerts/events", {"cursor": logs_cursor}).status_code == 400
    assert get("/api/v1/logs", {"cursor": events_cursor}).status_code == 400


@pytest.mark.django_db
def test_another_accounts_cursor_shows_only_ones_own_rows(get, rows, globex):
    # A signed cursor is only a position; the tenant gate still decides the rows.
    cursor = get("/api/v1/logs", {"limit": 1}).json()["next_cursor"]
    globex_token = ApiToken.generate(account=globex, scope="read")[1]
    body = get("/api/v1/logs", {"cursor": cursor}, token=globex_token).json()
    assert [r["request_id"] for r in body["results"]] == ["g0"]
