"""Physical order and statistics of the rollup tables (PostgreSQL).

Ingest writes a slot's slices (and a day's rows) side by side, so a year of one value lies
about one row per heap page: 35,000 pages for one model over a year in another zone's
days (about 170 ms). A finished month rewritten in value order puts each value's month on
a few neighbouring pages."""

from datetime import date

from django.db import connection, transaction

from analytics.models import UsageDay, UsageHour, UsageMinute, UsageQuarter, UsageSlice, UsageSliceDay, UsageUtcDay
from analytics.sql import is_pg
from analytics.timekeys import local_midnight, next_month
from console.models import Account
from logs.locks import lock_account_ingest

_VALUE_ORDER = {
    UsageSlice: ("start", "dimension, value, start"),
    UsageDay: ("day", "projection, model, api_key, status, error_code, day"),
}


_COMPACT_TABLE = "meterlog_compact_rows"


def compact_month(account: Account, first: date) -> int:
    """Rewrite the account's slices and daily / month rows of the local month starting at
    `first` (slices: its UTC slots) in value order, under the ingest lock; returns the rows
    moved. Only PostgreSQL (SQLite has no heap pages to speak of) does anything."""
    if connection.vendor != "postgresql":
        return 0
    following = next_month(first)
    zone = account.zone
    bounds = {
        "start": (local_midnight(first, zone), local_midnight(following, zone)),
        "day": (first, following),
    }
    moved = 0
    with transaction.atomic(), connection.cursor() as cursor:
        lock_account_ingest(cursor, account)
        for model, (column, order) in _VALUE_ORDER.items():
            table = model._meta.db_table
            cursor.execute(
                f"CREATE TEMP TABLE {_COMPACT_TABLE} ON COMMIT DROP AS WITH moved AS ("
                f"DELETE FROM {table} WHERE account_id = %s AND {column} >= %s AND {column} < %s RETURNING *) "
                "SELECT * FROM moved",
                [account.pk, *bounds[column]],
            )
            cursor.execute(f"INSERT INTO {table} SELECT * FROM {_COMPACT_TABLE} ORDER BY {order}")
            moved += cursor.rowcount
            cursor.execute(f"DROP TABLE {_COMPACT_TABLE}")
    return moved


def analyze() -> None:
    """Refresh the planner's statistics of the rollup tables after a large rebuild (before
    it, PostgreSQL guessed 2 rows where a year had 67,000 and sorted them on disk), and
    their visibility maps: the slices' index-only scans read the heap for pages not yet
    marked all-visible. Outside a transaction (VACUUM cannot run in one)."""
    if is_pg() and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            tables = (UsageQuarter, UsageHour, UsageUtcDay, UsageSlice, UsageSliceDay, UsageDay, UsageMinute)
            cursor.execute(f"VACUUM (ANALYZE) {', '.join(model._meta.db_table for model in tables)}")
