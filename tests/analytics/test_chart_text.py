"""The gateway's strings go into plotly figures as plain text: plotly reads a subset of HTML
in labels and hover text, so &, < and > reach it as entities (it decodes them when drawing;
tests/browser/test_security_policy.py checks what the browser shows). Through the test
client, reading the figure out of the page's json_script block."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.plotting import plain
from logs.ingest.services import ingest_records

EVIL_MODEL = '<a href="https://evil.example">x</a>'
EVIL_KEY = "<b>key</b>"
EVIL_CODE = "a&lt;b"  # already an entity: must show as these five characters, not "a<b"


def _figure(body: str, figure_id: str) -> dict:
    match = re.search(rf'<script id="{figure_id}" type="application/json">(.*?)</script>', body, re.S)
    assert match, figure_id
    return json.loads(match.group(1))


def test_plain_escapes_what_plotly_reads_as_markup():
    assert plain(EVIL_MODEL) == '&lt;a href="https://evil.example"&gt;x&lt;/a&gt;'
    assert plain("a&lt;b") == "a&amp;lt;b"
    assert plain("gpt-4o-mini") == "gpt-4o-mini"
    assert plain(None) == "None"


@pytest.mark.django_db
def test_analytics_charts_get_model_key_and_error_code_as_text(client, alice, acme):
    now = timezone.now()
    records = [
        {
            "request_id": f"r-{i}", "timestamp": (now - timedelta(hours=1 + i)).isoformat(),
            "model": EVIL_MODEL, "status": "error", "error_code": EVIL_CODE, "api_key": EVIL_KEY,
            "prompt_tokens": 10, "completion_tokens": 5, "cost": "0.01",
        }
        for i in range(3)
    ]  # fmt: skip
    assert ingest_records(account=acme, records=records).accepted == 3
    client.force_login(alice)

    cost = client.get("/analytics/", {"tab": "cost", "range": "7d"})
    assert cost.status_code == 200
    body = cost.content.decode()
    by_model = _figure(body, "figure-cost_by_model")["data"][0]
    assert by_model["y"] == ['&lt;a href="https://evil.example"&gt;x&lt;/a&gt;']
    assert by_model["hovertemplate"].startswith("%{y}: ")
    assert _figure(body, "figure-cost_by_key")["data"][0]["y"] == ["&lt;b&gt;key&lt;/b&gt;"]
    # The table beside the chart is escaped by the template as usual.
    assert "&lt;a href=&quot;https://evil.example&quot;&gt;x&lt;/a&gt;" in body
    assert '<a href="https://evil.example">' not in body

    errors = client.get("/analytics/", {"tab": "errors", "range": "7d"})
    body = errors.content.decode()
    assert _figure(body, "figure-errors_by_code")["data"][0]["y"] == ["a&amp;lt;b"]
    assert _figure(body, "figure-errors_by_model")["data"][0]["y"] == [
        '&lt;a href="https://evil.example"&gt;x&lt;/a&gt;'
    ]


@pytest.mark.django_db
def test_operator_chart_gets_account_names_as_text(client, olivia, acme):
    acme.name = "<i>Acme</i> & Co"
    acme.save(update_fields=["name"])
    now = timezone.now()
    record = {
        "request_id": "r-1",
        "timestamp": (now - timedelta(hours=1)).isoformat(),
        "model": "m",
        "status": "success",
        "cost": "1",
    }
    assert ingest_records(account=acme, records=[record]).accepted == 1
    client.force_login(olivia)
    response = client.get("/analytics/operator/", {"range": "30d"})
    assert response.status_code == 200
    chart = _figure(response.content.decode(), "fig-top-accounts")["data"][0]
    assert chart["y"] == ["&lt;i&gt;Acme&lt;/i&gt; &amp; Co"]
