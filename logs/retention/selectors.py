"""Reads of the retention purge: each account's cutoff and the request log's partitions.

An account's cutoff is one moment, now minus its current retention period: every row of
the account older than it is past retention, whichever retention class it was stamped with
(see services: rows an account left in another class follow its current period).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection

from console.models import Account
from logs.gate import retention_classes
from logs.partitions import TABLE, class_table, is_postgres, list_partitions, next_period_start


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


def leaves_of_account(*, account: Account, cutoff: datetime, leaves: list[Leaf]) -> list[Leaf]:
    """The leaves that can hold rows of the account older than its cutoff: in each class the
    account has rows in, the periods starting before the cutoff and the class default; and
    the top-level default (rows of a class that has no table)."""
    classes = set(retention_classes(account=account) or [])
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
