"""Log encryption (issue 15): with an account's encryption on, request_params, user_agent and
error_details are unreadable in the database and readable in the console, the API and every
export; rows stored before stay plain; the fields survive a key rotation; a missing or wrong
key answers a clear 503, never a 500. Runs on SQLite and PostgreSQL (the CSV export takes
the COPY path there for accounts that never had encryption)."""

import csv
import gzip
import io
import json
import zipfile

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from console.models import ApiToken, AuditAction, AuditEvent
from logs import encryption
from logs.api.serializers import log_record
from logs.archive import encode_row
from logs.encryption_settings import may_have_encrypted_rows
from logs.exports import chunks
from logs.models import RequestLog
from tests.factories import ingest_record, make_user

pytestmark = pytest.mark.django_db
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
AGENT = "NeedleAgent/9.9 (secret-ua)"
PARAMS = {"temperature": 0.25, "marker": "needle-params-42", "nested": {"k": ["v", 1]}}
DETAILS = {"provider": "openai", "hint": "needle-details-77"}
DETAIL_RECORD = {
    "user_agent": AGENT,
    "request_params": PARAMS,
    "status": "error",
    "error_code": "429",
    "error_message": "rate limited",
    "error_details": DETAILS,
    "ip_address": "203.0.113.77",
    "tags": {"env": "prod"},
}
NEEDLES = ("NeedleAgent", "needle-params-42", "needle-details-77")


@pytest.fixture
def key(settings):
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    return settings


def _post(client, account, records):
    token = ApiToken.generate(account=account, scope="ingest")[1]
    return client.post(
        "/api/v1/ingest", data=json.dumps(records), content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


def _read_token(account):
    return ApiToken.generate(account=account, scope="read")[1]


def _stored(request_id) -> tuple:
    """What the database holds, read with raw SQL (no Django field conversion)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_agent, CAST(request_params AS TEXT), CAST(error_details AS TEXT), encrypted "
            "FROM logs_requestlog WHERE request_id = %s",
            [request_id],
        )
        return cursor.fetchone()


def _encrypt_on(account):
    account.encryption_enabled = True
    account.save(update_fields=["encryption_enabled"])


def _ingest_both(client, acme):
    """req-1 stored plain (before encryption), req-2 stored encrypted."""
    assert _post(client, acme, [ingest_record(1, **DETAIL_RECORD)]).status_code in (200, 201, 202)
    _encrypt_on(acme)
    response = _post(client, acme, [ingest_record(2, **DETAIL_RECORD)])
    assert response.status_code in (200, 201, 202), response.content
    assert response.json()["accepted"] == 1


def _api(client, acme, url):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {_read_token(acme)}")


def _export(client, acme, query) -> bytes:
    response = _api(client, acme, f"/api/v1/export?{query}")
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def _expected(record) -> None:
    assert record["user_agent"] == AGENT
    assert record["request_params"] == PARAMS
    assert record["error_details"] == DETAILS


def test_encrypted_fields_are_unreadable_in_the_database_and_the_tokens_decrypt(client, acme, key):
    _ingest_both(client, acme)
    user_agent, params, details, flag = _stored("req-2")
    stored = f"{user_agent} {params} {details}"
    for needle in NEEDLES:
        assert needle not in stored
    assert flag in (True, 1)
    fernet = Fernet(OLD_KEY)
    assert fernet.decrypt(user_agent.encode()).decode() == AGENT
    assert json.loads(fernet.decrypt(json.loads(params).encode())) == PARAMS
    assert json.loads(fernet.decrypt(json.loads(details).encode())) == DETAILS
    # Stored before the switch: plain, flag NULL.
    user_agent, params, details, flag = _stored("req-1")
    assert (user_agent, json.loads(params), json.loads(details), flag) == (AGENT, PARAMS, DETAILS, None)


def test_console_api_and_archive_show_the_plaintext(client, acme, key):
    _ingest_both(client, acme)
    for request_id in ("req-1", "req-2"):
        _expected(_api(client, acme, f"/api/v1/logs/{request_id}").json())
    listed = _api(client, acme, "/api/v1/logs").json()["results"]
    assert [r["request_id"] for r in listed] == ["req-2", "req-1"]
    for record in listed:
        _expected(record)
    row = RequestLog.objects.get(request_id="req-2")
    _expected(log_record(row))
    _expected(json.loads(encode_row(row)))

    client.force_login(make_user("alice@acme.test", account=acme, role="owner"))
    page = client.get("/logs/req-2/").content.decode()
    assert AGENT in page and "needle-params-42" in page and "needle-details-77" in page
    assert 'id="stored-encrypted"' in page
    assert 'id="stored-encrypted"' not in client.get("/logs/req-1/").content.decode()


@pytest.mark.parametrize("query", ["format=csv", "format=csv&csv_safe=1", "format=csv&compress=gzip"])
def test_csv_exports_show_the_plaintext(client, acme, key, query):
    _ingest_both(client, acme)
    body = _export(client, acme, query)
    if "gzip" in query:
        body = gzip.decompress(body)
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    assert [r["request_id"] for r in rows] == ["req-2", "req-1"]
    for row in rows:
        assert row["user_agent"] == AGENT
        assert json.loads(row["request_params"]) == PARAMS
        assert json.loads(row["error_details"]) == DETAILS


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_json_exports_show_the_plaintext(client, acme, key, fmt):
    _ingest_both(client, acme)
    body = _export(client, acme, f"format={fmt}").decode()
    records = json.loads(body) if fmt == "json" else [json.loads(line) for line in body.splitlines()]
    assert [r["request_id"] for r in records] == ["req-2", "req-1"]
    for record in records:
        _expected(record)


def test_encrypted_export_matches_the_plain_export_byte_for_byte(client, acme, globex, key):
    """The same records, one account plain and one encrypted: the same files (the encrypted
    one through the values path, the plain one through COPY on PostgreSQL). Compared as
    values: jsonb orders object keys its own way, the decrypted text keeps the sent order."""
    records = [ingest_record(n, **DETAIL_RECORD) for n in range(1, 6)]
    _post(client, acme, records)
    _encrypt_on(globex)
    _post(client, globex, records)
    assert not may_have_encrypted_rows(acme) and may_have_encrypted_rows(globex)
    plain, encrypted = (_export(client, a, "format=ndjson").decode().splitlines() for a in (acme, globex))
    assert len(plain) == 5 and list(map(json.loads, plain)) == list(map(json.loads, encrypted))
    plain, encrypted = (_csv_values(_export(client, a, "format=csv")) for a in (acme, globex))
    assert len(plain) == 5 and plain == encrypted


def _csv_values(body: bytes) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    for row in rows:
        for name in ("request_params", "error_details", "tags"):
            row[name] = json.loads(row[name])
    return rows


def test_zip_and_page_export_and_export_job_show_the_plaintext(client, acme, key, settings, tmp_path):
    from logs.exports.jobs import export_file_path, run_export_job
    from logs.models import ExportRecord

    _ingest_both(client, acme)
    client.force_login(make_user("alice@acme.test", account=acme, role="owner"))
    response = client.get("/logs/export/?format=ndjson&split=month&start=2026-10-15T00:00:00Z&end=2026-12-20T00:00:00Z")
    assert response.status_code == 200, response.content
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    lines = b"".join(gzip.decompress(archive.read(name)) for name in archive.namelist()).decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        _expected(json.loads(line))
    page = client.get("/logs/export/?format=csv")
    assert page.status_code == 200
    assert b"".join(page.streaming_content).decode().count(AGENT) == 2

    settings.METERLOG_EXPORT_ASYNC_ROWS = 1  # two rows: a job
    settings.METERLOG_EXPORT_DIR = tmp_path / "exports"
    assert client.get("/logs/export/?format=csv").status_code == 302
    record = ExportRecord.objects.filter(account=acme, state="queued").latest("pk")
    run_export_job(record.pk)
    done = ExportRecord.objects.get(pk=record.pk)
    assert done.state == "done", done.error
    content = export_file_path(done).read_text()
    assert content.count(AGENT) == 2 and content.count("needle-details-77") == 2


def test_admin_export_and_change_page_show_the_plaintext(client, acme, key, olivia):
    from logs.admin_resources import RequestLogResource

    _ingest_both(client, acme)
    dataset = RequestLogResource().export(queryset=RequestLog.objects.order_by("request_id"))
    rows = list(csv.DictReader(io.StringIO(dataset.csv)))
    assert [row["user_agent"] for row in rows] == [AGENT, AGENT]
    assert [json.loads(row["error_details"]) for row in rows] == [DETAILS, DETAILS]
    olivia.is_superuser = True
    olivia.save()
    client.force_login(olivia)
    row = RequestLog.objects.get(request_id="req-2")
    page = client.get(f"/admin/logs/requestlog/{row.pk}/change/")
    assert page.status_code == 200
    assert "NeedleAgent" in page.content.decode() and "needle-params-42" in page.content.decode()


def test_missing_or_wrong_key_answers_503_with_what_to_set(client, acme, key, settings):
    _ingest_both(client, acme)
    client.force_login(make_user("alice@acme.test", account=acme, role="owner"))
    for value, words in (("", "missing"), (NEW_KEY, "not in FIELD_ENCRYPTION_KEY"), ("not-a-key", "invalid")):
        settings.FIELD_ENCRYPTION_KEY = value
        page = client.get("/logs/req-2/")
        assert page.status_code == 503
        assert words in page.content.decode() and "FIELD_ENCRYPTION_KEY" in page.content.decode()
        for needle in NEEDLES:
            assert needle not in page.content.decode()
        api = _api(client, acme, "/api/v1/logs/req-2")
        assert api.status_code == 503 and api.json()["code"] == "encryption_key" and words in api.json()["detail"]
        assert _api(client, acme, "/api/v1/logs").status_code == 503
        # The plain row needs no key.
        assert _api(client, acme, "/api/v1/logs/req-1").status_code == 200
    settings.FIELD_ENCRYPTION_KEY = ""
    assert _api(client, acme, "/api/v1/export?format=csv").status_code == 503
    assert client.get("/logs/export/?format=ndjson").status_code == 503
    zipped = "/api/v1/export?format=csv&split=month&start=2026-10-15T00:00:00Z&end=2026-12-20T00:00:00Z"
    assert _api(client, acme, zipped).status_code == 503
    # Ingest into an account with encryption on: refused, nothing stored in the clear.
    response = _post(client, acme, [ingest_record(3, **DETAIL_RECORD)])
    assert response.status_code == 503 and "missing" in response.json()["detail"]
    assert not RequestLog.objects.filter(request_id="req-3").exists()


def test_the_switch_is_for_owners_audited_and_refused_without_a_usable_key(client, acme, settings):
    alice = make_user("alice@acme.test", account=acme, role="owner")
    for role in ("viewer", "admin"):
        client.force_login(make_user(f"{role}@acme.test", account=acme, role=role))
        assert client.get("/settings/encryption/").status_code == 403
        assert client.post("/settings/encryption/", {"encryption": "on"}).status_code == 403
    client.force_login(alice)
    for value in ("", "not-a-key"):
        settings.FIELD_ENCRYPTION_KEY = value
        page = client.get("/settings/encryption/")
        assert page.status_code == 200 and "no usable key" in page.content.decode()
        refused = client.post("/settings/encryption/", {"encryption": "on"})
        assert refused.status_code == 400
        text = refused.content.decode()
        assert "cannot be switched on" in text and "FIELD_ENCRYPTION_KEY" in text
    assert client.post("/settings/encryption/", {"encryption": "maybe"}).status_code == 400
    acme.refresh_from_db()
    assert not acme.encryption_enabled
    assert not AuditEvent.objects.filter(account=acme, action__startswith="encryption").exists()

    settings.FIELD_ENCRYPTION_KEY = f"{NEW_KEY},{OLD_KEY}"
    page = client.get("/settings/encryption/").content.decode()
    assert "2 keys" in page and 'id="encryption-fields"' in page and "error_message" in page
    assert client.post("/settings/encryption/", {"encryption": "on"}, REMOTE_ADDR="198.51.100.9").status_code == 302
    assert client.post("/settings/encryption/", {"encryption": "on"}).status_code == 302  # no change, no event
    settings.FIELD_ENCRYPTION_KEY = ""
    assert client.post("/settings/encryption/", {"encryption": "off"}).status_code == 302  # off needs no key
    acme.refresh_from_db()
    assert not acme.encryption_enabled
    events = list(AuditEvent.objects.filter(account=acme).order_by("id"))
    assert [(e.action, e.username) for e in events] == [
        (AuditAction.ENCRYPTION_ON, "alice@acme.test"),
        (AuditAction.ENCRYPTION_OFF, "alice@acme.test"),
    ]
    assert events[0].ip_address == "198.51.100.9" and events[0].created_at is not None
    assert "request_params, user_agent, error_details" in events[0].details["fields"]
    log_page = client.get("/settings/access-log/").content.decode()
    assert "Log encryption on" in log_page and "Log encryption off" in log_page
    # Switched off again, the account's old rows may still be encrypted: exports keep decrypting.
    assert may_have_encrypted_rows(acme)


def test_privacy_mode_and_encryption_together(client, acme, key):
    acme.privacy_mode = True
    acme.save(update_fields=["privacy_mode"])
    _encrypt_on(acme)
    assert _post(client, acme, [ingest_record(1, **DETAIL_RECORD)]).status_code in (200, 201, 202)
    user_agent, params, details, flag = _stored("req-1")
    assert (user_agent, json.loads(params), details, flag in (True, 1)) == ("", {}, None, True)
    record = _api(client, acme, "/api/v1/logs/req-1").json()
    assert (record["user_agent"], record["request_params"], record["error_details"]) == (None, {}, None)
    assert record["ip_address"] == "203.0.113.0" and record["tags"] == {"env": "prod"}
    rows = list(csv.DictReader(io.StringIO(_export(client, acme, "format=csv").decode(), newline="")))
    assert (rows[0]["user_agent"], rows[0]["request_params"], rows[0]["error_details"]) == ("", "{}", "")


def test_filters_and_search_work_on_encrypted_rows(client, acme, key):
    _ingest_both(client, acme)
    found = _api(client, acme, "/api/v1/logs?q=rate+limited&error_code=429&tag=env:prod&ip=203.0.113.77").json()
    assert [r["request_id"] for r in found["results"]] == ["req-2", "req-1"]
    assert _api(client, acme, "/api/v1/logs?q=NeedleAgent").json()["results"] == []


def test_scrub_rescrubs_the_plaintext_of_encrypted_rows(acme, key):
    from logs.scrub import scrub_log_rows
    from tests.factories import make_log

    secret = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2
    stored = encryption.encrypted_values({"user_agent": f"agent {secret}", "request_params": {"api_key": secret}})
    make_log(acme, request_id="old", encrypted=True, **stored)
    assert scrub_log_rows(acme).changed == 1
    row = RequestLog.objects.get(request_id="old")
    assert row.encrypted and secret not in row.user_agent
    user_agent, params, _ = encryption.plain_fields(row)
    assert secret not in user_agent and user_agent.startswith("agent sk-")
    assert params["api_key"] != secret
    assert scrub_log_rows(acme).changed == 0


def test_exports_of_accounts_that_never_had_encryption_keep_the_fast_path(client, acme, key, monkeypatch):
    _post(client, acme, [ingest_record(1, **DETAIL_RECORD)])
    assert not may_have_encrypted_rows(acme)
    seen = []
    real = chunks.chunks_of
    monkeypatch.setattr(chunks, "chunks_of", lambda fs, **kw: seen.append(kw) or real(fs, **kw))
    assert AGENT in _export(client, acme, "format=ndjson").decode()
    assert seen == [{"decrypt": False}]


def test_archive_and_import_commands_answer_a_missing_key_with_a_message(client, acme, key, settings, tmp_path):
    from django.core.management import CommandError, call_command

    _ingest_both(client, acme)
    settings.FIELD_ENCRYPTION_KEY = ""
    with pytest.raises(CommandError, match="key missing"):
        call_command("archive_logs", "--account", "acme", "--month", "2026-11", "--to", str(tmp_path),
                     stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps(ingest_record(9, **DETAIL_RECORD)) + "\n")
    with pytest.raises(CommandError, match="key missing"):
        call_command("import_logs", "acme", str(source), "--format", "meterlog-ndjson",
                     stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    assert not RequestLog.objects.filter(request_id="req-9").exists()


def test_import_and_litellm_endpoint_encrypt_and_an_import_picks_up_the_switch(client, acme, key):
    from pathlib import Path

    from logs.imports.services import import_file

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    stale = type(acme).objects.get(pk=acme.pk)  # what a long import job holds
    _encrypt_on(acme)
    report = import_file(account=stale, path=fixtures / "imports" / "meterlog_export.ndjson", fmt="meterlog-ndjson")
    assert report.accepted >= 2
    token = ApiToken.generate(account=acme, scope="ingest")[1]
    batch = json.loads((fixtures / "litellm_generic_api_batch.json").read_text())
    response = client.post("/api/v1/ingest/litellm", data=json.dumps(batch), content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.json()["accepted"] == len(batch) >= 2
    rows = list(RequestLog.objects.filter(account=acme))
    assert len(rows) == report.accepted + len(batch)
    assert all(row.encrypted for row in rows)
    with_agent = [row for row in rows if row.user_agent]
    assert with_agent and all(row.user_agent.startswith("gAAAA") for row in with_agent)
    assert all(encryption.plain_fields(row)[0] and not encryption.plain_fields(row)[0].startswith("gAAAA")
               for row in with_agent)  # fmt: skip
