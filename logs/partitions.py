"""PostgreSQL partitioning of the request log.

Layout: logs_requestlog is LIST-partitioned by retention_days (the account's retention,
stamped on each row at ingest); each retention class is RANGE-partitioned by timestamp,
daily for classes of 31 days or less and monthly for longer ones. The purge then drops
whole partitions instead of deleting rows, and a query touches only a handful of them.
Daily for the short classes because the daily purge then drops yesterday's partition
instead of deleting a day of rows from a week's by batches, which costs a query over the
whole period about a millisecond more planning (bench/partition_grain.py, README
"Retention"). Classes partitioned weekly by an earlier release keep their weeks: a day
that an existing period already covers gets no partition of its own (create_partitions).

Each level has a DEFAULT partition. Ingest creates the partition a row needs before
inserting it, and a scheduled job creates the coming periods ahead, except for periods that
lie wholly past the class's retention: rows of those (a backfill of old records) go to the
class's default partition, the one place per class that the purge empties, so a batch
spread over years creates no partition per old week. A batch therefore creates at most
`max_new_partitions(retention_days)` partitions. Rows in a default partition that are not
past retention raise an alarm (`default_partition_rows`): the purge would not empty them and
they would block creating the partition they belong in.

On SQLite the table is a plain table and everything here is a no-op.
"""

import logging
import re
import time
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

log = logging.getLogger(__name__)

TABLE = "logs_requestlog"
DAILY_MAX_RETENTION = 31


def is_postgres(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


def period_start(retention_days: int, ts: datetime) -> datetime:
    """Start of the partition period holding `ts` (UTC): midnight or the 1st of the month."""
    ts = ts.astimezone(UTC)
    if retention_days <= DAILY_MAX_RETENTION:
        return datetime(ts.year, ts.month, ts.day, tzinfo=UTC)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def next_period_start(retention_days: int, start: datetime) -> datetime:
    if retention_days <= DAILY_MAX_RETENTION:
        return start + timedelta(days=1)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def expired_before(retention_days: int, now: datetime | None = None) -> datetime:
    """Rows older than this are past retention under any rounding of the purge's cutoff
    (one day of margin): a period ending by then gets no partition of its own."""
    return (now or datetime.now(UTC)) - timedelta(days=retention_days + 1)


def live_period_starts(retention_days: int, timestamps, now: datetime | None = None) -> list[datetime]:
    """The period starts these rows need, leaving out periods wholly past retention."""
    horizon = expired_before(retention_days, now)
    starts = {period_start(retention_days, ts) for ts in timestamps}
    return sorted(s for s in starts if next_period_start(retention_days, s) > horizon)


def max_new_partitions(retention_days: int) -> int:
    """The most partitions one batch can create: the class table and its default, plus
    every period that meets the span from the retention horizon to now (ingest refuses
    timestamps more than minutes ahead); months are counted as 28 days, generously."""
    period_days = 1 if retention_days <= DAILY_MAX_RETENTION else 28
    return 2 + -(-(retention_days + 1) // period_days) + 1


def class_table(retention_days: int) -> str:
    return f"{TABLE}_r{retention_days}"


def period_table(retention_days: int, start: datetime) -> str:
    return f"{class_table(retention_days)}_p{start:%Y%m%d}"


# Partitions this process has seen committed, with when: saves a catalog query per ingest
# batch. Entries expire so that a partition dropped by the purge in another process is
# noticed (and re-created for a late backfill) instead of rows falling into the default.
KNOWN_TTL_SECONDS = 300
_known: dict[str, float] = {}


def _is_known(name: str) -> bool:
    seen = _known.get(name)
    return seen is not None and time.monotonic() - seen < KNOWN_TTL_SECONDS


def _remember(names) -> None:
    now = time.monotonic()
    _known.update(dict.fromkeys(names, now))


def _exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cursor.fetchone()[0]


def ensure_partitions(retention_days: int, timestamps, now: datetime | None = None) -> list[str]:
    """Make sure the partitions for these rows exist; returns the names created.

    Rows of periods wholly past retention get none: they go to the class's default
    partition, which the purge empties.

    Runs in its own short transaction, before the insert: partition DDL locks the parent
    table, and holding that lock for the length of an ingest would stall readers.
    """
    if not is_postgres():
        return []
    return create_partitions(retention_days, live_period_starts(retention_days, timestamps, now))


def create_partitions(retention_days: int, starts) -> list[str]:
    """Create the class table and the given periods if missing (no retention check: the
    bench loader builds a year of history with it as if no purge had run)."""
    if not is_postgres():
        return []
    needed = [(class_table(retention_days), None)] + [(period_table(retention_days, s), s) for s in sorted(starts)]
    if all(_is_known(name) for name, _ in needed):
        return []
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        # One creator at a time: two ingests racing to create the same partition would
        # otherwise fail with "relation already exists".
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('meterlog.partitions'))")
        covered = None
        for name, start in needed:
            if _exists(cursor, name):
                continue
            if start is not None:
                end = next_period_start(retention_days, start)
                if covered is None:
                    covered = _period_bounds(cursor, class_table(retention_days))
                if any(low <= start and end <= high for low, high in covered):
                    continue  # inside a longer period of an earlier grain: its rows go there
            if start is None:
                cursor.execute(
                    f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES IN ({int(retention_days)}) "
                    'PARTITION BY RANGE ("timestamp")'
                )
                cursor.execute(f"CREATE TABLE {name}_default PARTITION OF {name} DEFAULT")
            else:
                cursor.execute(
                    f"CREATE TABLE {name} PARTITION OF {class_table(retention_days)} FOR VALUES FROM (%s) TO (%s)",
                    [start, end],
                )
            created.append(name)
        if created:
            # Statement-level triggers are not cloned to new partitions: guard them in the
            # transaction that creates them (logs/migrations/0010_no_hand_writes.py).
            cursor.execute("SELECT logs_guard_log_partitions()")
        # Remember only once committed: a rolled-back creation must be asked about again.
        names = [name for name, _ in needed]
        transaction.on_commit(lambda: _remember(names))
    if created:
        log.info("created log partitions: %s", ", ".join(created))
    return created


_BOUNDS = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


def _period_bounds(cursor, parent: str) -> list[tuple[datetime, datetime]]:
    """The [start, end) of every period partition of a class table."""
    cursor.execute(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        [parent],
    )
    bounds = []
    for (bound,) in cursor.fetchall():
        match = _BOUNDS.search(bound or "")
        if match:
            # pg_get_expr prints timestamptz bounds in the session zone (UTC under Django).
            bounds.append(tuple(datetime.fromisoformat(text).astimezone(UTC) for text in match.groups()))
    return bounds


def guard_partitions() -> int:
    """Give the no-hand-writes trigger (logs/migrations/0010_no_hand_writes.py) to every table
    of the log's partition tree that lacks it, e.g. one created or attached by hand in psql;
    returns how many got it. create_partitions guards what it creates itself."""
    if not is_postgres():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT logs_guard_log_partitions()")
        added = cursor.fetchone()[0]
    if added:
        log.warning("gave the no-hand-writes trigger to %d log partitions that lacked it", added)
    return added


def ensure_upcoming_partitions(retention_classes, now: datetime | None = None, periods_ahead: int = 2) -> list[str]:
    """Create the current and the next `periods_ahead` periods for each retention class."""
    now = now or datetime.now(UTC)
    created = []
    for days in sorted(set(retention_classes)):
        start = period_start(days, now)
        stamps = [start]
        for _ in range(periods_ahead):
            start = next_period_start(days, start)
            stamps.append(start)
        created += ensure_partitions(days, stamps)
    return created


def list_partitions() -> list[dict]:
    """Leaf partitions with their retention class and bounds (PostgreSQL only)."""
    if not is_postgres():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), parent.relname
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class parent ON parent.oid = i.inhparent
            WHERE parent.relname = %s OR parent.relname LIKE %s
            ORDER BY c.relname
            """,
            [TABLE, TABLE + "_r%"],
        )
        return [{"name": name, "bound": bound, "parent": parent} for name, bound, parent in cursor.fetchall()]


_CLASS_TABLE = re.compile(rf"^{TABLE}_r(\d+)$")


def default_partition_rows(now: datetime | None = None) -> dict[str, int]:
    """Row counts of the DEFAULT partitions that hold rows the purge will not empty (in a
    class's default, rows not yet past retention; in the top-level default, any): the
    alarm's input."""
    if not is_postgres():
        return {}
    counts = {}
    with connection.cursor() as cursor:
        for part in list_partitions():
            if part["bound"] != "DEFAULT":
                continue
            where, params = "", []
            match = _CLASS_TABLE.match(part["parent"])
            if match:
                where, params = ' WHERE "timestamp" >= %s', [expired_before(int(match[1]), now)]
            # EXISTS first: a default partition normally holds nothing alarming.
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {part['name']}{where})", params)
            if cursor.fetchone()[0]:
                cursor.execute(f"SELECT count(*) FROM {part['name']}{where}", params)
                counts[part["name"]] = cursor.fetchone()[0]
    return counts


def forget_known_partitions() -> None:
    """For tests and the purge: the next ensure_partitions asks the catalog again."""
    _known.clear()
