"""logs 0012_encryption on a table that has rows: PostgreSQL rewrites no partition (ADD COLUMN
of a nullable boolean and varchar(512) -> text are catalog changes: every leaf keeps its
relfilenode) and SQLite does not rebuild the table (it keeps its root page)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from logs.partitions import ensure_partitions

BEFORE = ("logs", "0011_deletion_requests")
AFTER = ("logs", "0012_encryption")


def _migrate(target) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def _storage() -> list:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname, c.relfilenode FROM pg_partition_tree('logs_requestlog') t "
                "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf ORDER BY 1"
            )
        else:
            cursor.execute("SELECT name, rootpage FROM sqlite_master WHERE name = 'logs_requestlog'")
        return cursor.fetchall()


def _columns() -> dict:
    with connection.cursor() as cursor:
        return {
            column.name: column.null_ok
            for column in connection.introspection.get_table_description(cursor, "logs_requestlog")
        }


@pytest.mark.django_db(transaction=True)
def test_0012_changes_no_stored_row(acme):
    _migrate(BEFORE)
    try:
        assert "encrypted" not in _columns()
        ensure_partitions(acme.retention_days, [datetime(2026, 11, 20, tzinfo=UTC)])
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO logs_requestlog (account_id, retention_days, request_id, timestamp, model, status, "
                "prompt_tokens, completion_tokens, total_tokens, api_key, user_agent, request_params, tags, "
                "error_code, error_message, ingested_at) VALUES (%s, %s, 'old', %s, 'm', 'success', 1, 1, 2, '', "
                "'agent/1', '{}', '{}', '', '', %s)",
                [acme.pk, acme.retention_days, datetime(2026, 11, 20, 12, tzinfo=UTC), datetime.now(UTC)],
            )
        before = _storage()
        assert before
    finally:
        _migrate(AFTER)
    assert _storage() == before
    assert _columns()["encrypted"] is True  # nullable
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_agent, encrypted FROM logs_requestlog WHERE request_id = 'old'")
        assert cursor.fetchone() == ("agent/1", None)
