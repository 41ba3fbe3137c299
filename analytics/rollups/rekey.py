"""Renaming API-key values in an account's rollups (`scrub_secrets`: a key stored in the
clear becomes its masked form), in place, for every day including those past retention,
whose raw rows may be gone (a rebuild could not rewrite those).

Each rollup row with an old value is deleted and added again under the new value through
the same upsert as ingest: when the account already has a row under the new value (the
same secret stored masked in another spelling), sums add up and maxima keep the largest.
The busiest minute of such a merged slot is then the larger of the two (a lower bound of
the true one, which needs the raw rows: `rebuild_rollups` recomputes it where they exist).
"""

from collections.abc import Callable

from django.db import connection, transaction

from analytics.measures import MEASURES, PEAKS
from analytics.models import SliceDimension, UsageDay, UsageMinute, UsageSlice, UsageSliceDay
from analytics.rollups.write import upsert
from console.models import Account
from logs import gate
from logs.locks import lock_account_ingest

_KEY = int(SliceDimension.API_KEY)
# (model, column holding the key, unique columns, summed measures, maxima kept apart, dimension filter)
TABLES = (
    (UsageDay, "api_key", ("account_id", "projection", "day", "model", "api_key", "status", "error_code"),
     MEASURES, (), None),
    (UsageSlice, "value", ("account_id", "dimension", "start", "value"), MEASURES, PEAKS, _KEY),
    (UsageSliceDay, "value", ("account_id", "dimension", "value", "day"), (), PEAKS, _KEY),
    (UsageMinute, "value", ("account_id", "minute", "dimension", "value"), ("requests", "total_tokens"), (), _KEY),
)  # fmt: skip


def _rows(model, account: Account, dimension: int | None):
    rows = gate.rollup_rows(model, account)
    return rows if dimension is None else rows.filter(dimension=dimension)


def rename_api_keys(account: Account, rename: Callable[[str], str | None], *, dry_run: bool = False) -> int:
    """Give every rollup row of `account` whose API key `rename` maps (to a new value; None
    keeps it) the new value, under the account's ingest lock. Returns the rows renamed."""
    renamed = 0
    for model, column, keys, measures, extra, dimension in TABLES:
        values = _rows(model, account, dimension).values_list(column, flat=True).distinct()
        mapping = {old: new for old in values if (new := rename(old)) is not None and new != old}
        for old, new in sorted(mapping.items()):
            with transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    lock_account_ingest(cursor, account)
                old_rows = _rows(model, account, dimension).filter(**{column: old})
                rows = list(old_rows.values_list(*keys, *measures, *extra))
                renamed += len(rows)
                if dry_run or not rows:
                    continue
                at = keys.index(column)
                old_rows.delete()
                upsert(cursor, model, keys, extra, [(*r[:at], new, *r[at + 1 :]) for r in rows], measures)
    return renamed
