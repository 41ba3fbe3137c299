"""`end` at or before `start` answers 400 on every endpoint (the log list and the export used
to answer an empty 200, which looks like "no traffic"), and an unknown `range` lists the
valid values."""

import pytest

from tests.api.conftest import GET_ENDPOINTS

END_BEFORE_START = {"end": ["Must be after start."]}


@pytest.mark.django_db
@pytest.mark.parametrize("path", GET_ENDPOINTS)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-21T00:00:00Z", "2026-11-20T00:00:00Z"),  # before
        ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z"),  # equal: an empty window
        ("2026-11-20T10:00:00+05:30", "2026-11-20T04:29:59Z"),  # before, once both are UTC
    ],
)
def test_end_not_after_start_answers_400(get, rows, path, start, end):
    response = get(path, {"start": start, "end": end})
    assert response.status_code == 400, response.content
    assert response.json() == {"errors": END_BEFORE_START}


@pytest.mark.django_db
@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_end_just_after_start_is_answered(get, rows, path):
    response = get(path, {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T10:00:00.000001Z"})
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_the_one_row_at_start_is_in_a_one_microsecond_window(get, rows):
    body = get("/api/v1/logs", {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T10:00:00.000001Z"}).json()
    assert [r["request_id"] for r in body["results"]] == ["r0"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/logs", "/api/v1/export", "/api/v1/usage"])
def test_an_end_before_the_range_presets_start_answers_400(get, rows, path):
    # range=1h starts an hour ago; an end in 2026-11 is before it.
    response = get(path, {"range": "1h", "end": "2026-11-20T00:00:00Z"})
    assert response.status_code == 400, response.content
    assert response.json() == {"errors": END_BEFORE_START}


@pytest.mark.django_db
def test_the_order_is_reported_with_the_other_bad_parameters(get, rows):
    response = get("/api/v1/logs", {"start": "2026-11-21", "end": "2026-11-20", "status": "weird"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"end", "status"}
    response = get("/api/v1/export", {"start": "2026-11-21", "end": "2026-11-20", "format": "xml"})
    assert set(response.json()["errors"]) == {"end", "format"}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/logs", "/api/v1/export", "/api/v1/usage"])
def test_an_unknown_range_lists_the_valid_values(get, rows, path):
    response = get(path, {"range": "2w"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"range": ["Unknown range '2w'; use one of: 1h, 24h, 7d, 30d."]}}
