"""Partition upkeep tasks: what they create in PostgreSQL's catalog, the default-partition
alarm, and one round trip through a real Celery worker with Redis as broker and backend."""

import logging
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from logs.partitions import ensure_partitions, forget_known_partitions
from logs.tasks import check_default_partitions, create_upcoming_partitions, retention_classes_in_use
from tests.factories import make_account, make_log, subprocess_database_url

TEST_REDIS_URL = os.environ.get("METERLOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _tables(prefix: str) -> set[str]:
    with connection.cursor() as cursor:
        # relkind r/p: tables and partitioned tables, not the partitions' indexes.
        cursor.execute("SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relname LIKE %s", [prefix + "%"])
        return {name for (name,) in cursor.fetchall()}


def _day_starts(today, n):
    return [today + timedelta(days=i) for i in range(n)]


def _month_starts(today, n):
    year, month, out = today.year, today.month, []
    for _ in range(n):
        out.append(today.replace(year=year, month=month, day=1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    # ensure_partitions caches names it has seen; tests here roll back or drop partitions.
    forget_known_partitions()
    yield
    forget_known_partitions()


@pytest.mark.django_db
def test_retention_classes_are_tier_defaults_plus_overrides():
    make_account("short", retention_days_override=7)
    make_account("long", tier="enterprise", retention_days_override=730)
    make_account("plain", tier="professional")
    assert retention_classes_in_use() == [7, 30, 90, 365, 730]


@pytest.mark.django_db
def test_tasks_are_no_ops_on_sqlite():
    if connection.vendor == "postgresql":
        pytest.skip("SQLite behaviour")
    assert create_upcoming_partitions() == []
    assert check_default_partitions() == {}


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_create_upcoming_partitions_creates_the_tables():
    make_account("daily", retention_days_override=14)
    make_account("monthly", retention_days_override=47)
    today = datetime.now(UTC).date()

    created = create_upcoming_partitions()

    daily = {f"logs_requestlog_r14_p{d:%Y%m%d}" for d in _day_starts(today, 3)}
    monthly = {f"logs_requestlog_r47_p{d:%Y%m%d}" for d in _month_starts(today, 3)}
    assert _tables("logs_requestlog_r14") == {"logs_requestlog_r14", "logs_requestlog_r14_default"} | daily
    assert _tables("logs_requestlog_r47") == {"logs_requestlog_r47", "logs_requestlog_r47_default"} | monthly
    # The tier classes are ready for accounts that do not exist yet.
    for days, starts in ((30, _day_starts(today, 3)), (90, _month_starts(today, 3)), (365, _month_starts(today, 3))):
        assert {f"logs_requestlog_r{days}_p{d:%Y%m%d}" for d in starts} <= _tables(f"logs_requestlog_r{days}_p")
    assert daily | monthly <= set(created)
    # The leaves are partitions of the right parent, not free-standing tables.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = 'logs_requestlog_r47'"
        )
        assert cursor.fetchone()[0] == 4  # three months and the class's default

    # Safe to run twice: nothing new the second time.
    forget_known_partitions()
    assert create_upcoming_partitions() == []


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_check_default_partitions_reports_stray_rows(caplog):
    acme = make_account("acme", retention_days_override=47)
    assert check_default_partitions() == {}
    # A class whose current month exists, then rows for a month nobody created: they land
    # in the class's default partition.
    now = datetime.now(UTC)
    ensure_partitions(47, [now])
    forget_known_partitions()
    stray_ts = now + timedelta(days=200)
    expired_ts = now - timedelta(days=400)
    from logs.models import RequestLog

    for n in range(3):
        # Straight into the parent, bypassing ensure_partitions as a buggy writer would.
        RequestLog.objects.create(
            account=acme, retention_days=47, request_id=f"stray-{n}", timestamp=stray_ts, model="m", status="success"
        )
    # Rows past retention belong in the default (the purge empties it): no alarm for them.
    RequestLog.objects.create(
        account=acme, retention_days=47, request_id="expired", timestamp=expired_ts, model="m", status="success"
    )
    # And one row of a retention class with no partitions at all: the top-level default,
    # old or not.
    RequestLog.objects.create(
        account=acme, retention_days=12, request_id="orphan", timestamp=expired_ts, model="m", status="success"
    )

    with caplog.at_level(logging.ERROR, logger="logs.tasks"):
        result = check_default_partitions()

    assert result == {"logs_requestlog_r47_default": 3, "logs_requestlog_default": 1}
    alarms = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("3 rows" in m and "logs_requestlog_r47_default" in m for m in alarms)
    assert any("1 rows" in m and "logs_requestlog_default" in m for m in alarms)


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_ensure_partitions_command_reports_and_can_fail(capsys):
    acme = make_account("acme", retention_days_override=47)
    call_command("ensure_partitions")
    out = capsys.readouterr().out
    assert "Retention classes: 30, 47, 90, 365 days" in out
    assert "logs_requestlog_r47_p" in out
    # Past retention: waits in the class's default for the purge, no alarm.
    make_log(acme, timestamp=datetime(2020, 1, 15, tzinfo=UTC), retention_days=47)
    from django.core.management.base import CommandError

    from logs.models import RequestLog

    RequestLog.objects.create(
        account=acme, retention_days=12, request_id="orphan", timestamp=datetime.now(UTC), model="m", status="error"
    )
    with pytest.raises(CommandError, match="default partitions"):
        call_command("ensure_partitions", "--fail-on-default-rows")
    assert "ALARM: 1 rows in default partition logs_requestlog_default" in capsys.readouterr().err


@contextmanager
def celery_worker(tmp_path, redis_url: str = TEST_REDIS_URL):
    """A real `celery -A console worker` on its own queue, using Redis (`redis_url`) and the
    test database; yields (queue, log path)."""
    queue = f"meterlog-test-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "METERLOG_VAR_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool=solo", "--loglevel=INFO"]
    argv += ["--without-mingle", "--without-gossip", "--without-heartbeat", f"--queues={queue}"]
    argv += [f"--hostname={queue}@%h"]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield queue, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def celery_worker_process(tmp_path):
    with celery_worker(tmp_path) as worker:
        yield worker


@pytest.mark.postgres_only
@pytest.mark.redis
def test_task_runs_in_a_real_worker_through_redis(transactional_db, celery_worker_process):
    """transactional_db: the worker is another process and sees only committed rows."""
    from celery import Celery

    queue, log_path = celery_worker_process
    make_account("odd", retention_days_override=53)
    client = Celery("meterlog-test-client", broker=TEST_REDIS_URL, backend=TEST_REDIS_URL)
    try:
        result = client.send_task("logs.tasks.create_upcoming_partitions", queue=queue)
        deadline = time.monotonic() + 90
        while not result.ready():
            if time.monotonic() > deadline:
                pytest.fail("no result from the worker in 90 s; its log:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        created = result.get(timeout=5)
        today = datetime.now(UTC).date()
        expected = {f"logs_requestlog_r53_p{d:%Y%m%d}" for d in _month_starts(today, 3)}
        assert expected <= set(created)
        assert {"logs_requestlog_r53", "logs_requestlog_r53_default"} | expected == _tables("logs_requestlog_r53")
    finally:
        client.close()
        # Committed DDL outlives the test's flush: drop the class so other tests start clean.
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS logs_requestlog_r53 CASCADE")


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_every_insert_path_records_its_retention_class(acme, globex):
    """The trigger behind request_logs()'s partition pruning sees every insert, raw SQL too."""
    from logs.gate import retention_classes
    from logs.models import AccountRetentionClass

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL behaviour")
    ts = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    ensure_partitions(45, [ts])
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO logs_requestlog (account_id, retention_days, request_id, "timestamp", model, status,
                 prompt_tokens, completion_tokens, total_tokens, api_key, user_agent, request_params, tags,
                 error_code, error_message, ingested_at)
               VALUES (%s, 45, 'raw-1', %s, 'm', 'success', 1, 1, 2, '', '', '{}', '{}', '', '', now()),
                      (%s, 45, 'raw-2', %s, 'm', 'success', 1, 1, 2, '', '', '{}', '{}', '', '', now())""",
            [acme.pk, ts, acme.pk, ts],
        )
    assert retention_classes(account=acme) == [45]
    assert retention_classes(account=globex) == []
    assert AccountRetentionClass.objects.count() == 1
