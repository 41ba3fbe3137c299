"""Key rotation of encrypted log rows (`manage.py rotate_encryption_key`): with keys "new,old"
after rows were encrypted with "old", rows end up readable with "new" alone, a second run
re-encrypts 0, rows no key reads are reported; the no-hand-writes trigger still refuses a
raw UPDATE outside the guard."""

import csv
import io

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from tests.factories import ingest_record
from tests.logs.test_encryption import (
    AGENT,
    DETAIL_RECORD,
    NEW_KEY,
    OLD_KEY,
    _api,
    _encrypt_on,
    _expected,
    _export,
    _ingest_both,
    _post,
    _stored,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(settings):
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    return settings


def test_rotation_reencrypts_with_the_newest_key_and_a_second_run_does_nothing(client, acme, globex, key, settings):
    from django.core.management import call_command

    _ingest_both(client, acme)
    _encrypt_on(globex)
    _post(client, globex, [ingest_record(n, **DETAIL_RECORD) for n in range(1, 4)])
    settings.FIELD_ENCRYPTION_KEY = f"{NEW_KEY},{OLD_KEY}"
    out = io.StringIO()
    call_command("rotate_encryption_key", "--dry-run", stdout=out, stderr=io.StringIO())
    assert "acme: 1 encrypted rows, would re-encrypt 1" in out.getvalue()
    assert Fernet(OLD_KEY).decrypt(_stored("req-2")[0].encode()).decode() == AGENT  # dry run wrote nothing
    out = io.StringIO()
    call_command("rotate_encryption_key", "--batch-rows", "2", stdout=out, stderr=io.StringIO())
    assert "acme: 1 encrypted rows, re-encrypted 1" in out.getvalue()
    assert "globex: 3 encrypted rows, re-encrypted 3" in out.getvalue()
    assert "re-encrypted 4 rows in all" in out.getvalue()
    assert Fernet(NEW_KEY).decrypt(_stored("req-2")[0].encode()).decode() == AGENT

    settings.FIELD_ENCRYPTION_KEY = NEW_KEY  # the old key removed
    _expected(_api(client, acme, "/api/v1/logs/req-2").json())
    rows = list(csv.DictReader(io.StringIO(_export(client, globex, "format=csv").decode(), newline="")))
    assert [row["user_agent"] for row in rows] == [AGENT] * 3
    out = io.StringIO()
    call_command("rotate_encryption_key", "--account", "globex", stdout=out, stderr=io.StringIO())
    assert "globex: 3 encrypted rows, re-encrypted 0" in out.getvalue() and "acme" not in out.getvalue()


def test_rotation_reports_rows_no_key_reads(client, acme, key, settings):
    from django.core.management import CommandError, call_command

    _ingest_both(client, acme)
    settings.FIELD_ENCRYPTION_KEY = NEW_KEY
    with pytest.raises(CommandError, match="not in FIELD_ENCRYPTION_KEY"):
        call_command("rotate_encryption_key", stdout=io.StringIO(), stderr=io.StringIO())
    settings.FIELD_ENCRYPTION_KEY = ""
    with pytest.raises(CommandError, match="missing"):
        call_command("rotate_encryption_key", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.postgres_only
def test_the_trigger_still_refuses_a_raw_update_outside_the_guard(client, acme, key):
    from django.db import DatabaseError, transaction

    _ingest_both(client, acme)
    with pytest.raises(DatabaseError, match="refused"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE logs_requestlog SET user_agent = 'x' WHERE request_id = 'req-2'")
    with connection.cursor() as cursor:
        cursor.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'logs_requestlog' "
                       "AND column_name IN ('user_agent', 'encrypted') ORDER BY column_name")  # fmt: skip
        assert [row[0] for row in cursor.fetchall()] == ["boolean", "text"]
