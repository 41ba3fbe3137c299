"""Parameters PostgreSQL cannot take (a NUL, an unpaired surrogate, a UTC offset of 16 hours or
more, a year that leaves datetime's range in UTC) answer 400 naming the parameter on every
page and API endpoint (404 for a request id in the path), the same on SQLite and PostgreSQL,
where they used to be a 500 from the database."""

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.http import QueryDict
from django.utils import timezone

from analytics.api_serializers import parse_usage_params
from console.models import Account, ApiToken
from logs.ingest.services import ingest_records
from logs.models import ExportRecord
from logs.selectors import filter_request_logs

NUL = "a\x00b"
# good-1 is at noon UTC two days ago: inside any account's retention.
DAY = (datetime.now(UTC) - timedelta(days=2)).date()
NEXT_DAY = DAY + timedelta(days=1)
TEXT_FILTERS = ("model", "api_key", "error_code", "tag", "q", "ip", "request_id", "status", "range", "unpriced")
USAGE_TEXT = ("model", "api_key", "error_code", "status", "timezone", "bucket", "group_by", "range")
BAD_MOMENTS = {
    "offset +16:00": ("2026-01-01T00:00:00+16:00", "UTC offset must be between -15:59 and +15:59"),
    "offset -16:00": ("2026-01-01T00:00:00-16:00", "UTC offset must be between -15:59 and +15:59"),
    "year 1 east of UTC": ("0001-01-01T00:00:00+05:00", "between the years 0002 and 9998"),
    "year 9999 west of UTC": ("9999-12-31T23:00:00-05:00", "between the years 0002 and 9998"),
    "year 1 in UTC": ("0001-01-01", "between the years 0002 and 9998"),
    "epoch at year 9999": ("253402300799", "between the years 0002 and 9998"),
}


@pytest.fixture
def data(acme):
    # Through ingest, so the rollups the usage API reads have it too.
    record = {
        "request_id": "good-1",
        "timestamp": f"{DAY}T12:00:00Z",
        "model": "gpt-4o",
        "status": "success",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "tags": {"team": "search"},
    }
    assert ingest_records(account=acme, records=[record]).accepted == 1
    return acme


@pytest.fixture
def token(data):
    return ApiToken.generate(account=data, scope="read")[1]


def _url(path: str, name: str, value: str) -> str:
    value = f"team:{value}" if name == "tag" else value
    return f"{path}?{name}={quote(value, safe='')}"


def _api(client, token, url):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


# --- NUL in a text parameter ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/logs", "/api/v1/export"])
@pytest.mark.parametrize("name", TEXT_FILTERS)
def test_api_refuses_a_nul_naming_the_parameter(client, token, path, name):
    response = _api(client, token, _url(path, name, NUL))
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert errors == {name: [f"{name} must not contain a NUL character (\\x00, %00)."]}
    assert ExportRecord.objects.count() == 0


@pytest.mark.parametrize("name", USAGE_TEXT)
def test_usage_api_refuses_a_nul_naming_the_parameter(client, token, name):
    response = _api(client, token, _url("/api/v1/usage", name, NUL))
    assert response.status_code == 400, response.content
    assert response.json() == {"errors": {name: [f"{name} must not contain a NUL character (\\x00, %00)."]}}


def test_usage_api_reports_a_nul_with_the_other_bad_parameters(client, token):
    response = _api(client, token, "/api/v1/usage?model=a%00&bucket=year")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"model", "bucket"}


@pytest.mark.parametrize("name", TEXT_FILTERS)
def test_log_list_page_shows_the_nul_error_at_its_filter(client, alice, data, name):
    client.force_login(alice)
    response = client.get(_url("/logs/", name, NUL))
    assert response.status_code == 400
    assert list(response.context["errors"]) == [name]
    assert response.context["rows"] == []
    assert "has-error" in response.content.decode()


@pytest.mark.parametrize("name", TEXT_FILTERS)
def test_console_export_refuses_a_nul_and_saves_no_record(client, alice, data, name):
    client.force_login(alice)
    response = client.get(_url("/logs/export/", name, NUL) + "&format=csv")
    assert response.status_code == 400
    body = response.content.decode()
    assert body.startswith("Export not started.\n") and f"\n{name}: " in body
    assert ExportRecord.objects.count() == 0


@pytest.mark.parametrize("name", ["model", "api_key"])
def test_analytics_page_refuses_a_nul(client, alice, data, name):
    client.force_login(alice)
    response = client.get(_url("/analytics/", name, NUL))
    assert response.status_code == 400
    assert f"{name} must not contain a NUL character" in response.content.decode()
    csv = client.get(_url("/analytics/", name, NUL) + "&format=csv")
    assert csv.status_code == 400
    assert csv.content.decode().startswith(f"{name}: {name} must not contain a NUL character")


def test_operator_dashboard_refuses_a_nul_range(client, olivia):
    client.force_login(olivia)
    response = client.get("/analytics/operator/?range=7d%00")
    assert response.status_code == 400
    assert "Unknown range" in response.content.decode()
    assert client.get("/analytics/operator/csv/?range=7d%00").status_code == 400


# --- an unpaired surrogate -------------------------------------------------------------------
# Django decodes a query string's invalid UTF-8 (%ED%A0%80) as U+FFFD, so over HTTP such a value
# is an ordinary string that matches nothing; the parsers refuse a real one all the same (a
# filter dict read back from storage goes through them too).


@pytest.mark.parametrize(
    "path", ["/api/v1/logs", "/api/v1/export?format=csv&compress=", "/api/v1/usage", "/logs/", "/analytics/"]
)
def test_invalid_utf8_in_the_query_string_is_no_500(client, alice, token, path):
    client.force_login(alice)
    joiner = "&" if "?" in path else "?"
    response = _api(client, token, f"{path}{joiner}model=%ED%A0%80")
    assert response.status_code == 200, response.content
    if path == "/api/v1/logs":
        assert response.json()["results"] == []


def test_the_filterset_refuses_a_lone_surrogate(data):
    params = QueryDict(mutable=True)
    params.setlist("model", ["gpt-4o", "x\ud800"])
    params["q"] = "\udfff"
    filterset = filter_request_logs(account=data, params=params)
    assert not filterset.is_valid()
    assert set(filterset.form.errors) == {"model", "q"}
    assert filterset.form.errors["model"] == [
        "model must not contain an unpaired surrogate (e.g. \\ud800): it is not valid Unicode text."
    ]


def test_the_usage_parser_refuses_a_lone_surrogate(data):
    params = QueryDict(mutable=True)
    params["api_key"] = "\ud800"
    query, errors = parse_usage_params(params, account=data, now=timezone.now())
    assert query is None
    assert list(errors) == ["api_key"]
    assert "unpaired surrogate" in errors["api_key"][0]


# --- request ids in the path -------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["a%00b", "%00", "%ED%A0%80"])
def test_detail_of_an_impossible_request_id_is_404(client, alice, token, request_id):
    client.force_login(alice)
    page = client.get(f"/logs/{request_id}/")
    assert page.status_code == 404
    api = _api(client, token, f"/api/v1/logs/{request_id}")
    assert api.status_code == 404
    assert api.json() == {"detail": "No such request"}


def test_detail_of_a_good_request_id_is_200(client, alice, token):
    client.force_login(alice)
    assert client.get("/logs/good-1/").status_code == 200
    api = _api(client, token, "/api/v1/logs/good-1")
    assert api.status_code == 200
    assert api.json()["request_id"] == "good-1"


# --- datetimes PostgreSQL (or the zone arithmetic) cannot take --------------------------------


@pytest.mark.parametrize("case", BAD_MOMENTS)
@pytest.mark.parametrize("name", ["start", "end"])
@pytest.mark.parametrize("path", ["/api/v1/logs", "/api/v1/export", "/api/v1/usage"])
def test_api_refuses_an_unrepresentable_moment(client, token, path, name, case):
    raw, message = BAD_MOMENTS[case]
    response = _api(client, token, _url(path, name, raw))
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [name]
    assert message in errors[name][0]


@pytest.mark.parametrize("case", BAD_MOMENTS)
@pytest.mark.parametrize("name", ["start", "end"])
def test_log_list_and_export_pages_refuse_an_unrepresentable_moment(client, alice, data, name, case):
    raw, message = BAD_MOMENTS[case]
    client.force_login(alice)
    page = client.get(_url("/logs/", name, raw))
    assert page.status_code == 400
    assert list(page.context["errors"]) == [name]
    assert message in page.context["errors"][name][0]
    assert message in page.content.decode()
    export = client.get(_url("/logs/export/", name, raw))
    assert export.status_code == 400
    assert f"{name}: " in export.content.decode() and message in export.content.decode()


def test_the_offset_limit_is_postgresqls(client, token):
    # 15:59 east and west is the widest offset PostgreSQL reads; it must answer 200.
    # good-1 is at 12:00 UTC: +15:59 puts this start at 04:01 UTC, -15:59 at 15:59 UTC.
    for raw, expected in ((f"{DAY}T20:00:00+15:59", ["good-1"]), (f"{DAY}T00:00:00-15:59", [])):
        response = _api(client, token, _url("/api/v1/logs", "start", raw))
        assert response.status_code == 200, response.content
        assert [r["request_id"] for r in response.json()["results"]] == expected


def test_the_year_bounds_still_answer(client, alice, token):
    # The edges inside the bounds run the query on both databases.
    client.force_login(alice)
    for query in ("start=0002-01-01T00:00:00Z", "end=9998-12-31T23:59:59Z"):
        assert _api(client, token, f"/api/v1/logs?{query}").status_code == 200
        assert client.get(f"/logs/?{query}").status_code == 200
        assert _api(client, token, f"/api/v1/export?{query}").status_code == 200


# --- good requests still answer ------------------------------------------------------------------


def test_good_requests_answer_200(client, alice, token):
    client.force_login(alice)
    good = f"model=gpt-4o&tag=team%3Asearch&start={DAY}T00:00:00%2B05:30&end={NEXT_DAY}T00:00:00Z"
    api = _api(client, token, f"/api/v1/logs?{good}")
    assert api.status_code == 200
    assert [r["request_id"] for r in api.json()["results"]] == ["good-1"]
    page = client.get(f"/logs/?{good}")
    assert page.status_code == 200
    assert [row.request_id for row in page.context["rows"]] == ["good-1"]
    export = _api(client, token, f"/api/v1/export?format=ndjson&{good}")
    assert export.status_code == 200
    assert b"good-1" in b"".join(export.streaming_content)
    usage = _api(client, token, f"/api/v1/usage?model=gpt-4o&start={DAY}&end={NEXT_DAY}&timezone=UTC")
    assert usage.status_code == 200
    assert usage.json()["buckets"][0]["results"][0]["requests"] == 1
    assert client.get("/analytics/?model=gpt-4o").status_code == 200


# --- POST forms that take text -------------------------------------------------------------------


def test_account_name_with_a_nul_is_a_form_error(client, alice, data):
    client.force_login(alice)
    response = client.post("/settings/", {"name": "Acme\x00", "timezone": "UTC"})
    assert response.status_code in (200, 400)
    assert response.context["form"].errors["name"] == ["Null characters are not allowed."]
    assert Account.objects.get(pk=data.pk).name == "Acme Corp"


def test_token_name_with_a_nul_is_a_form_error(client, alice, data):
    client.force_login(alice)
    before = ApiToken.objects.count()
    response = client.post("/settings/tokens/new/", {"name": "prod\x00", "scope": "read"})
    assert response.status_code == 400
    assert response.context["form"].errors["name"] == ["Null characters are not allowed."]
    assert ApiToken.objects.count() == before


def test_member_email_with_a_nul_is_a_form_error(client, alice, data):
    client.force_login(alice)
    response = client.post("/settings/members/add/", {"email": "x\x00@acme.test", "role": "viewer", "password": ""})
    assert response.status_code == 400
    assert "Null characters are not allowed." in response.context["form"].errors["email"]


def test_price_search_with_a_nul_is_refused_at_the_search_box(client, alice, data):
    client.force_login(alice)
    response = client.get("/pricing/?q=gpt%00")
    assert response.status_code == 400
    assert response.context["q_errors"] == ["q must not contain a NUL character (\\x00, %00)."]
    assert '<small class="error">q must not contain a NUL character' in response.content.decode()
    assert client.get("/pricing/?q=gpt").status_code == 200
