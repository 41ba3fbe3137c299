"""The retention purge on PostgreSQL's partitions: whole periods past a class's cutoff are
dropped (catalog checked), the straddling period is deleted in bounded batches, a period
still holding rows an account keeps is not dropped, a detached leftover of a dead run is
dropped by the next, and two runs never overlap."""

import io
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from logs.gate import request_logs
from logs.ingest.services import ingest_records
from logs.partitions import create_partitions, next_period_start, period_start, period_table
from logs.retention import deletes
from logs.retention.models import PurgeRun
from logs.retention.services import PurgeBusy, purge_expired_logs
from tests.factories import make_account
from tests.logs.test_purge import ids, rec

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _checks_done():
    """The test's rows are inserted in the test's own open transaction, so their deferred
    foreign-key checks are still pending and PostgreSQL refuses to DROP a table holding
    them; a real purge meets rows committed long ago. Run the checks as rows go in."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def attached() -> set[str]:
    """Leaf and class partitions of the log, from pg_inherits."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname LIKE 'logs\\_requestlog%%'"
        )
        return {name for (name,) in cursor.fetchall()}


def exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname = %s", [name])
        return cursor.fetchone()[0] == 1


def placement(account) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT request_id, tableoid::regclass::text FROM logs_requestlog WHERE account_id = %s", [account.pk]
        )
        return dict(cursor.fetchall())


def week_of(now: datetime, days: int) -> str:
    return period_table(30, period_start(30, now - timedelta(days=days)))


def test_whole_periods_past_the_cutoff_are_dropped_and_a_kept_row_saves_its_period():
    now = datetime.now(UTC)
    # As if no purge had run for two months: weeks 45, 52 and 59 days back exist (ingest
    # would not create them, the bench loader does), and a 90-day class month 130 days back.
    create_partitions(30, [period_start(30, now - timedelta(days=d)) for d in (45, 52, 59)])
    create_partitions(90, [period_start(90, now - timedelta(days=130))])
    std = make_account("std")
    up = make_account("up")  # standard when its rows were stored, professional since
    pro = make_account("pro", tier="professional")
    ingest_records(account=std, records=[rec(f"std-{d}d", now - timedelta(days=d)) for d in (29, 45, 52, 59)])
    ingest_records(account=up, records=[rec("up-45d", now - timedelta(days=45))])
    ingest_records(account=pro, records=[rec(f"pro-{d}d", now - timedelta(days=d)) for d in (80, 130)])
    up.tier = "professional"
    up.save()
    assert placement(std)["std-52d"] == week_of(now, 52)
    assert placement(pro)["pro-130d"] == period_table(90, period_start(90, now - timedelta(days=130)))
    dropped = {week_of(now, 52), week_of(now, 59), period_table(90, period_start(90, now - timedelta(days=130)))}

    dry = purge_expired_logs(dry_run=True, now=now)
    assert {p["name"] for p in dry.partitions} == dropped
    assert dropped <= attached()

    run = purge_expired_logs(now=now, batch_rows=2)
    assert {p["name"]: p["rows"] for p in run.partitions} == dict.fromkeys(dropped, 1)
    assert all(p["ms"] > 0 and 0 < p["detach_ms"] <= p["ms"] for p in run.partitions)
    assert not dropped & attached() and not any(exists(name) for name in dropped)
    # The week of the 45-day rows holds up's row, kept for 90 days: not dropped, std's
    # row there deleted by a batch.
    assert week_of(now, 45) in attached()
    assert placement(up) == {"up-45d": week_of(now, 45)}
    assert ids(std) == ["std-29d"]
    assert ids(pro) == ["pro-80d"]
    assert {e["slug"]: e["deleted"] for e in run.accounts} == {"pro": 1, "std": 3, "up": 0}
    again = purge_expired_logs(now=now)
    assert again.deleted == 0 and again.partitions == []


def test_a_class_s_periods_are_detached_a_few_per_transaction(monkeypatch):
    """Five expired days of one class: two DETACH transactions (4 + 1), each one wait for
    the class table's lock; every period is recorded with its group."""
    now = datetime.now(UTC)
    days = [period_start(30, now - timedelta(days=d)) for d in range(40, 45)]
    create_partitions(30, days)
    std = make_account("std")
    ingest_records(account=std, records=[rec(f"d{n}", day + timedelta(hours=1)) for n, day in enumerate(days)])
    groups = []
    real_detach = deletes.detach_partitions

    def counted(*, parent, tables):
        groups.append(sorted(tables))
        return real_detach(parent=parent, tables=tables)

    monkeypatch.setattr(deletes, "detach_partitions", counted)
    run = purge_expired_logs(now=now)
    names = sorted(period_table(30, day) for day in days)
    assert sorted(len(g) for g in groups) == [1, 4] and sorted(n for g in groups for n in g) == names
    assert sorted(p["name"] for p in run.partitions) == names and not any(exists(n) for n in names)
    assert len({p["detach_group"] for p in run.partitions}) == 2
    assert run.deleted == 5 and ids(std) == []


def test_the_straddling_period_is_deleted_in_batches():
    now = datetime.now(UTC)
    std = make_account("std")
    cutoff = now - timedelta(days=30)
    start = period_start(30, cutoff)
    step = (cutoff - start) / 6
    expired = [rec(f"x{n}", cutoff - step * n) for n in range(1, 6)]
    kept = [rec(f"k{n}", cutoff + timedelta(minutes=n)) for n in range(1, 4)]
    ingest_records(account=std, records=expired + kept)
    straddle = period_table(30, start)
    assert set(placement(std).values()) <= {straddle, period_table(30, next_period_start(30, start))}
    assert all(placement(std)[r["request_id"]] == straddle for r in expired)

    run = purge_expired_logs(now=now, batch_rows=2)
    assert run.partitions == [] and straddle in attached()
    assert run.deleted == 5 and run.batches == 3  # 2 + 2 + 1
    assert run.accounts[0]["batches"] == 3
    assert ids(std) == ["k1", "k2", "k3"]


def test_one_batch_serves_every_account_of_the_straddling_period():
    """The accounts of a class share a leaf: each batch deletes across all of them (one
    statement), counted per account; a batch short of the limit ends the leaf."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=30)
    start = period_start(30, cutoff)
    step = (cutoff - start) / 8
    expired = {"a": 3, "b": 1, "c": 0}
    accounts = {slug: make_account(slug) for slug in expired}
    for slug, account in accounts.items():
        old = [rec(f"{slug}-x{n}", cutoff - step * (n + 1)) for n in range(expired[slug])]
        ingest_records(account=account, records=[*old, rec(f"{slug}-k", cutoff + timedelta(minutes=5))])

    run = purge_expired_logs(now=now, batch_rows=3)
    assert run.partitions == []
    assert {e["slug"]: e["deleted"] for e in run.accounts} == expired
    # 4 rows in batches of 3: the first is full, the second deletes the last row and is short.
    assert run.deleted == 4 and run.batches == 2
    assert {slug: ids(account) for slug, account in accounts.items()} == {s: [f"{s}-k"] for s in expired}
    again = purge_expired_logs(now=now, batch_rows=3)
    assert again.deleted == 0 and again.batches == 0


def test_purge_writes_do_not_wait_for_their_wal_flush():
    """A purge batch commits without waiting for the WAL flush (synchronous_commit off, in
    its own transaction only): it holds its row locks for the DELETE alone."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        before = cursor.fetchone()[0]
        with deletes.allow_log_writes("purge"):
            deletes._purge_transaction(cursor)
            cursor.execute("SHOW synchronous_commit")
            inside = cursor.fetchone()[0]
    # (Outside a test's transaction each batch is its own transaction, whose end resets it.)
    assert (before, inside) == ("on", "off")


def test_a_period_detached_by_a_dead_run_is_dropped_by_the_next():
    now = datetime.now(UTC)
    week = period_start(30, now - timedelta(days=50))
    create_partitions(30, [week])
    std = make_account("std")
    ingest_records(account=std, records=[rec("old", now - timedelta(days=50)), rec("new", now - timedelta(days=2))])
    name = period_table(30, week)
    # The first run died between DETACH and DROP.
    assert deletes.detach_partition(parent="logs_requestlog_r30", table=name) is not None
    assert name not in attached() and exists(name)
    assert ids(std) == ["new"]  # a detached period is no longer read

    run = purge_expired_logs(now=now)
    assert [(p["name"], p["rows"]) for p in run.partitions] == [(name, 1)]
    assert not exists(name)
    assert run.accounts[0]["deleted"] == 1


def _other_connection():
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres", dbname=db["NAME"]
    )


def test_a_second_run_exits_while_one_holds_the_lock():
    std = make_account("std")
    ingest_records(account=std, records=[rec("old", datetime.now(UTC) - timedelta(days=40))])
    with _other_connection() as other:
        other.execute("SELECT pg_advisory_lock(hashtext('meterlog.purge'))")
        with pytest.raises(PurgeBusy):
            purge_expired_logs()
        out = io.StringIO()
        call_command("purge_logs", stdout=out)
        assert "Nothing done: another purge run holds the lock" in out.getvalue()
        assert ids(std) == ["old"] and not PurgeRun.objects.exists()
        # Released here: a closed connection's backend lets go of it a moment later.
        other.execute("SELECT pg_advisory_unlock(hashtext('meterlog.purge'))")
    run = purge_expired_logs()
    assert run.deleted == 1 and ids(std) == []


def test_purge_writes_say_they_are_the_purge():
    """The flag the trigger checks (logs.guard, migration 0010) is set in the purge's
    transactions only, and put back when the block ends inside a longer transaction."""
    from django.db import transaction

    from logs.guard import allow_log_writes

    def flag(cursor):
        cursor.execute("SELECT current_setting('meterlog.allow_delete', true)")
        return cursor.fetchone()[0] or ""

    with connection.cursor() as cursor:
        assert flag(cursor) == ""
    with allow_log_writes("purge"), connection.cursor() as cursor:
        deletes._purge_transaction(cursor)
        cursor.execute("SELECT current_setting('meterlog.allow_delete'), current_setting('lock_timeout')")
        assert cursor.fetchone() == ("purge", "2s")
    with transaction.atomic(), connection.cursor() as cursor:
        with allow_log_writes("purge"):
            assert flag(cursor) == "purge"
        assert flag(cursor) == ""
    assert request_logs  # the gate is the read path the tests check through


@pytest.mark.django_db(transaction=True)
def test_a_detach_that_met_a_busy_class_tries_again_after_the_batches(monkeypatch):
    """The first round of DETACH tries found the class busy; once the batches are done the
    second round gets it and the period is dropped whole in the same run, not emptied by
    batches."""
    now = datetime.now(UTC)
    week = period_start(30, now - timedelta(days=50))
    name = period_table(30, week)
    create_partitions(30, [week])
    std = make_account("std")
    ingest_records(account=std, records=[rec(f"old{n}", now - timedelta(days=50, minutes=n)) for n in range(3)])
    tries = []
    real_detach = deletes.detach_partitions

    def busy_first(*, parent, tables):
        tries.append(tables)
        return None if len(tries) == 1 else real_detach(parent=parent, tables=tables)

    monkeypatch.setattr(deletes, "detach_partitions", busy_first)
    run = purge_expired_logs(now=now)
    assert tries == [[name], [name]]
    assert [(p["name"], p["rows"]) for p in run.partitions] == [(name, 3)] and not exists(name)
    assert run.deleted == 3 and run.batches == 0 and ids(std) == []


# Committed: the other connection must see the class table to lock it.
@pytest.mark.django_db(transaction=True)
def test_a_partition_whose_lock_is_busy_is_emptied_by_batches_and_dropped_next_time():
    """A reader holding the class table keeps DETACH waiting: the purge gives up after a few
    short waits (never queueing ingest behind it for long), tries again after its batches,
    deletes the rows by batches when the class is still busy, and the next run drops the
    empty partition."""
    now = datetime.now(UTC)
    week = period_start(30, now - timedelta(days=50))
    name = period_table(30, week)
    create_partitions(30, [week])
    try:
        std = make_account("std")
        ingest_records(account=std, records=[rec(f"old{n}", now - timedelta(days=50, minutes=n)) for n in range(3)])
        with _other_connection() as other:
            other.execute("BEGIN")
            other.execute("SELECT count(*) FROM logs_requestlog_r30")  # holds ACCESS SHARE until rollback
            began = datetime.now(UTC)
            run = purge_expired_logs(now=now)
            waited = datetime.now(UTC) - began
            other.execute("ROLLBACK")
        assert run.partitions == [] and name in attached()
        assert run.deleted == 3 and ids(std) == []
        assert waited < timedelta(seconds=8)  # 2 rounds of 8 waits of 70 ms and pauses of at most 0.25 s
        again = purge_expired_logs(now=now)
        assert [(p["name"], p["rows"]) for p in again.partitions] == [(name, 0)] and not exists(name)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
