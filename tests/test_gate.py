"""The tenant gate holds by construction: outside `logs.gate` and the few writers named below,
no code reads the log or the rollup tables directly (through `Model.objects`, `Model._meta`
or a table name in SQL). A new query that forgets the account filter fails here."""

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.utils import timezone

from console.models import Account

ROOT = Path(__file__).resolve().parent.parent
APPS = ("console", "logs", "analytics", "alerts")
# The gate itself, and the writers: ingest, the rollup writes (at ingest, rebuild, compact),
# partition management, the retention purge (logs/retention/) and the admin.
ALLOWED = (
    "logs/gate.py",
    "logs/ingest/",
    "logs/partitions.py",
    "logs/retention/",
    "logs/admin.py",
    "logs/admin_resources.py",
    "analytics/rollups",
    "analytics/admin.py",
)
GUARDED_MODELS = (
    "logs.RequestLog",
    "analytics.UsageQuarter",
    "analytics.UsageHour",
    "analytics.UsageDay",
    "analytics.UsageSlice",
    "analytics.UsageSliceDay",
    "analytics.UsageMinute",
    "analytics.RollupState",
)
BYPASSES = ("objects", "_meta", "_default_manager", "_base_manager")


def _guarded() -> tuple[set[str], set[str]]:
    models = [apps.get_model(label) for label in GUARDED_MODELS]
    return {model.__name__ for model in models}, {model._meta.db_table for model in models}


def bypasses(source: str, names: set[str], tables: set[str]) -> list[str]:
    """Where `source` reads a guarded model or table without the gate: `Model.objects`,
    `Model._meta`, ... and string literals that name a guarded table."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in BYPASSES
            and isinstance(node.value, ast.Name)
            and node.value.id in names
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words = set(node.value.replace(",", " ").replace("(", " ").replace(")", " ").split())
            for table in tables & words:
                found.append(f"line {node.lineno}: table {table} named in a string")
    return found


def _code_files():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative.startswith(ALLOWED):
                continue
            yield relative, path


def test_no_read_of_log_or_rollup_tables_bypasses_the_gate():
    names, tables = _guarded()
    offenders = {
        relative: found for relative, path in _code_files() if (found := bypasses(path.read_text(), names, tables))
    }
    assert offenders == {}, "read these through logs.gate (request_logs, request_log_sql, rollup_rows, rollup_sql)"


@pytest.mark.parametrize(
    "source",
    [
        "RequestLog.objects.filter(model='x').count()",
        "table = UsageQuarter._meta.db_table",
        "cursor.execute('SELECT count(*) FROM logs_requestlog WHERE 1 = 1')",
        "cursor.execute(f'SELECT * FROM analytics_usageday, x')",
        "RollupState._default_manager.all()",
    ],
)
def test_the_scan_catches_a_bypass(source):
    names, tables = _guarded()
    assert len(bypasses(source, names, tables)) == 1


def test_the_scan_lets_gate_reads_through():
    names, tables = _guarded()
    source = (
        "rows = gate.request_logs(account=account).filter(model='x')\n"
        "table, where, params = gate.rollup_sql(UsageQuarter, account)\n"
        "cursor.execute(f'SELECT count(*) FROM {table} WHERE {where}', params)\n"
    )
    assert bypasses(source, names, tables) == []


@pytest.mark.django_db
def test_gate_reads_one_account_or_every_account_only_when_asked(acme, globex):
    from django.db import connection

    from analytics.models import UsageQuarter
    from logs import gate
    from logs.ingest.services import ingest_records

    now = timezone.now().replace(microsecond=0)
    for account, count in ((acme, 3), (globex, 2)):
        records = [
            {"request_id": f"{account.slug}-{i}", "timestamp": now.isoformat(), "model": "m", "status": "success"}
            for i in range(count)
        ]
        assert ingest_records(account=account, records=records).accepted == count

    assert gate.request_logs(account=acme).count() == 3
    assert gate.request_logs(account=gate.all_accounts()).count() == 5
    with connection.cursor() as cursor:
        for scope, expected in ((acme, 3), (globex, 2), (gate.all_accounts(), 5)):
            table, where, params = gate.request_log_sql(scope)
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)
            assert cursor.fetchone()[0] == expected
            table, where, params = gate.rollup_sql(UsageQuarter, scope)
            cursor.execute(f"SELECT coalesce(sum(requests), 0) FROM {table} WHERE {where}", params)
            assert cursor.fetchone()[0] == expected
    assert sum(gate.rollup_rows(UsageQuarter, globex).values_list("requests", flat=True)) == 2
    for refused in (None, Account(slug="unsaved")):
        with pytest.raises(ValueError, match="saved Account or all_accounts"):
            gate.request_logs(account=refused)
        with pytest.raises(ValueError, match="saved Account or all_accounts"):
            gate.rollup_sql(UsageQuarter, refused)


@pytest.mark.django_db
def test_gate_reads_a_set_of_accounts_in_one_query(acme, globex):
    """some_accounts(): the rollups of the accounts named, none of the others', one query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from analytics.models import UsageQuarter
    from logs import gate
    from logs.ingest.services import ingest_records

    initech = Account.objects.create(slug="initech", name="Initech")
    now = timezone.now().replace(microsecond=0)
    for account, count in ((acme, 3), (globex, 2), (initech, 7)):
        records = [
            {"request_id": f"{account.slug}-{i}", "timestamp": now.isoformat(), "model": "m", "status": "success"}
            for i in range(count)
        ]
        assert ingest_records(account=account, records=records).accepted == count

    pair = gate.some_accounts([acme, globex])
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        table, where, params = gate.rollup_sql(UsageQuarter, pair, alias="q")
        cursor.execute(
            f"SELECT q.account_id, sum(q.requests) FROM {table} q WHERE {where} GROUP BY 1 ORDER BY 1", params
        )
        assert cursor.fetchall() == [(acme.pk, 3), (globex.pk, 2)]
    assert len(queries) == 1
    assert sorted(gate.rollup_rows(UsageQuarter, pair).values_list("requests", flat=True)) == [2, 3]
    with connection.cursor() as cursor:
        table, where, params = gate.rollup_sql(UsageQuarter, gate.some_accounts([]))
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)
        assert cursor.fetchone()[0] == 0
    assert gate.rollup_rows(UsageQuarter, gate.some_accounts([])).count() == 0
    with pytest.raises(ValueError, match="saved Accounts"):
        gate.some_accounts([acme, Account(slug="unsaved")])
    with pytest.raises(ValueError, match="saved Account or all_accounts"):
        gate.request_logs(account=pair)
    with connection.cursor() as cursor:
        for scope, expected in ((pair, 5), (gate.some_accounts([initech]), 7), (gate.some_accounts([]), 0)):
            table, where, params = gate.request_log_sql(scope)
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)
            assert cursor.fetchone()[0] == expected
