"""Fuzzing the API against its own OpenAPI schema (schemathesis, on hypothesis).

Every read and ingest operation of /api/v1/schema/ gets generated requests (valid and
invalid parameters, bodies and paths) through the whole Django stack, authenticated with a
real token of the right scope for an account holding a few rows. Each answer must not be a
5xx, and its status code, content type and body must be the ones the schema documents: an
undocumented answer is a bug in the schema or in the code.

Bounded: MAX_EXAMPLES per operation and schemathesis' deterministic coverage phase off, so
the file runs in well under a minute; a new seed each run explores a little more.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from console.models import ApiToken
from tests.factories import make_account, make_log

MAX_EXAMPLES = 80
FUZZED = {
    ("GET", "/api/v1/logs"),
    ("GET", "/api/v1/logs/{request_id}"),
    ("GET", "/api/v1/usage"),
    ("GET", "/api/v1/alerts/events"),
    ("GET", "/api/v1/export"),
    ("POST", "/api/v1/ingest"),
    ("POST", "/api/v1/ingest/litellm"),
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The stored rows: a few days back from now, so the default ranges (7 days, 24h) find them.
STORED_IDS = [f"fuzz-{i:02d}/chat:{i % 3}" for i in range(6)]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    # The schema describes one NDJSON line (a record); a list is sent as one line per item.
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def _document() -> dict:
    # What /api/v1/schema/ serves (same generator, same settings; test_fuzzed_schema_is_the_served_one).
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


def _load_schema():
    document = _document()
    config = schemathesis.Config.from_dict(
        {"generation": {"mode": "all"}, "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
    )
    loaded = schemathesis.openapi.from_dict(document, config=config)
    loaded.app = WSGIHandler()
    return loaded


schema = _load_schema()


@pytest.fixture
def wsgi_in_test_transaction():
    """Django's WSGI handler closes the database connection when a request finishes (and
    so the test's transaction); the test client disconnects that handler the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db, wsgi_in_test_transaction):
    account = make_account("fuzz")
    now = datetime.now(UTC).replace(microsecond=0)
    for i, request_id in enumerate(STORED_IDS):
        make_log(
            account,
            request_id=request_id,
            timestamp=now - timedelta(hours=5 * i + 1),
            status="error" if i % 3 == 0 else "success",
            error_code="timeout" if i % 3 == 0 else "",
            error_message="Upstream timeout" if i % 3 == 0 else "",
            ip_address=f"10.0.0.{i}",
            tags={"team": "search"},
            **({"cost": None} if i == 4 else {}),  # one unpriced record
        )
    return {
        "GET": ApiToken.generate(account=account, scope="read")[1],
        "POST": ApiToken.generate(account=account, scope="ingest")[1],
    }


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # a shared CI machine; the bound is the number of examples
    # `tokens` is built once per operation and shared by its examples, in the test's one
    # transaction (rows ingested by one example stay for the next: harmless, and realistic).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,  # no example database: each run starts afresh
)
def test_api_answers_as_documented(case, tokens):
    if (case.method, case.path) not in FUZZED:
        pytest.skip("not fuzzed here")
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens[case.method]}"}, checks=CHECKS)


@pytest.mark.parametrize("request_id", STORED_IDS)
def test_stored_records_answer_as_documented(request_id, tokens):
    # Fuzzed request ids are almost never stored ones: the 200 body is checked here.
    case = schema["/api/v1/logs/{request_id}"]["GET"].Case(path_parameters={"request_id": request_id})
    response = case.call_and_validate(headers={"Authorization": f"Bearer {tokens['GET']}"}, checks=CHECKS)
    assert response.status_code == 200
    assert response.json()["request_id"] == request_id


@pytest.mark.django_db
def test_fuzzed_schema_is_the_served_one(client):
    response = client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response.json() == _document()
    assert {(method.upper(), path) for path, ops in response.json()["paths"].items() for method in ops} >= FUZZED
