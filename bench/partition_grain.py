"""Which partition grain for a short retention class: daily or weekly periods (issue 15).

The 30-day class is the one a daily purge touches most (every standard account). With
weekly periods the daily purge deletes a day of rows from the straddling week by batches;
with daily periods it drops yesterday's partition whole, but every query of the class plans
and opens up to 31 partitions instead of 5-6. This builds the same rows both ways, each a
table of its own shaped like one retention class of the log (RANGE on timestamp, eleven
indexes like the log's), and prints side by side:

- the daily purge: weekly = the batched DELETE of one day's expired rows from the
  straddling week (the purge's own batch SQL, 5,000 rows a batch, each batch committed),
  its time and longest batch; daily = DETACH + DROP of the expired day;
- planning and execution of the log's everyday queries for one account (page 1 of the
  list over the whole period; the last 24 h of one model; requests per day over 30 days),
  median of --runs EXPLAIN ANALYZE runs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_grain_bench \\
        .venv/bin/python bench/partition_grain.py [--rows-per-day 100000] [--accounts 250]

It writes only its own tables (grain_daily, grain_weekly) in a database whose name contains
"bench" and is not meterlog_bench; it drops them at the start of each run.
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database_url, database_name

DAYS = 30
COLUMNS = """
    id bigint NOT NULL, account_id bigint NOT NULL, "timestamp" timestamptz NOT NULL,
    model varchar(255) NOT NULL, status varchar(8) NOT NULL, prompt_tokens int NOT NULL,
    completion_tokens int NOT NULL, total_tokens int NOT NULL, cost numeric(24, 12),
    api_key varchar(255) NOT NULL, user_agent text NOT NULL, request_params jsonb NOT NULL,
    error_code varchar(64) NOT NULL, ip_address inet, request_id varchar(255) NOT NULL
"""
# The log's indexes (logs.models.RequestLog.Meta.indexes and the primary key): planning
# cost grows with partitions x indexes.
INDEXES = (
    '(id, "timestamp")',
    '(account_id, "timestamp" DESC, id DESC)',
    '(account_id, model, "timestamp" DESC, id DESC)',
    '(account_id, api_key, "timestamp" DESC, id DESC)',
    '(account_id, api_key, model, "timestamp" DESC, id DESC)',
    """(account_id, "timestamp" DESC, id DESC) WHERE status = 'error'""",
    """(account_id, model, "timestamp" DESC, id DESC) WHERE status = 'error'""",
    """(account_id, api_key, "timestamp" DESC, id DESC) WHERE status = 'error'""",
    """(account_id, error_code, "timestamp" DESC, id DESC) WHERE error_code <> ''""",
    '(account_id, ip_address, "timestamp" DESC, id DESC)',
    "(account_id, request_id)",
)
# The purge's batch (logs.retention.deletes._batch_sql), on one leaf.
BATCH = (
    "WITH gone AS (DELETE FROM {t} WHERE ctid = ANY(ARRAY("
    "SELECT v.ctid FROM unnest(%s::bigint[], %s::timestamptz[]) AS a(account_id, cutoff) "
    "CROSS JOIN LATERAL (SELECT p.ctid FROM {t} p "
    'WHERE p.account_id = a.account_id AND p."timestamp" < a.cutoff LIMIT %s) v LIMIT %s)) '
    "RETURNING account_id) SELECT count(*) FROM gone"
)


def build(cur, name: str, starts: list[datetime], step: timedelta, *, now: datetime, args) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    cur.execute(f'CREATE TABLE {name} ({COLUMNS}) PARTITION BY RANGE ("timestamp")')
    for start in starts:
        # DDL takes no parameters: the bounds as literals.
        cur.execute(
            f"CREATE TABLE {name}_p{start:%Y%m%d} PARTITION OF {name} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + step).isoformat()}')"
        )
    began = time.perf_counter()
    # Rows in arrival order, like the log: one per (second slot), accounts Zipf-ish.
    cur.execute(
        f"""
        INSERT INTO {name}
        SELECT n, 1 + floor(%(accounts)s * power(random(), 2))::bigint,
               %(first)s::timestamptz + (n::bigint * %(span)s / %(rows)s) * interval '1 second',
               'model-' || (n %% 16), CASE WHEN n %% 20 = 0 THEN 'error' ELSE 'success' END,
               100 + n %% 900, 50 + n %% 300, 150 + n %% 1200, (n %% 1000) / 100000.0,
               'key-' || (n %% 37), 'bench/1.0', '{{"temperature": 0.7}}'::jsonb,
               CASE WHEN n %% 20 = 0 THEN 'rate_limit' ELSE '' END,
               ('10.0.' || (n %% 200) || '.' || (n %% 250))::inet, 'req-' || n
        FROM generate_series(1, %(rows)s) AS n
        """,
        {
            "accounts": args.accounts,
            "first": now - timedelta(days=DAYS + 1),
            "span": (DAYS + 1) * 86400,
            "rows": args.rows_per_day * (DAYS + 1),
        },
    )
    for index in INDEXES:
        cur.execute(f"CREATE INDEX ON {name} {index}")
    cur.execute(f"VACUUM ANALYZE {name}")
    print(f"  {name}: {len(starts)} partitions, built in {time.perf_counter() - began:.1f} s", flush=True)


def explain(cur, sql: str, params, runs: int) -> tuple[float, float]:
    planning, execution = [], []
    for _ in range(runs):
        cur.execute("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) " + sql, params)
        plan = cur.fetchone()[0][0]
        planning.append(plan["Planning Time"])
        execution.append(plan["Execution Time"])
    return statistics.median(planning), statistics.median(execution)


def queries(name: str, now: datetime, account: int):
    return [
        (
            "list page 1, whole period",
            f'SELECT * FROM {name} WHERE account_id = %s ORDER BY "timestamp" DESC, id DESC LIMIT 50',
            [account],
        ),
        (
            "last 24 h, one model",
            f"SELECT * FROM {name} WHERE account_id = %s AND model = 'model-3' "
            f'AND "timestamp" >= %s ORDER BY "timestamp" DESC, id DESC LIMIT 50',
            [account, now - timedelta(days=1)],
        ),
        (
            "requests per day, 30 days",
            f"SELECT date_trunc('day', \"timestamp\"), count(*) FROM {name} "
            f'WHERE account_id = %s AND "timestamp" >= %s GROUP BY 1',
            [account, now - timedelta(days=30)],
        ),
    ]


def purge_weekly(conn, now: datetime, accounts: int) -> dict:
    cutoff = now - timedelta(days=DAYS)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'grain_weekly' ORDER BY 1"
        )
        leaves = [r[0] for r in cur.fetchall()]
    ids = list(range(1, accounts + 1))
    began, deleted, longest, batches, times = time.perf_counter(), 0, 0.0, 0, []
    for leaf in leaves:
        while True:
            t = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                cur.execute(BATCH.format(t=leaf), [ids, [cutoff] * len(ids), 5000, 5000])
                n = cur.fetchone()[0]
            if n:
                batches += 1
                times.append((time.perf_counter() - t) * 1000)
                longest = max(longest, times[-1])
            deleted += n
            if n < 5000:
                break
    median = statistics.median(times) if times else 0
    return {"seconds": time.perf_counter() - began, "rows": deleted, "batches": batches, "longest_ms": longest,
            "median_ms": median}  # fmt: skip


def purge_daily(conn, now: datetime) -> dict:
    # The oldest day wholly past the cutoff (the data starts DAYS + 1 days back).
    day = (now - timedelta(days=DAYS + 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    leaf = f"grain_daily_p{day:%Y%m%d}"
    began = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {leaf}")
        rows = cur.fetchone()[0]
    with conn.transaction(), conn.cursor() as cur:
        t = time.perf_counter()
        cur.execute(f"ALTER TABLE grain_daily DETACH PARTITION {leaf}")
        detach_ms = (time.perf_counter() - t) * 1000
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"DROP TABLE {leaf}")
    return {"seconds": time.perf_counter() - began, "rows": rows, "detach_ms": detach_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-per-day", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=250)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    url = bench_database_url()
    if database_name(url) == "meterlog_bench":
        sys.exit("not on meterlog_bench: use a database of its own, e.g. meterlog_grain_bench")
    import os

    import psycopg

    maintenance = psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
    name = database_name(url)
    if not maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        maintenance.execute(f'CREATE DATABASE "{name}"')
    maintenance.close()
    conn = psycopg.connect(url, autocommit=True)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rows_per_day:,} rows a day, {args.accounts} accounts")
    first = (now - timedelta(days=DAYS + 1)).replace(hour=0)
    daily = [first + timedelta(days=n) for n in range(DAYS + 3)]
    monday = first - timedelta(days=first.weekday())
    weekly = [monday + timedelta(weeks=n) for n in range(7)]
    with conn.cursor() as cur:
        build(cur, "grain_daily", daily, timedelta(days=1), now=now, args=args)
        build(cur, "grain_weekly", weekly, timedelta(weeks=1), now=now, args=args)
        # A mid-sized account (accounts are Zipf-ish: account 1 is the largest).
        account = max(1, args.accounts // 10)
        print(f"\nqueries of account {account}, median of {args.runs} (planning / execution ms):")
        print(f"  {'query':<28} {f'weekly ({len(weekly)} parts)':>20} {f'daily ({len(daily)} parts)':>20}")
        for (label, weekly_sql, params), (_, daily_sql, _) in zip(
            queries("grain_weekly", now, account), queries("grain_daily", now, account), strict=True
        ):
            w = explain(cur, weekly_sql, params, args.runs)
            d = explain(cur, daily_sql, params, args.runs)
            print(f"  {label:<28} {w[0]:>8.2f} / {w[1]:>8.2f} {d[0]:>9.2f} / {d[1]:>8.2f}")
    w = purge_weekly(conn, now, args.accounts)
    d = purge_daily(conn, now)
    print("\ndaily purge of the day that expired:")
    print(
        f"  weekly periods: batched DELETE of {w['rows']:,} rows in {w['batches']} batches, "
        f"{w['seconds']:.2f} s, batches median {w['median_ms']:.0f} ms, longest {w['longest_ms']:.0f} ms"
    )
    print(
        f"  daily periods:  DETACH + DROP of {d['rows']:,} rows, {d['seconds']:.2f} s, DETACH {d['detach_ms']:.1f} ms"
    )
    print(f"load average {os.getloadavg()[0]:.2f}")
    with conn.cursor() as cur:
        cur.execute("DROP TABLE grain_daily, grain_weekly CASCADE")


if __name__ == "__main__":
    main()
