"""Every export goes into the account's access log once, with who and which filters: the
page's download (/logs/export/), an export job, and GET /api/v1/export."""

from datetime import UTC, datetime

import pytest

from console.models import ApiToken, AuditEvent
from logs.models import ExportRecord
from tests.factories import make_log

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _seed(acme, globex, n=3):
    for i in range(n):
        make_log(acme, request_id=f"acme-{i}", timestamp=T0, model="gpt-4o")
    make_log(globex, request_id="globex-0", timestamp=T0, model="gpt-4o")


def _events(account):
    return list(AuditEvent.objects.filter(account=account).values_list("username", "action", "details", "ip_address"))


def test_page_download_by_a_viewer_is_logged_for_the_owner(client, acme, globex, alice, charlie):
    _seed(acme, globex)
    client.force_login(charlie)
    response = client.get("/logs/export/?model=gpt-4o&format=csv", REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 200 and b"acme-0" in b"".join(response.streaming_content)
    record = ExportRecord.objects.get()
    details = {
        "export_id": record.pk,
        "via": "download",
        "format": "csv",
        "compress": False,
        "split": "",
        "csv_safe": False,
        "filters": {"model": "gpt-4o"},
    }
    assert _events(acme) == [("charlie@acme.test", "export_created", details, "198.51.100.9")]
    assert _events(globex) == []
    client.force_login(alice)
    html = client.get("/settings/access-log/").content.decode()
    assert f"csv via download (export #{record.pk})" in html and "filters: model=gpt-4o" in html


def test_export_job_is_logged_when_queued(client, acme, globex, alice, settings, tmp_path):
    settings.METERLOG_EXPORT_ASYNC_ROWS = 2
    settings.METERLOG_EXPORT_DIR = tmp_path
    _seed(acme, globex)
    client.force_login(alice)
    assert client.get("/logs/export/?model=gpt-4o&format=ndjson").status_code == 302
    record = ExportRecord.objects.get()
    [(username, action, details, _ip)] = _events(acme)
    assert (username, action, details["via"], details["export_id"]) == (
        "alice@acme.test",
        "export_created",
        "job",
        record.pk,
    )
    assert details["filters"]["model"] == "gpt-4o" and details["format"] == "ndjson"


def test_api_export_is_logged_with_the_token(client, acme, globex):
    _seed(acme, globex)
    token, raw = ApiToken.generate(account=acme, scope="read", name="script")
    response = client.get("/api/v1/export?format=csv&model=gpt-4o", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    b"".join(response.streaming_content)
    [(username, action, details, ip)] = _events(acme)
    assert (username, action, details["via"], details["token"]) == ("", "export_created", "api", token.hint)
    assert details["filters"] == {"model": "gpt-4o"} and ip == "127.0.0.1"
    assert _events(globex) == []
