"""Privacy mode at ingest (issue 15): from the switch on, request_params, user_agent and
error_details are not stored and the IP keeps only its /24 or /48, through POST
/api/v1/ingest, /api/v1/ingest/litellm and imports; rows stored before stay as they were."""

import json
from pathlib import Path

import pytest

from console.models import ApiToken
from logs.imports.services import import_file
from logs.models import RequestLog
from logs.partitions import forget_known_partitions
from tests.factories import ingest_record, make_user

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FULL = {
    "ip_address": "203.0.113.77",
    "user_agent": "OpenAI/Python 1.54.0",
    "request_params": {"temperature": 0.2, "max_tokens": 64},
    "status": "error",
    "error_code": "429",
    "error_message": "rate limited",
    "error_details": {"provider": "openai", "retries": 2},
    "tags": {"env": "prod"},
}
DETAIL = ("ip_address", "user_agent", "request_params", "error_code", "error_message", "error_details", "tags")


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    forget_known_partitions()


def _post(client, token, records, url="/api/v1/ingest"):
    response = client.post(
        url, data=json.dumps(records), content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 201, 202), response.content
    return response.json()


def _stored(request_id):
    row = RequestLog.objects.get(request_id=request_id)
    return {field: getattr(row, field) for field in DETAIL}


def _switch(client, owner, value):
    client.force_login(owner)
    assert client.post("/settings/privacy/", {"privacy_mode": value}).status_code == 302
    client.logout()


def test_switch_on_reduces_new_rows_keeps_old_ones_and_off_restores_full_detail(client, acme):
    alice = make_user("alice@acme.test", account=acme, role="owner")
    token = ApiToken.generate(account=acme, scope="ingest")[1]
    _post(client, token, [ingest_record(1, **FULL)])

    _switch(client, alice, "on")
    v6 = {**FULL, "ip_address": "2001:db8:abcd:12:1:2:3:4"}
    assert _post(client, token, [ingest_record(2, **FULL), ingest_record(3, **v6)])["accepted"] == 2

    _switch(client, alice, "off")
    _post(client, token, [ingest_record(4, **FULL)])

    full = {**FULL}
    del full["status"]
    reduced = {**full, "ip_address": "203.0.113.0", "user_agent": "", "request_params": {}, "error_details": None}
    assert _stored("req-1") == full  # stored before the switch: not rewritten
    assert _stored("req-2") == reduced
    assert _stored("req-3") == {**reduced, "ip_address": "2001:db8:abcd::"}
    assert _stored("req-4") == full  # off again: full detail again
    # Nothing of the dropped values is anywhere in the reduced rows (the database never got them).
    reduced_rows = RequestLog.objects.filter(request_id__in=["req-2", "req-3"])
    assert [r.request_params for r in reduced_rows] == [{}, {}]
    assert set(reduced_rows.values_list("error_details", flat=True)) == {None}


def test_litellm_endpoint_applies_privacy_mode(client, acme):
    acme.privacy_mode = True
    acme.save()
    token = ApiToken.generate(account=acme, scope="ingest")[1]
    batch = json.loads((FIXTURES / "litellm_generic_api_batch.json").read_text())
    result = _post(client, token, batch, url="/api/v1/ingest/litellm")
    assert result["accepted"] == len(batch) >= 2
    rows = list(RequestLog.objects.filter(account=acme))
    assert {(r.user_agent, json.dumps(r.request_params), r.error_details) for r in rows} == {("", "{}", None)}
    # The fixture's clients are all 127.0.0.1; what is kept is the /24.
    assert {r.ip_address for r in rows if r.ip_address} == {"127.0.0.0"}
    assert any(r.status == "error" for r in rows)  # an error row lost its error_details, kept the error


def test_import_applies_privacy_mode_switched_on_after_the_account_was_loaded(acme):
    stale = type(acme).objects.get(pk=acme.pk)  # what a long import job holds
    type(acme).objects.filter(pk=acme.pk).update(privacy_mode=True)
    report = import_file(account=stale, path=FIXTURES / "imports" / "meterlog_export.ndjson", fmt="meterlog-ndjson")
    assert report.accepted >= 2
    rows = list(RequestLog.objects.filter(account=acme))
    assert {(r.user_agent, json.dumps(r.request_params), r.error_details) for r in rows} == {("", "{}", None)}
    assert {r.ip_address for r in rows if r.ip_address} == {"192.0.2.0"}  # 192.0.2.10 in the file
