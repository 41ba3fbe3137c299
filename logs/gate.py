"""The tenant gate: every read of log or rollup data starts here.

An ORM read starts at `request_logs(account)` or `rollup_rows(Model, account)`; a raw-SQL read
takes its table and its WHERE together from `request_log_sql(account)` or
`rollup_sql(Model, account)`, so a query cannot name a table without the account's filter.
Operator paths that read every account say so with `all_accounts()`; `None` is refused.
A pass over many accounts' rollups at once (the alert evaluation) names them with
`some_accounts(accounts)`: one query for all of them, never a query per account.
`tests/test_gate.py` walks the code and fails on a read of these tables anywhere else.
"""

from django.db import connection
from django.db.models import Model, QuerySet

from console.models import Account
from logs.models import AccountRetentionClass, RequestLog


class AllAccounts:
    """The operator's scope: every account's rows. Only `all_accounts()` hands it out."""

    pk = None

    def __repr__(self) -> str:
        return "all_accounts()"


_ALL = AllAccounts()


class AccountSet:
    """A chosen set of accounts, for reads of the rollups of many accounts in one query.
    Only `some_accounts()` makes one. Raw SQL over the log takes it too (`request_log_sql`:
    one set-based query, e.g. the daily token baselines); the ORM entry `request_logs`
    does not."""

    pk = None

    def __init__(self, ids: frozenset[int]):
        self.ids = ids

    def __repr__(self) -> str:
        return f"some_accounts({sorted(self.ids)})"


Scope = Account | AllAccounts | AccountSet


def some_accounts(accounts) -> AccountSet:
    """The rollup rows of these saved accounts (Account objects); an empty set reads none."""
    ids = set()
    for account in accounts:
        if not isinstance(account, Account) or account.pk is None:
            raise ValueError("the tenant gate needs saved Accounts")
        ids.add(account.pk)
    return AccountSet(frozenset(ids))


def all_accounts() -> AllAccounts:
    """Every account, for operator paths (the all-accounts view, bench, admin tooling)."""
    return _ALL


def _checked(account, *, sets: bool = False) -> Scope:
    if account is _ALL or (sets and isinstance(account, AccountSet)):
        return account
    if not isinstance(account, Account) or account.pk is None:
        raise ValueError("the tenant gate needs a saved Account or all_accounts()")
    return account


def retention_classes(*, account: Account) -> list[int] | None:
    """The retention classes (LIST partitions) holding the account's rows; None on SQLite,
    where the log is one plain table. Kept complete by a trigger (logs migration 0004)."""
    if connection.vendor != "postgresql":
        return None
    return sorted(AccountRetentionClass.objects.filter(account=account).values_list("retention_days", flat=True))


def retention_classes_by_account(account_ids: list[int]) -> dict[int, set[int]]:
    """`retention_classes` of many accounts in one query (the purge's); {} on SQLite."""
    classes: dict[int, set[int]] = {}
    if connection.vendor != "postgresql":
        return classes
    rows = AccountRetentionClass.objects.filter(account_id__in=account_ids).values_list("account_id", "retention_days")
    for account_id, days in rows:
        classes.setdefault(account_id, set()).add(days)
    return classes


def request_logs(*, account: Scope) -> QuerySet:
    """All log rows of one account: the only way in to RequestLog for ORM reads."""
    if _checked(account) is _ALL:
        return RequestLog.objects.all()
    queryset = RequestLog.objects.filter(account=account)
    classes = retention_classes(account=account)
    if classes is not None:
        # Constants, so PostgreSQL prunes the other retention classes' partitions at plan time.
        queryset = queryset.filter(retention_days__in=classes)
    return queryset


def request_log_where(account: Scope, *, classes: list[int] | None = None) -> tuple[str, list]:
    """The SQL twin of `request_logs`: a WHERE clause and its params. `classes` passes
    retention classes the caller already read (ingest reads them once per batch)."""
    if _checked(account, sets=True) is _ALL:
        return "1 = 1", []
    if isinstance(account, AccountSet):
        return _account_set_where(account)
    if classes is None:
        # Remembered on the Account object for the request: a page reads many charts.
        classes = getattr(account, "_retention_classes", None)
        if classes is None:
            classes = account._retention_classes = retention_classes(account=account)
    if classes is None:
        return "account_id = %s", [account.pk]
    return "account_id = %s AND retention_days = ANY(%s::smallint[])", [account.pk, classes or [0]]


def _account_set_where(accounts: AccountSet) -> tuple[str, list]:
    """The log rows of a set of accounts: on PostgreSQL with the union of their retention
    classes as constants, so the other classes' partitions are pruned at plan time."""
    ids = sorted(accounts.ids)
    if not ids:
        return "1 = 0", []
    if connection.vendor != "postgresql":
        return f"account_id IN ({', '.join(['%s'] * len(ids))})", ids
    classes = sorted(set().union(*retention_classes_by_account(ids).values())) or [0]
    return "account_id = ANY(%s::bigint[]) AND retention_days = ANY(%s::smallint[])", [ids, classes]


def request_log_sql(account: Scope, *, classes: list[int] | None = None) -> tuple[str, str, list]:
    """(table, WHERE, params) of the account's log rows, for raw SQL."""
    where, params = request_log_where(account, classes=classes)
    return RequestLog._meta.db_table, where, params


def rollup_rows(model: type[Model], account: Scope) -> QuerySet:
    """All rows of one account (or of an AccountSet) in a rollup table (any model with an
    `account` foreign key)."""
    if _checked(account, sets=True) is _ALL:
        return model.objects.all()
    if isinstance(account, AccountSet):
        return model.objects.filter(account_id__in=sorted(account.ids))
    return model.objects.filter(account=account)


def rollup_sql(model: type[Model], account: Scope, *, alias: str = "") -> tuple[str, str, list]:
    """(table, WHERE, params) of one account's rows in a rollup table, for raw SQL; with
    `alias` the WHERE names its columns through it (for a join)."""
    table = model._meta.db_table
    if _checked(account, sets=True) is _ALL:
        return table, "1 = 1", []
    prefix = f"{alias}." if alias else ""
    if isinstance(account, AccountSet):
        ids = sorted(account.ids)
        if not ids:
            return table, "1 = 0", []
        if connection.vendor == "postgresql":
            # One parameter whatever the number of accounts: the statement text stays the same.
            return table, f"{prefix}account_id = ANY(%s::bigint[])", [ids]
        return table, f"{prefix}account_id IN ({', '.join(['%s'] * len(ids))})", ids
    return table, f"{prefix}account_id = %s", [account.pk]
