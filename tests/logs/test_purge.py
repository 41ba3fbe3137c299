"""The retention purge (issue 15, first slice): exact to the account's cutoff, on SQLite
and PostgreSQL; the PostgreSQL layout (dropped partitions, batched straddle) is in
test_purge_partitions.py, the rollups' own retention in test_purge_rollups.py."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings

from console.models import ApiToken
from logs.gate import request_logs
from logs.ingest.services import ingest_records
from logs.retention.models import PurgeRun, PurgeStatus
from logs.retention.services import purge_expired_logs
from tests.factories import make_account

# On PostgreSQL the purge drops whole daily partitions (tests/logs/conftest.py).
pytestmark = pytest.mark.usefixtures("immediate_constraints")

# slug -> (tier, override, period in days)
ACCOUNTS = {
    "std": ("standard", None, 30),
    "pro": ("professional", None, 90),
    "ent": ("enterprise", None, 365),
    "cust": ("standard", 45, 45),
}


def rec(request_id: str, ts: datetime) -> dict:
    return {
        "request_id": request_id,
        "timestamp": ts.isoformat(),
        "model": "gpt-4o-mini",
        "status": "success",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": "0.000027",
    }


def kept_ids(period: int) -> list[str]:
    return sorted([f"new-{period - 1}d", "new-1d"])


@pytest.fixture
def side_by_side(db):
    """Four accounts, each with rows 1 day and period-1 days old (kept) and period+1 and
    period+40 days old (past retention)."""
    now = datetime.now(UTC)
    accounts = {}
    for slug, (tier, override, period) in ACCOUNTS.items():
        account = make_account(slug, tier=tier, retention_days_override=override)
        records = [
            rec(f"{label}-{age}d", now - timedelta(days=age, minutes=5))
            for label, age in (("new", 1), ("new", period - 1), ("old", period + 1), ("old", period + 40))
        ]
        assert ingest_records(account=account, records=records).accepted == 4
        accounts[slug] = account
    return accounts


def ids(account) -> list[str]:
    return sorted(request_logs(account=account).values_list("request_id", flat=True))


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("purge_logs", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_each_account_loses_exactly_the_rows_past_its_period(side_by_side, client):
    output = run_command()
    for slug, (_, _, period) in ACCOUNTS.items():
        account = side_by_side[slug]
        assert ids(account) == kept_ids(period), slug
        assert f"  {slug}: {period} days, cutoff " in output
        assert f"{slug}: {period} days" in output and "deleted 2 rows" in output
    run = PurgeRun.objects.get()
    assert run.status == PurgeStatus.DONE and not run.dry_run and run.finished_at is not None
    assert {e["slug"]: e["deleted"] for e in run.accounts} == {"cust": 2, "ent": 2, "pro": 2, "std": 2}
    assert run.deleted == 8
    # Through the query API too: the 29-day row is listed, the 31-day one is gone.
    token = ApiToken.generate(account=side_by_side["std"], scope="read")[1]
    listed = client.get("/api/v1/logs", headers={"authorization": f"Bearer {token}"})
    assert sorted(r["request_id"] for r in listed.json()["results"]) == kept_ids(30)
    gone = client.get("/api/v1/logs", {"request_id": "old-31d"}, headers={"authorization": f"Bearer {token}"})
    assert gone.json()["results"] == []


@pytest.mark.django_db
def test_a_second_run_deletes_nothing_more(side_by_side):
    run_command()
    output = run_command()
    second = PurgeRun.objects.order_by("pk").last()
    assert second.deleted == 0 and second.partitions == [] and second.status == PurgeStatus.DONE
    assert output.count("deleted 0 rows") == 4
    assert "Total deleted: 0 rows." in output
    assert all(ids(side_by_side[slug]) == kept_ids(period) for slug, (_, _, period) in ACCOUNTS.items())


@pytest.mark.django_db
def test_a_dry_run_deletes_nothing_and_says_what_it_would(side_by_side):
    output = run_command("--dry-run")
    assert output.count("would delete 2 rows") == 4
    assert "Total would delete: 8 rows." in output
    for slug in ACCOUNTS:
        assert len(ids(side_by_side[slug])) == 4
    run = PurgeRun.objects.get()
    assert run.dry_run and run.deleted == 0
    assert {e["slug"]: e["would_delete"] for e in run.accounts} == {"cust": 2, "ent": 2, "pro": 2, "std": 2}


@pytest.mark.django_db
def test_account_option_touches_no_other_account(side_by_side):
    output = run_command("--account", "pro")
    assert "pro: 90 days" in output and "deleted 2 rows" in output
    for slug in ("std", "ent", "cust"):
        assert slug not in output
        assert len(ids(side_by_side[slug])) == 4
    assert ids(side_by_side["pro"]) == kept_ids(90)
    run = PurgeRun.objects.get()
    assert run.only_account == "pro" and run.partitions == [] and [e["slug"] for e in run.accounts] == ["pro"]


@pytest.mark.django_db
def test_unknown_account_is_an_error(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no account"):
        run_command("--account", "nobody")


@pytest.mark.django_db
def test_rows_left_in_an_old_class_follow_the_accounts_current_period(db):
    """A standard account upgraded to 90 days keeps the rows stored in its old 30-day class
    for 90 days; a professional account downgraded to 30 days loses its 60-day-old rows."""
    now = datetime.now(UTC)
    up = make_account("up")
    down = make_account("down", tier="professional")
    ingest_records(account=up, records=[rec(f"up-{d}d", now - timedelta(days=d)) for d in (20, 60, 100)])
    ingest_records(account=down, records=[rec(f"down-{d}d", now - timedelta(days=d)) for d in (20, 60, 100)])
    up.tier, down.tier = "professional", "standard"
    up.save(), down.save()
    purge_expired_logs()
    assert ids(up) == ["up-20d", "up-60d"]
    assert ids(down) == ["down-20d"]


@pytest.mark.django_db
def test_a_run_out_of_time_is_partial_and_the_next_finishes(side_by_side):
    with override_settings(METERLOG_PURGE_TIME_BUDGET_SECONDS=0):
        first = purge_expired_logs()
    assert first.status == PurgeStatus.PARTIAL
    second = purge_expired_logs()
    assert second.status == PurgeStatus.DONE
    assert first.deleted + second.deleted == 8
    assert all(ids(side_by_side[slug]) == kept_ids(period) for slug, (_, _, period) in ACCOUNTS.items())


@pytest.mark.django_db
def test_a_run_that_died_is_marked_interrupted(side_by_side):
    dead = PurgeRun.objects.create(status=PurgeStatus.RUNNING)
    purge_expired_logs()
    dead.refresh_from_db()
    assert dead.status == PurgeStatus.INTERRUPTED


@pytest.mark.django_db
def test_a_failed_run_records_what_it_did_and_the_next_finishes(side_by_side, monkeypatch):
    from logs.retention import services

    def broken_rollup_purge(*args, **kwargs):
        raise RuntimeError("rollup tables unreachable")

    monkeypatch.setattr(services, "_rollup_purge", broken_rollup_purge)
    with pytest.raises(RuntimeError):
        purge_expired_logs()
    failed = PurgeRun.objects.get()
    assert failed.status == PurgeStatus.FAILED and "rollup tables unreachable" in failed.error
    assert failed.deleted == 8 and {e["slug"]: e["deleted"] for e in failed.accounts}["std"] == 2
    monkeypatch.undo()
    again = purge_expired_logs()
    assert again.status == PurgeStatus.DONE and again.deleted == 0 and again.rollups["tables"]


@pytest.mark.django_db
def test_batches_are_bounded(db):
    now = datetime.now(UTC)
    account = make_account("bulk")
    ingest_records(account=account, records=[rec(f"b{n}", now - timedelta(days=40, minutes=n)) for n in range(7)])
    run = purge_expired_logs(batch_rows=3)
    assert run.deleted == 7 and ids(account) == []
    # 3 + 3 + 1 wherever the rows lie (one default partition on PostgreSQL, the table on SQLite).
    assert run.batches == 3


def test_the_beat_schedule_runs_the_purge_daily():
    from celery.schedules import crontab
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-logs"]
    assert entry["task"] == "logs.tasks.purge_expired_logs"
    assert entry["schedule"] == crontab(hour="2", minute="15")


@pytest.mark.django_db
def test_the_task_runs_a_purge(side_by_side):
    from logs.tasks import purge_expired_logs as task

    result = task.apply().get()
    assert result["status"] == PurgeStatus.DONE and result["deleted"] == 8


@pytest.mark.django_db
def test_the_admin_shows_runs_read_only(side_by_side, olivia, client):
    olivia.is_superuser = True
    olivia.save()
    run = purge_expired_logs()
    client.force_login(olivia)
    assert client.get("/admin/logs/purgerun/").status_code == 200
    assert client.get(f"/admin/logs/purgerun/{run.pk}/change/").status_code == 200
    assert client.get(f"/admin/logs/purgerun/{run.pk}/delete/").status_code == 403
    assert client.get("/admin/logs/purgerun/add/").status_code == 403


def test_the_purge_pauses_a_share_of_each_step(monkeypatch, settings):
    """After each batch and each drop the purge sleeps METERLOG_PURGE_PAUSE_PERCENT of the
    step's time (giving way to ingest); 0 turns the pauses off."""
    from logs.retention import deletes

    slept = []
    monkeypatch.setattr(deletes.time, "sleep", slept.append)
    settings.METERLOG_PURGE_PAUSE_PERCENT = 50
    deletes.pause_after(0.2)
    settings.METERLOG_PURGE_PAUSE_PERCENT = 0
    deletes.pause_after(0.2)
    assert slept == [0.1]


@pytest.mark.django_db
def test_batches_pause_between_them_but_not_after_the_last(monkeypatch, settings):
    from logs.retention import deletes

    std = make_account("std")
    now = datetime.now(UTC)
    ingest_records(account=std, records=[rec(f"x{n}", now - timedelta(days=40, minutes=n)) for n in range(5)])
    pauses = []
    monkeypatch.setattr(deletes, "pause_after", pauses.append)
    run = purge_expired_logs(now=now, batch_rows=2)
    assert run.deleted == 5
    # Batches of 2, 2 and 1 (on PostgreSQL the rows may also go with a dropped partition).
    assert len(pauses) == run.batches - 1 + len(run.partitions)
