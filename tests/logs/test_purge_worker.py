"""The retention purge as beat runs it: the task through a real Celery worker on Redis
(db 5, METERLOG_TEST_PURGE_REDIS_URL), against rows committed in PostgreSQL with the
no-hand-writes trigger in place: a whole expired week dropped, the straddle and the class
DEFAULT partition's expired rows deleted by batches, the kept rows still there."""

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from logs.ingest.services import ingest_records
from logs.partitions import class_table, create_partitions, forget_known_partitions, period_start, period_table
from logs.retention.models import PurgeRun, PurgeStatus
from tests.factories import make_account
from tests.logs.test_purge import rec
from tests.logs.test_tasks import celery_worker

PURGE_REDIS_URL = os.environ.get("METERLOG_TEST_PURGE_REDIS_URL", "redis://127.0.0.1:6379/5")
DAYS = 23  # a class of its own: its committed partitions are dropped after the test


def test_the_beat_schedule_holds_the_daily_purge():
    from celery.schedules import crontab

    from console.celery import app

    entry = app.conf.beat_schedule["purge-expired-logs"]
    assert entry == settings.CELERY_BEAT_SCHEDULE["purge-expired-logs"]
    assert entry["task"] == "logs.tasks.purge_expired_logs"
    assert entry["schedule"] == crontab(hour="2", minute="15")
    assert "logs.tasks.purge_expired_logs" in app.tasks


def _ids(account) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT request_id FROM logs_requestlog WHERE account_id = %s ORDER BY 1", [account.pk])
        return [r for (r,) in cursor.fetchall()]


def _exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


@pytest.mark.postgres_only
@pytest.mark.redis
def test_a_real_worker_purges_the_expired_rows(transactional_db, tmp_path):
    from celery import Celery

    forget_known_partitions()
    now = datetime.now(UTC)
    expired = [period_start(DAYS, now - timedelta(days=d)) for d in (40, 41)]
    # As if no purge had run for a while: the days 40 and 41 days back have their partitions.
    create_partitions(DAYS, expired)
    account = make_account("wk", retention_days_override=DAYS)
    days_back = (1, 20, 22, 25, 40, 41, 60, 90)
    ingest_records(account=account, records=[rec(f"wk-{d}d", now - timedelta(days=d)) for d in days_back])
    # 60 and 90 days back lie past the class's horizon: ingest put them in its DEFAULT.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {class_table(DAYS)}_default")
        assert cursor.fetchone()[0] >= 2
    # The trigger is in place: a hand-written DELETE of the same rows is refused.
    refused = pytest.raises(DatabaseError, match="nobody deletes or edits stored logs by hand")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {class_table(DAYS)}_default")
    assert len(_ids(account)) == 8

    client = Celery("meterlog-test-client", broker=PURGE_REDIS_URL, backend=PURGE_REDIS_URL)
    try:
        with celery_worker(tmp_path, PURGE_REDIS_URL) as (queue, log_path):
            result = client.send_task("logs.tasks.purge_expired_logs", queue=queue)
            deadline = time.monotonic() + 120
            while not result.ready():
                if time.monotonic() > deadline:
                    pytest.fail("no result from the worker in 120 s; its log:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            answer = result.get(timeout=5)
            result.forget()
        assert answer["status"] == PurgeStatus.DONE and answer["partitions"] >= 1
        # What the worker committed, read back here: exactly the rows younger than 23 days.
        assert _ids(account) == ["wk-1d", "wk-20d", "wk-22d"]
        assert not any(_exists(period_table(DAYS, day)) for day in expired)
        run = PurgeRun.objects.get(pk=answer["run"])
        assert run.status == PurgeStatus.DONE and run.finished_at is not None
        assert answer["deleted"] == run.deleted == 5
        # Two rows went with the dropped days (DROP TABLE: no DELETE, no trigger), three by a
        # batched DELETE from the class DEFAULT, inside allow_log_writes.
        assert {(p["name"], p["rows"]) for p in run.partitions} == {(period_table(DAYS, day), 1) for day in expired}
        [entry] = run.accounts
        assert (entry["slug"], entry["deleted"], entry["retention_days"]) == ("wk", 5, DAYS)
    finally:
        client.close()
        # Committed DDL outlives the test's flush: drop the class so other tests start clean.
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {class_table(DAYS)} CASCADE")
        forget_known_partitions()
