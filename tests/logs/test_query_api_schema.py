"""The OpenAPI schema (/api/v1/schema/) and the Swagger UI docs (/api/v1/docs/)."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

from logs.filters import RequestLogFilterSet

REPEATABLE = {"model", "status", "api_key", "ip", "error_code"}


@pytest.fixture
def schema(client):
    response = client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200  # public: no token
    return response.json()


def test_generated_schema_is_valid_openapi(tmp_path):
    GENERATOR_STATS.reset()
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/logs:" in text
    assert "/api/v1/logs/{request_id}:" in text
    # Problems in other apps' views are test_whole_api_schema_has_no_warnings' business.
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert [p for p in problems if "query_views" in p] == []


def test_whole_api_schema_has_no_warnings(tmp_path):
    # `manage.py spectacular --validate --fail-on-warn`: a warning anywhere in the API
    # (an unannotated view of any app) fails it.
    GENERATOR_STATS.reset()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))


@pytest.mark.django_db
def test_log_list_documents_every_filter_parameter(schema):
    operation = schema["paths"]["/api/v1/logs"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == set(RequestLogFilterSet.base_filters) | {"limit", "cursor"}
    assert all(p["in"] == "query" and p.get("description") for p in params.values())
    for name in REPEATABLE:
        assert params[name]["schema"]["type"] == "array", name
        assert params[name]["explode"] is True, name
    assert set(params["status"]["schema"]["items"]["enum"]) == {"success", "error"}
    assert set(params["range"]["schema"]["enum"]) == {"1h", "24h", "7d", "30d"}
    assert params["limit"]["schema"]["type"] == "integer"
    assert set(operation["responses"]) == {"200", "400", "401", "403", "422", "503"}
    assert operation["security"] == [{"bearerAuth": []}]


@pytest.mark.django_db
def test_record_schema_matches_the_representation(schema):
    from logs.api.serializers import LogRecordSerializer

    components = schema["components"]["schemas"]
    page = components["LogPage"]["properties"]
    assert set(page) == {"results", "next_cursor"}
    record = components["LogRecord"]["properties"]
    assert list(record) == list(LogRecordSerializer().fields)
    assert record["cost"]["type"] == "string"
    assert record["cost"]["nullable"] is True
    assert record["timestamp"]["format"] == "date-time"
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Meterlog API token: scope `read` for the query API, `ingest` for ingest.",
    }
    detail = schema["paths"]["/api/v1/logs/{request_id}"]["get"]
    assert detail["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LogRecord"
    }
    # 400: the detail takes no query parameters, and refuses any (as every GET endpoint an unknown one).
    assert set(detail["responses"]) == {"200", "400", "401", "403", "404", "503"}


@pytest.mark.django_db
def test_docs_page_loads_its_assets_from_static_not_a_cdn(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in urls
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css" in urls
    # Its start-up script is a file of its own (no inline script under the CSP), served by
    # the same view.
    assert "/api/v1/docs/?script=" in urls
    assets = [url for url in urls if url != "/api/v1/docs/?script="]
    assert all(url.startswith("/static/") for url in assets), urls
    assert "//" not in "".join(urls)
    assert "<script>" not in html
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    code = script.content.decode()
    assert "/api/v1/schema/" in code and "SwaggerUIBundle" in code
    assert '"validatorUrl": null' in code  # no badge fetched from validator.swagger.io
    # The files exist where collectstatic / whitenoise will look for them.
    for url in assets:
        assert finders.find(url.removeprefix("/static/")), url


def test_export_documents_csv_safe(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/export"]["get"]["parameters"]}
    csv_safe = parameters["csv_safe"]
    assert csv_safe["in"] == "query" and sorted(csv_safe["schema"]["enum"]) == ["0", "1", "false", "true"]
    assert "CSV only" in csv_safe["description"] and "refused with 400" in csv_safe["description"]
    assert "= + - @" in csv_safe["description"]


@pytest.mark.django_db
def test_export_documents_every_content_type_it_answers(schema):
    # tests/test_api_fuzz.py holds the answers to this list; these are the types it may send.
    content = schema["paths"]["/api/v1/export"]["get"]["responses"]["200"]["content"]
    types = {"text/csv", "application/json", "application/x-ndjson", "application/gzip", "application/zip"}
    assert set(content) == types
    assert content["application/json"]["schema"]["type"] == "array"
    assert content["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/LogRecord"}


@pytest.mark.django_db
def test_numeric_parameters_document_their_bounds(schema):
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/logs"]["get"]["parameters"]}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert params["min_tokens"]["minimum"] == 0 and params["max_tokens"]["minimum"] == 0
    assert params["min_cost"]["minimum"] == 0 and params["max_cost"]["minimum"] == 0
