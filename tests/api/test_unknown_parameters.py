"""An unknown query parameter answers 400 naming it, on every GET endpoint: a typo such as
`modle=` used to be ignored and answer every row (console.api_errors.KnownParametersMixin)."""

import pytest
from django.urls import resolve

from analytics.api_serializers import LOG_ONLY_FILTERS
from console.api_errors import KnownParametersMixin
from console.models import ApiToken
from logs.filters import RequestLogFilterSet
from tests.api.conftest import BASE, GET_ENDPOINTS

WINDOW = {"start": "2026-11-20", "end": "2026-11-21"}


@pytest.mark.django_db
def test_the_typo_that_returned_unfiltered_rows(get, rows):
    # What the typo meant: the three gpt-4o rows, not all six.
    assert len(get("/api/v1/logs", {"model": "gpt-4o"}).json()["results"]) == 3
    response = get("/api/v1/logs", {"modle": "gpt-4o"})
    assert response.status_code == 400
    names = ", ".join(sorted([*RequestLogFilterSet.base_filters, "limit", "cursor"]))
    assert response.json() == {
        "errors": {"modle": [f"Unknown parameter 'modle'; did you mean 'model'? this endpoint takes: {names}."]}
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_every_get_endpoint_names_each_unknown_parameter(get, rows, path):
    params = {**WINDOW, "modle": "gpt-4o", "colour": "red"}
    response = get(path, params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    errors = response.json()["errors"]
    assert set(errors) == set(params) - set(WINDOW)
    assert errors["colour"][0].startswith("Unknown parameter 'colour'; this endpoint takes: ")
    # The same request without the unknown names is answered.
    known = {name: value for name, value in params.items() if name in WINDOW}
    assert get(path, known).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "typo", "meant"),
    [
        ("/api/v1/export", "formt", "format"),
        ("/api/v1/usage", "group", "group_by"),
        ("/api/v1/usage", "timezon", "timezone"),
        ("/api/v1/alerts/events", "stat", "state"),
        ("/api/v1/logs", "limt", "limit"),
    ],
)
def test_the_message_suggests_the_close_name(get, rows, path, typo, meant):
    message = get(path, {typo: "x"}).json()["errors"][typo][0]
    assert f"did you mean {meant!r}?" in message


@pytest.mark.django_db
def test_the_detail_takes_no_parameters(get, rows):
    assert get("/api/v1/logs/r1").json()["request_id"] == "r1"
    response = get("/api/v1/logs/r1", {"fields": "model"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": {"fields": ["Unknown parameter 'fields'; this endpoint takes no query parameters."]}
    }


@pytest.mark.django_db
def test_the_usage_apis_log_only_filters_keep_their_own_message(get, rows):
    # Known names (the log list's), so the answer says why they do not apply here.
    response = get("/api/v1/usage", {**WINDOW, "q": "timeout"})
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "q": ["The usage API reads aggregates and cannot filter by this; use /api/v1/logs."]
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_a_token_is_checked_before_the_parameters(get, rows, path):
    # 401 first: a client without a token learns nothing of the parameters.
    response = get(path, {"modle": "x"}, token=None)
    assert response.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["a\x00b", "mod el", "model[]", "é"])
def test_odd_names_answer_400_not_500(get, rows, name):
    response = get("/api/v1/logs", {name: "1"})
    assert response.status_code == 400
    ((key, messages),) = response.json()["errors"].items()
    assert key == name and messages[0].startswith(f"Unknown parameter {name!r};")


@pytest.mark.django_db
def test_invalid_utf8_in_a_name_is_no_500(client, read_token, rows):
    response = client.get("/api/v1/logs?%ED%A0%80=1", HTTP_AUTHORIZATION=f"Bearer {read_token}")
    assert response.status_code == 400
    # Django decodes the bytes with replacement characters; the name is reported as it read it.
    assert list(response.json()["errors"]) == ["\ufffd" * 3]


@pytest.mark.django_db
def test_ingest_ignores_the_query_string(client, acme):
    # Decided: ingest reads its body only. A stray parameter in a gateway's callback URL must not
    # lose a batch of usage records (a 400 there drops them); it cannot change what is stored.
    token = ApiToken.generate(account=acme, scope="ingest")[1]
    record = {"request_id": "i1", "timestamp": BASE.isoformat(), "model": "m", "status": "success"}
    response = client.post(
        "/api/v1/ingest?source=litellm", [record], content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1


@pytest.mark.django_db
def test_every_get_endpoint_checks_names_and_takes_what_its_schema_documents(client):
    # The one check is the mixin's; a new GET endpoint without it, or a parameter documented but
    # refused (or taken but undocumented), fails here.
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    checked = set()
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        view = resolve(path.replace("{request_id}", "r1")).func.view_class
        assert issubclass(view, KnownParametersMixin), path
        documented = {p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"}
        # The usage API also knows the log list's other filters, to answer why they do not apply.
        known_but_refused = set(LOG_ONLY_FILTERS) if path == "/api/v1/usage" else set()
        assert documented == set(view.query_parameters) - known_but_refused, path
        checked.add(path)
    assert checked == {*GET_ENDPOINTS, "/api/v1/logs/{request_id}"}
