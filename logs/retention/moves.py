"""Moving an account's rows to its retention class after its period changed.

Every row carries the class it was stored under (`retention_days`, the partition key on
PostgreSQL). When an operator changes an account's tier or custom period, its new rows go to
the new class at once; this moves the old ones in batches, so the purge honours the new
period for all of them and whole partitions of the old class can be dropped again.

Reads stay right during a move: the new class is registered first (the account's queries
name every class it has rows in), and a batch moves its rows in one statement (on
PostgreSQL an UPDATE of the partition key moves each row to its new partition), so every
row is in exactly one class at any moment. Rows the purge has not taken yet keep going
under the new period: after an upgrade they are kept longer (rows already purged are gone:
only the rollups remember them), after a downgrade the next purge takes those past it.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, connection

from console.models import Account
from logs.guard import allow_log_writes
from logs.locks import lock_account_ingest
from logs.models import AccountRetentionClass
from logs.partitions import TABLE, ensure_partitions, is_postgres

log = logging.getLogger(__name__)


@dataclass
class MoveResult:
    account: Account
    to_days: int
    from_days: list[int]
    moved: int = 0
    batches: int = 0
    finished: bool = True


def accounts_to_move() -> list[Account]:
    """Accounts with rows in a class that is not their period's (PostgreSQL: from the
    classes table; SQLite: from the rows themselves)."""
    accounts = Account.objects.order_by("slug")
    if is_postgres():
        pairs = set(AccountRetentionClass.objects.values_list("account_id", "retention_days"))
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT account_id, retention_days FROM {TABLE}")
            pairs = set(cursor.fetchall())
    return [a for a in accounts if any(pk == a.pk and days != a.retention_days for pk, days in pairs)]


def _stale_classes(account: Account) -> list[int]:
    if is_postgres():
        classes = AccountRetentionClass.objects.filter(account=account).values_list("retention_days", flat=True)
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT retention_days FROM {TABLE} WHERE account_id = %s", [account.pk])
            classes = [days for (days,) in cursor.fetchall()]
    return sorted(days for days in classes if days != account.retention_days)


def _prepare_target(account: Account, source: int) -> None:
    """The new class's partitions for the rows' time span, and the class registered for the
    account's queries, before any row moves."""
    AccountRetentionClass.objects.get_or_create(account=account, retention_days=account.retention_days)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT min("timestamp"), max("timestamp") FROM {TABLE} WHERE account_id = %s AND retention_days = %s',
            [account.pk, source],
        )
        first, last = cursor.fetchone()
    if first is None:
        return
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)] + [last]
    ensure_partitions(account.retention_days, days)


def _move_sql() -> str:
    # By id inside the source class (every partition's primary key leads with id); the
    # subquery's class names the source partitions only.
    return (
        f"UPDATE {TABLE} SET retention_days = %s WHERE account_id = %s AND retention_days = %s AND id IN ("
        f"SELECT id FROM {TABLE} WHERE account_id = %s AND retention_days = %s LIMIT %s)"
    )


def move_account(account: Account, *, batch_rows: int | None = None, deadline: float | None = None) -> MoveResult:
    """Move the account's rows of other classes to its period's, `batch_rows` a batch,
    each batch its own transaction; stops at `deadline` (time.monotonic()) and the next run
    goes on."""
    batch_rows = batch_rows or settings.METERLOG_PURGE_BATCH_ROWS
    if deadline is None:
        deadline = time.monotonic() + settings.METERLOG_PURGE_TIME_BUDGET_SECONDS
    target = account.retention_days
    result = MoveResult(account=account, to_days=target, from_days=_stale_classes(account))
    for source in result.from_days:
        if is_postgres():
            _prepare_target(account, source)
        while True:
            if time.monotonic() >= deadline:
                result.finished = False
                return result
            try:
                with allow_log_writes("move"), connection.cursor() as cursor:
                    if is_postgres():
                        timeout = int(settings.METERLOG_PURGE_LOCK_TIMEOUT_MS)
                        cursor.execute(f"SET LOCAL lock_timeout = '{timeout}ms'")
                    cursor.execute(_move_sql(), [target, account.pk, source, account.pk, source, batch_rows])
                    moved = cursor.rowcount
            except OperationalError as exc:
                if "lock" not in str(exc).lower():
                    raise
                log.warning("class move: lock timeout moving %s's rows; the next run continues", account.slug)
                result.finished = False
                return result
            if moved:
                result.moved += moved
                result.batches += 1
            if moved < batch_rows:
                break
        if is_postgres():
            _forget_empty_class(account, source)
    return result


def _forget_empty_class(account: Account, source: int) -> None:
    # Under the ingest lock: a batch that read the old period before the change and commits
    # now would put rows in the old class again (its insert trigger then registers the
    # class anew, and the next move takes them).
    with allow_log_writes("move"), connection.cursor() as cursor:
        lock_account_ingest(cursor, account)
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE account_id = %s AND retention_days = %s)",
            [account.pk, source],
        )
        if not cursor.fetchone()[0]:
            AccountRetentionClass.objects.filter(account=account, retention_days=source).delete()


def move_retention_classes(*, slug: str | None = None, batch_rows: int | None = None) -> list[MoveResult]:
    """Every account (or the one named) whose rows sit in another class than its period's."""
    deadline = time.monotonic() + settings.METERLOG_PURGE_TIME_BUDGET_SECONDS
    accounts = accounts_to_move()
    if slug is not None:
        accounts = [a for a in accounts if a.slug == slug]
    results = []
    for account in accounts:
        results.append(move_account(account, batch_rows=batch_rows, deadline=deadline))
        if not results[-1].finished:
            break
    return results
