"""Moving an account's rows to its new retention class after a period change (issue 15):
reads see every row before, during and after the move, and the next purge honours the new
period; on PostgreSQL the rows really sit in the new class's partitions afterwards."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from console.models import Account
from logs.gate import request_logs
from logs.ingest.services import ingest_records
from logs.models import AccountRetentionClass
from logs.retention.moves import accounts_to_move, move_account
from logs.retention.services import purge_expired_logs
from tests.factories import make_account

NOW = datetime.now(UTC).replace(microsecond=0)


def rec(request_id: str, days_old: float) -> dict:
    return {
        "request_id": request_id,
        "timestamp": (NOW - timedelta(days=days_old)).isoformat(),
        "model": "gpt-4o-mini",
        "status": "success",
        "prompt_tokens": 10,
        "completion_tokens": 5,
    }


@pytest.fixture(autouse=True)
def _checks_done(request):
    """Run deferred foreign-key checks as rows go in (see test_purge_partitions): the purge
    drops partitions, which PostgreSQL refuses while the test's open transaction holds
    pending checks on them; a real purge meets rows committed long ago."""
    if "django_db" in request.keywords and connection.vendor == "postgresql":
        request.getfixturevalue("db")
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def stored(account: Account) -> list[str]:
    fresh = Account.objects.get(pk=account.pk)  # the gate caches an account's classes on it
    return sorted(request_logs(account=fresh).values_list("request_id", flat=True))


def classes_of_rows(account: Account) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT request_id, retention_days FROM logs_requestlog WHERE account_id = %s", [account.pk])
        return dict(cursor.fetchall())


def partitions_of_rows(account: Account) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM logs_requestlog WHERE account_id = %s", [account.pk]
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db
def test_a_downgrade_moves_every_row_and_the_next_purge_takes_what_the_new_period_does_not_cover():
    pro = make_account("pro", tier="professional")
    other = make_account("other", tier="professional")
    ids = {"p10": 10, "p40": 40, "p80": 80, "p85": 85, "p88": 88}
    assert ingest_records(account=pro, records=[rec(i, d) for i, d in ids.items()]).accepted == 5
    assert ingest_records(account=other, records=[rec("o40", 40)]).accepted == 1
    assert set(classes_of_rows(pro).values()) == {90}

    pro.tier = "standard"  # 90 -> 30 days
    pro.save()
    assert [a.slug for a in accounts_to_move()] == ["pro"]
    assert stored(pro) == sorted(ids)  # before the move every row is read

    # Two rows a batch, stopped after the first batch: reads still see every row.
    partial = move_account(pro, batch_rows=2, deadline=0)
    assert partial.finished is False and partial.moved == 0
    first = move_account(pro, batch_rows=2, deadline=float("inf"))
    assert (first.moved, first.batches, first.finished) == (5, 3, True)
    assert stored(pro) == sorted(ids)
    assert set(classes_of_rows(pro).values()) == {30}
    assert classes_of_rows(other) == {"o40": 90}  # another account is not touched
    assert accounts_to_move() == []
    if connection.vendor == "postgresql":
        # Its queries name the new class only; the rows sit in 30-day partitions (the ones
        # past 30 days in the class's default partition, where the purge empties them).
        assert list(AccountRetentionClass.objects.filter(account=pro).values_list("retention_days", flat=True)) == [30]
        assert all(name.startswith("logs_requestlog_r30_") for name in partitions_of_rows(pro))

    run = purge_expired_logs(now=NOW)
    assert run.deleted == 4
    assert stored(pro) == ["p10"]
    assert stored(other) == ["o40"]


@pytest.mark.django_db
def test_an_upgrade_keeps_the_rows_the_longer_period_covers():
    std = make_account("std", tier="standard")
    assert ingest_records(account=std, records=[rec("s5", 5), rec("s25", 25)]).accepted == 2
    std.tier = "professional"  # 30 -> 90 days
    std.save()

    out = io.StringIO()
    call_command("move_retention_classes", stdout=out)
    assert "std: 2 rows moved from 30 days to 90 days in 1 batches" in out.getvalue()
    again = io.StringIO()
    call_command("move_retention_classes", stdout=again)
    assert "Nothing to move" in again.getvalue()

    # Forty days on, both rows are past 30 days and within 90: the purge keeps them.
    purge_expired_logs(now=NOW + timedelta(days=40))
    assert stored(std) == ["s25", "s5"]
    assert set(classes_of_rows(std).values()) == {90}
    # Rows ingested now go straight to the new class; nothing is left to move.
    assert ingest_records(account=std, records=[rec("s0", 0)]).accepted == 1
    assert classes_of_rows(std)["s0"] == 90 and accounts_to_move() == []


@pytest.mark.django_db
def test_a_custom_period_moves_only_that_account_and_the_command_names_it():
    cust = make_account("cust", tier="standard")
    std = make_account("plain", tier="standard")
    assert ingest_records(account=cust, records=[rec("c1", 1), rec("c2", 2)]).accepted == 2
    assert ingest_records(account=std, records=[rec("x1", 1)]).accepted == 1
    cust.retention_days_override = 180
    cust.save()
    out = io.StringIO()
    call_command("move_retention_classes", "--account", "plain", stdout=out)
    assert "Nothing to move" in out.getvalue() and set(classes_of_rows(cust).values()) == {30}
    call_command("move_retention_classes", "--account", "cust", "--batch-size", "1", stdout=out)
    assert "cust: 2 rows moved from 30 days to 180 days in 2 batches" in out.getvalue()
    assert set(classes_of_rows(cust).values()) == {180} and classes_of_rows(std) == {"x1": 30}


def test_the_move_runs_hourly_from_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["move-retention-classes"]
    assert entry == {"task": "logs.tasks.move_retention_classes", "schedule": 3600}
