"""No console view or API endpoint deletes or edits a stored log: every route of the
project (the Django admin and the auth views aside, tested in test_admin*.py) answers DELETE,
PUT and PATCH with 405, for a signed-in owner and for API tokens of both scopes, and the
log is unchanged afterwards, also after a POST to every route."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from console.models import ApiToken
from logs.models import RequestLog
from tests.factories import make_log

METHODS = ("delete", "put", "patch")
# Routes not under test here: the admin (RequestLogAdmin is read-only, test_admin.py) and
# django.contrib.auth's login / logout / password views.
SKIPPED_PREFIXES = ("admin/", "accounts/")


def _routes(patterns=None, prefix=""):
    """Every route as (pattern text, name), flattened through includes."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name


def _concrete(pattern: str, *, request_id: str, pk: int) -> str:
    """A URL for the pattern: converters filled with a stored log's id or a real object's pk."""
    url = pattern.lstrip("^").rstrip("$")
    url = re.sub(r"<(?:path|anytext|str|slug):request_id>", request_id, url)
    url = re.sub(r"<int:\w+>", str(pk), url)
    url = re.sub(r"<(?:\w+:)?\w+>", "x", url)
    # Regex routes (the schema views) have none of the above; drop any regex syntax left.
    url = re.sub(r"[\^$?()\\]", "", url)
    return "/" + url


def _snapshot():
    return sorted(RequestLog.objects.values_list("id", "request_id", "model", "total_tokens", "cost", "latency_ms"))


@pytest.mark.django_db
def test_no_route_deletes_or_edits_a_log(acme, alice):
    base = datetime.now(UTC) - timedelta(hours=1)
    rows = [make_log(acme, request_id=f"keep-{i}", timestamp=base + timedelta(minutes=i)) for i in range(3)]
    before = _snapshot()
    routes = [(p, n) for p, n in _routes() if not p.startswith(SKIPPED_PREFIXES)]
    # The walk covers the log routes it is about (a rename must not silently drop one).
    names = {n for _, n in routes}
    assert {"list", "detail", "export", "log-list", "log-detail", "ingest", "ingest-litellm"} <= names

    console = Client()
    console.force_login(alice)
    clients = {"owner session": (console, {})}
    for scope in ("read", "ingest"):
        clients[f"{scope} token"] = (
            Client(),
            {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.generate(account=acme, scope=scope)[1]}"},
        )

    answers = {}
    for pattern, _name in routes:
        url = _concrete(pattern, request_id=rows[0].request_id, pk=1)
        for who, (client, headers) in clients.items():
            for method in METHODS:
                response = getattr(client, method)(url, data='{"model": "tampered"}', content_type="application/json",
                                                   **headers)  # fmt: skip
                answers[(url, who, method)] = response.status_code
    wrong = {key: status for key, status in answers.items() if status != 405}
    assert wrong == {}
    assert len(answers) >= 3 * 3 * 7
    assert _snapshot() == before
    # POST is how the console and ingest write: posted to every route, with a form and
    # with JSON, by each client, it changes no stored log (ingest's POST adds rows; none
    # here, the body is no valid record).
    for pattern, _name in routes:
        url = _concrete(pattern, request_id=rows[0].request_id, pk=1)
        for client, headers in clients.values():
            client.post(url, {"model": "tampered", "action": "delete"}, **headers)
            client.post(url, '{"model": "tampered"}', content_type="application/json", **headers)
    assert _snapshot() == before


@pytest.mark.django_db
def test_the_refusal_says_why_and_what_is_allowed(acme):
    make_log(acme, request_id="r-1")
    api = Client().delete("/api/v1/logs/r-1")
    assert api.status_code == 405 and api["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert api.json() == {"detail": 'Method "DELETE" not allowed: nothing in Meterlog is deleted or edited over HTTP.'}
    page = Client().patch("/logs/r-1/")
    assert page.status_code == 405 and b"nothing in Meterlog is deleted or edited" in page.content
    assert RequestLog.objects.filter(request_id="r-1").count() == 1
