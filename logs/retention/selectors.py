"""Reads of the retention purge: each account's cutoff and the request log's partitions;
for the retention pages, an account's oldest kept log, its last purge and the recent runs.

An account's cutoff is one moment, now minus its current retention period: every row of
the account older than it is past retention, whichever retention class it was stamped with
(see services: rows an account left in another class follow its current period).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from console.models import Account
from logs.gate import request_logs
from logs.partitions import TABLE, class_table, is_postgres, list_partitions, next_period_start
from logs.retention.models import PurgeRun, PurgeStatus


@dataclass(frozen=True)
class AccountCutoff:
    account: Account
    retention_days: int
    cutoff: datetime


def account_cutoffs(*, now: datetime, slug: str | None = None) -> list[AccountCutoff]:
    """Every account (or the one named), in slug order, with its cutoff."""
    accounts = Account.objects.order_by("slug")
    if slug is not None:
        accounts = accounts.filter(slug=slug)
    return [AccountCutoff(a, a.retention_days, now - timedelta(days=a.retention_days)) for a in accounts]


@dataclass(frozen=True)
class Leaf:
    """A leaf partition of the log: a period of a retention class (start, end), a class's
    DEFAULT (start and end None), or the top-level DEFAULT (retention_days None)."""

    name: str
    retention_days: int | None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def is_default(self) -> bool:
        return self.start is None


_RANGE = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")
_CLASS = re.compile(rf"^{TABLE}_r(\d+)$")
_PERIOD_NAME = re.compile(rf"^{TABLE}_r(\d+)_p(\d{{8}})$")


def _bound(text: str) -> datetime:
    # pg_get_expr prints timestamptz bounds in the session zone (UTC under Django).
    return datetime.fromisoformat(text).astimezone(UTC)


def log_leaves() -> list[Leaf]:
    """Every leaf partition of the log with its class and time range (PostgreSQL)."""
    leaves = []
    for part in list_partitions():
        if part["parent"] == TABLE:
            if part["bound"] == "DEFAULT":
                leaves.append(Leaf(part["name"], None))
            continue  # a class table, whose leaves are listed under it
        match = _CLASS.match(part["parent"])
        if not match:
            continue
        days = int(match[1])
        bounds = _RANGE.search(part["bound"])
        if bounds:
            leaves.append(Leaf(part["name"], days, _bound(bounds[1]), _bound(bounds[2])))
        else:
            leaves.append(Leaf(part["name"], days))
    return leaves


def leaves_of_account(*, classes, cutoff: datetime, leaves: list[Leaf]) -> list[Leaf]:
    """The leaves that can hold rows of an account older than its cutoff: in each class the
    account has rows in (`classes`), the periods starting before the cutoff and the class
    default; and the top-level default (rows of a class that has no table)."""
    return [
        leaf
        for leaf in leaves
        if leaf.retention_days is None or (leaf.retention_days in classes and (leaf.is_default or leaf.start < cutoff))
    ]


def detached_leftovers(*, now: datetime) -> list[tuple[str, int]]:
    """Period tables a purge detached but did not drop (its process died in between):
    plain tables named like a period partition, no longer attached, whose period lies
    wholly past its class's retention. (name, retention_days) for the next run to drop."""
    if not is_postgres():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition AND relname LIKE %s",
            [TABLE + r"\_r%\_p%"],
        )
        names = [name for (name,) in cursor.fetchall()]
    leftovers = []
    for name in sorted(names):
        match = _PERIOD_NAME.match(name)
        if not match:
            continue
        days = int(match[1])
        start = datetime.strptime(match[2], "%Y%m%d").replace(tzinfo=UTC)
        if name == f"{class_table(days)}_p{start:%Y%m%d}" and next_period_start(days, start) <= now - timedelta(
            days=days
        ):
            leftovers.append((name, days))
    return leftovers


# --- the retention pages ------------------------------------------------------------------


def oldest_kept_log(*, account: Account) -> datetime | None:
    """The time of the account's oldest stored log row, None when it has none.

    Through the gate, so on PostgreSQL the query names the account's retention classes and
    only their partitions are planned. Every log index leads with account_id and ends with
    (timestamp DESC, id DESC): read backwards, reqlog_acct_time gives a leaf's oldest row of
    the account first, so this is a Merge Append of one short index probe per leaf, LIMIT 1,
    whatever the table's size (tests/logs/test_retention_pages.py checks the plan)."""
    rows = request_logs(account=account).order_by("timestamp", "id").values_list("timestamp", flat=True)
    return rows.first()


def purge_time_utc() -> tuple[int, int] | None:
    """(hour, minute) UTC of the daily purge, read from its one place in settings (the beat
    schedule's crontab); None when the schedule has no such daily entry."""
    entry = settings.CELERY_BEAT_SCHEDULE.get("purge-expired-logs") or {}
    schedule = entry.get("schedule")
    hours, minutes = getattr(schedule, "hour", None), getattr(schedule, "minute", None)
    if not hours or not minutes or len(hours) != 1 or len(minutes) != 1:
        return None
    return next(iter(hours)), next(iter(minutes))


@dataclass(frozen=True)
class AccountPurge:
    """What one purge run did to one account (an entry of PurgeRun.accounts)."""

    run: PurgeRun
    slug: str
    retention_days: int
    cutoff: datetime
    # Rows deleted; in a dry run, the rows it would have deleted.
    rows: int

    @classmethod
    def of(cls, run: PurgeRun, entry: dict) -> "AccountPurge":
        rows = entry.get("would_delete" if run.dry_run else "deleted", 0)
        return cls(run, entry["slug"], entry["retention_days"], datetime.fromisoformat(entry["cutoff"]), rows)


# Runs read to find an account's last purge: daily runs plus a few by hand (`--account`,
# dry runs are skipped by the query); a run over every account names each account that
# existed then, so the newest such run is found in the first rows.
_LAST_PURGE_SCAN = 20


def last_purge(*, account: Account) -> AccountPurge | None:
    """The newest finished (or failed, or partial) purge run, not a dry run, that looked at
    the account, with its cutoff and the account's deleted rows; None before any."""
    runs = (
        PurgeRun.objects.filter(dry_run=False, only_account__in=["", account.slug])
        .exclude(status__in=[PurgeStatus.RUNNING, PurgeStatus.INTERRUPTED])
        .order_by("-started_at", "-pk")[:_LAST_PURGE_SCAN]
    )
    for run in runs:
        for entry in run.accounts:
            if _entry_key(entry) == _account_key(account):
                return AccountPurge.of(run, entry)
    return None


def _entry_key(entry: dict):
    # Runs recorded before entries named the account id match by slug.
    return ("id", entry["account_id"]) if "account_id" in entry else ("slug", entry["slug"])


def _account_key(account: Account, *, by_slug: bool = False):
    return ("slug", account.slug) if by_slug else ("id", account.pk)


def recent_purge_runs(*, limit: int) -> list[PurgeRun]:
    """The newest purge runs of every kind (dry, one account, running), newest first."""
    return list(PurgeRun.objects.order_by("-started_at", "-pk")[:limit])


def last_purges(runs: list[PurgeRun], accounts: list[Account]) -> dict[int, AccountPurge]:
    """Each account's newest real purge among `runs` (newest first), by account id."""
    keys = {_account_key(account): account.pk for account in accounts}
    keys.update({_account_key(account, by_slug=True): account.pk for account in accounts})
    found: dict[int, AccountPurge] = {}
    for run in runs:
        if run.dry_run or run.status in (PurgeStatus.RUNNING, PurgeStatus.INTERRUPTED):
            continue
        for entry in run.accounts:
            pk = keys.get(_entry_key(entry))
            if pk is not None:
                found.setdefault(pk, AccountPurge.of(run, entry))
    return found
