"""Nobody deletes or edits a stored log by hand: the trigger of migration 0010 refuses DELETE
and UPDATE on every table of the log's partition tree (the parent, the class tables, their
period and DEFAULT partitions, partitions created later) unless the transaction names an
allowed writer through logs.guard.allow_log_writes; inserts are not affected."""

import importlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from logs.guard import ALLOWED_WRITERS, allow_log_writes
from logs.models import RequestLog
from logs.partitions import class_table, create_partitions, period_start, period_table
from tests.factories import make_log

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]

RULE = "nobody deletes or edits stored logs by hand"
TRIGGER = "logs_requestlog_no_hand_writes"
NOW = datetime.now(UTC)


def _sql(statement: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _refused(statement: str, params=()) -> str:
    """Run a statement that must fail; the error text. In a savepoint, so the test goes on."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        _sql(statement, params)
    return str(caught.value)


def _unguarded() -> list[str]:
    """Tables of the partition tree without the trigger."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tree.relid::regclass::text FROM pg_partition_tree('logs_requestlog') tree "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = tree.relid AND t.tgname = %s)",
            [TRIGGER],
        )
        return sorted(name for (name,) in cursor.fetchall())


def _where(acme):
    return {
        "recent": make_log(acme, request_id="recent", timestamp=NOW - timedelta(days=2)),
        # Older than the class's horizon: no period partition, the class DEFAULT holds it.
        "old": make_log(acme, request_id="old", timestamp=NOW - timedelta(days=80)),
    }


def _table_of(request_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM logs_requestlog WHERE request_id = %s", [request_id])
        return cursor.fetchone()[0]


def test_a_raw_delete_and_update_fail_naming_the_rule(acme):
    _where(acme)
    message = _refused("DELETE FROM logs_requestlog WHERE account_id = %s", [acme.pk])
    assert "DELETE on logs_requestlog refused" in message and RULE in message
    message = _refused("UPDATE logs_requestlog SET model = 'tampered' WHERE account_id = %s", [acme.pk])
    assert "UPDATE on logs_requestlog refused" in message and RULE in message
    # The ORM's writes are the same statements.
    with pytest.raises(DatabaseError, match=RULE), transaction.atomic():
        RequestLog.objects.filter(account=acme).delete()
    with pytest.raises(DatabaseError, match=RULE), transaction.atomic():
        RequestLog.objects.filter(account=acme).update(total_tokens=0)
    assert sorted(RequestLog.objects.values_list("request_id", "model")) == [
        ("old", "gpt-4o-mini"),
        ("recent", "gpt-4o-mini"),
    ]


def test_every_partition_refuses_a_delete_aimed_at_it(acme):
    """Statement-level triggers fire on the table a statement names only, so every table of
    the tree has its own: period partition, class DEFAULT, class table, root DEFAULT."""
    _where(acme)
    period = period_table(30, period_start(30, NOW - timedelta(days=2)))
    assert _table_of("recent") == period and _table_of("old") == class_table(30) + "_default"
    assert _unguarded() == []
    for table in (period, class_table(30) + "_default", class_table(30), "logs_requestlog_default"):
        assert f"DELETE on {table} refused" in _refused(f"DELETE FROM {table}")
        assert f"UPDATE on {table} refused" in _refused(f"UPDATE {table} SET latency_ms = 1")
    assert RequestLog.objects.count() == 2


def test_partitions_created_later_are_guarded_in_the_same_transaction(acme):
    weeks_ahead = period_start(30, NOW + timedelta(days=14))
    created = create_partitions(17, [period_start(17, NOW)]) + create_partitions(30, [weeks_ahead])
    assert {class_table(17), class_table(17) + "_p" + f"{period_start(17, NOW):%Y%m%d}"} <= set(created)
    assert period_table(30, weeks_ahead) in created
    assert _unguarded() == []
    make_log(acme, request_id="r17", retention_days=17, timestamp=NOW - timedelta(hours=1))
    assert RULE in _refused(f"DELETE FROM {period_table(17, period_start(17, NOW))}")
    assert RULE in _refused(f"DELETE FROM {class_table(17)}_default")
    assert RequestLog.objects.filter(request_id="r17").count() == 1


def test_allowed_writers_may_and_the_flag_does_not_outlive_the_block(acme):
    rows = _where(acme)
    with transaction.atomic():
        with allow_log_writes("scrub"):
            assert _sql("UPDATE logs_requestlog SET user_agent = 'scrubbed' WHERE request_id = 'recent'") == 1
        # Back outside the block, in the same transaction: refused again.
        assert RULE in _refused("DELETE FROM logs_requestlog WHERE request_id = 'recent'")
    with allow_log_writes("purge"):
        assert _sql("DELETE FROM logs_requestlog WHERE request_id = 'old'") == 1
    with allow_log_writes("deletion"):
        RequestLog.objects.filter(pk=rows["recent"].pk).delete()
    assert not RequestLog.objects.exists()
    assert set(ALLOWED_WRITERS) == {"purge", "move", "deletion", "scrub", "rotate"}


def test_a_block_rolled_back_takes_its_rows_and_its_flag_with_it(acme):
    _where(acme)
    with transaction.atomic():
        with allow_log_writes("purge"):
            assert _sql("DELETE FROM logs_requestlog WHERE request_id = 'old'") == 1
            transaction.set_rollback(True)
        with pytest.raises(RuntimeError), allow_log_writes("purge"):
            _sql("DELETE FROM logs_requestlog WHERE request_id = 'recent'")
            raise RuntimeError("stop")
        assert RULE in _refused("DELETE FROM logs_requestlog")
    assert sorted(RequestLog.objects.values_list("request_id", flat=True)) == ["old", "recent"]


def test_a_class_move_is_an_update_across_partitions_and_needs_move(acme):
    make_log(acme, request_id="moving", timestamp=NOW - timedelta(days=2))
    create_partitions(90, [period_start(90, NOW - timedelta(days=2))])
    statement = "UPDATE logs_requestlog SET retention_days = 90 WHERE request_id = 'moving'"
    assert RULE in _refused(statement)
    with allow_log_writes("move"):
        assert _sql(statement) == 1
    assert _table_of("moving") == period_table(90, period_start(90, NOW - timedelta(days=2)))


def test_any_other_flag_value_and_an_unknown_writer_are_refused(acme):
    _where(acme)
    with transaction.atomic():
        _sql("SET LOCAL meterlog.allow_delete = 'me'")
        assert RULE in _refused("DELETE FROM logs_requestlog")
    with pytest.raises(ValueError, match="not an allowed log writer: 'me'"), allow_log_writes("me"):
        pass
    assert RequestLog.objects.count() == 2


def test_inserts_are_not_affected(client, acme):
    """Ingest (COPY), a plain INSERT and INSERT ... ON CONFLICT DO NOTHING fire no UPDATE or
    DELETE trigger."""
    from console.models import ApiToken
    from tests.factories import ingest_record

    token = ApiToken.generate(account=acme, scope="ingest")[1]
    stamp = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    batch = [ingest_record(n, timestamp=stamp) for n in range(50)]
    for _ in range(2):  # the second time, every record is a duplicate
        response = client.post("/api/v1/ingest", batch, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
        assert response.status_code == 200, response.content
    assert RequestLog.objects.filter(account=acme).count() == 50
    row = RequestLog.objects.get(request_id="req-7")
    columns = ('id, account_id, retention_days, request_id, "timestamp", model, status, prompt_tokens, '
               "completion_tokens, total_tokens, api_key, user_agent, request_params, tags, error_code, "
               "error_message, ingested_at")  # fmt: skip
    copy = f"INSERT INTO logs_requestlog ({columns}) SELECT {columns} FROM logs_requestlog WHERE id = %s "
    copy += "ON CONFLICT DO NOTHING"
    assert _sql(copy, [row.pk]) == 0
    assert RequestLog.objects.filter(account=acme).count() == 50


def test_the_migration_reverses(acme):
    """Backward drops the trigger from every table (a raw DELETE works again), forward puts
    it back everywhere. DDL is transactional: the test's rollback undoes both."""
    migration = importlib.import_module("logs.migrations.0010_no_hand_writes")
    _where(acme)
    with connection.schema_editor(atomic=False) as editor:
        migration.backward(None, editor)
        assert len(_unguarded()) >= 5
        with transaction.atomic():
            assert _sql("DELETE FROM logs_requestlog WHERE request_id = 'old'") == 1
            transaction.set_rollback(True)
        migration.forward(None, editor)
    assert _unguarded() == []
    assert RULE in _refused("DELETE FROM logs_requestlog")


def test_a_partition_made_by_hand_is_guarded_by_the_hourly_upkeep(acme):
    from logs.tasks import create_upcoming_partitions

    create_partitions(30, [])
    _sql(
        "CREATE TABLE logs_requestlog_r30_by_hand PARTITION OF logs_requestlog_r30 "
        "FOR VALUES FROM ('2020-01-01') TO ('2020-01-08')"
    )
    assert _unguarded() == ["logs_requestlog_r30_by_hand"]
    create_upcoming_partitions()
    assert _unguarded() == []
    assert RULE in _refused("DELETE FROM logs_requestlog_r30_by_hand")


def test_the_trigger_and_the_guard_name_the_same_writers(acme):
    """logs.guard.ALLOWED_WRITERS and the trigger's list are written twice (Python, SQL):
    every writer the guard allows gets through, and the trigger allows nothing else."""
    make_log(acme, request_id="r", latency_ms=0)
    for n, reason in enumerate(ALLOWED_WRITERS, start=1):
        with allow_log_writes(reason):
            assert _sql("UPDATE logs_requestlog SET latency_ms = %s WHERE request_id = 'r'", [n]) == 1
    assert RequestLog.objects.get(request_id="r").latency_ms == len(ALLOWED_WRITERS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('logs_refuse_hand_writes'::regproc)")
        source = cursor.fetchone()[0]
    listed = re.search(r"IN \(([^)]*)\)", source).group(1)
    assert sorted(re.findall(r"'(\w+)'", listed)) == sorted(ALLOWED_WRITERS)
