"""A deletion batch never waits long for a lock (PostgreSQL): with a matching row locked by
another session, each batch gives up after METERLOG_PURGE_LOCK_TIMEOUT_MS, is tried a few
times, then the request is recorded as failed with nothing half-deleted."""

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from logs.deletions import deletes, services
from logs.deletions.models import DeletionEvent, DeletionStatus
from logs.gate import request_logs
from tests.factories import make_log

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def _other_session():
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s["USER"], host=s["HOST"] or None, port=s["PORT"] or None, password=s["PASSWORD"] or None
    )


def test_a_locked_row_fails_the_request_quickly(acme, alice, olivia, settings):
    settings.METERLOG_PURGE_LOCK_TIMEOUT_MS = 100
    for i in range(3):
        make_log(acme, request_id=f"r{i}", timestamp=NOW - timedelta(days=3, minutes=i))
    req = services.deletion_file(
        account=acme, user=alice, reason="r", start=NOW - timedelta(days=4), end=NOW - timedelta(days=2)
    )
    services.deletion_approve(request=req, user=olivia)
    with _other_session() as other:
        other.execute("SELECT 1 FROM logs_requestlog WHERE request_id = 'r1' FOR UPDATE")
        began = time.monotonic()
        with pytest.raises(Exception, match="lock"):
            services.deletion_run(req.pk)
        elapsed = time.monotonic() - began
        other.rollback()
    # 5 attempts of 100 ms plus the back-off between them (0.2 + 0.4 + 0.6 + 0.8 s).
    assert elapsed < 2.0 + deletes.LOCK_ATTEMPTS * 0.1 + 1.0
    req.refresh_from_db()
    assert (req.status, req.rows_deleted) == (DeletionStatus.FAILED, 0)
    assert "lock timeout" in DeletionEvent.objects.get(request=req, action="failed").details["error"]
    assert request_logs(account=acme).count() == 3
