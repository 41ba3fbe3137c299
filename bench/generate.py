"""Load N realistic request-log rows into the bench database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/generate.py --rows 1000000 --reset

Shape of the data (see bench/README.md):
- ~500 accounts, Zipf-like sizes; tiers standard (30 d) / professional (90 d) / enterprise
  (365 d) plus a few 180-day overrides, so rows land in four LIST partitions; each account's
  rows span its retention window ending now (as if the purge had run).
- arrivals: an hourly weekday/weekend diurnal curve with a year of growth, and inside each
  hour the per-second arrival profile of the Azure LLM inference trace (bursts included);
  prompt/completion token pairs sampled from the same trace (bench/data, CC-BY 4.0).
- 16 models with skewed use (one unpriced, so NULL costs exist), 1-50 API keys per account
  (aliases and masked secrets), ~5% errors (per-account rate 1-12%) with codes and messages.

Rows are generated inside PostgreSQL (INSERT ... SELECT generate_series), one partition
period at a time and sorted by time, so each partition's heap is in arrival order like a
real append-only log. Secondary indexes and the account FK are dropped during the load and
rebuilt afterwards (exactly as the migration defined them), then VACUUM ANALYZE.
"""

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database_url, setup_django
from bench.generate_data import (
    ERRORS,
    MODELS,
    TEAMS,
    USER_AGENTS,
    hour_weight,
    load_trace,
    lower_bounds,
    plan_accounts,
    provider_of,
)
from bench.generate_load import (
    INSERT_SQL,
    create_accounts,
    drop_secondary_indexes,
    ensure_database,
    reset_database,
    restore_secondary_indexes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--reset", action="store_true", help="drop and re-create the bench database first")
    parser.add_argument("--keep-indexes", action="store_true", help="load with every index in place (slower)")
    args = parser.parse_args()

    url = bench_database_url()
    if args.reset:
        reset_database(url)
    else:
        ensure_database(url)
    setup_django()

    from django.core.management import call_command
    from django.db import connection

    from console.models import Account
    from logs.partitions import create_partitions, next_period_start, period_start

    call_command("migrate", verbosity=0)
    if Account.objects.exists():
        sys.exit("the bench database already has accounts; pass --reset to start over")

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    end_hour = now.replace(minute=0, second=0, microsecond=0)  # rows stop at the last full hour
    year_start = end_hour - timedelta(days=365)
    hours = [year_start + timedelta(hours=i) for i in range(365 * 24)]
    weights = [hour_weight(h, year_start, rng) for h in hours]
    counts, pairs = load_trace()
    second_lb = lower_bounds([c + 0.05 for c in counts])  # a trickle in quiet seconds

    plans = plan_accounts(args.accounts, rng)
    t0 = time.perf_counter()
    create_accounts(plans, now, rng)
    print(f"{len(plans)} accounts, {sum(p['n_keys'] for p in plans)} API keys ({time.perf_counter() - t0:.1f} s)")

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_key")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_key "
            "(key_account int, key_no int, identifier text, PRIMARY KEY (key_account, key_no))"
        )

    classes = sorted({p["retention"] for p in plans})
    total_share = {r: sum(p["share"] for p in plans if p["retention"] == r) for r in classes}
    common = {
        "second_lb": second_lb,
        "second_scale": 3600.0 / len(counts),
        "model_names": [m[0] for m in MODELS],
        "providers": [provider_of(m[0]) for m in MODELS],
        "model_lb": lower_bounds([m[1] for m in MODELS]),
        "p_in": [m[2] for m in MODELS],
        "p_out": [m[3] for m in MODELS],
        "p_cached": [m[4] for m in MODELS],
        "reasoning": [m[5] for m in MODELS],
        "error_lb": lower_bounds([e[1] for e in ERRORS]),
        "err_codes": [e[0] for e in ERRORS],
        "err_msgs": [e[2] for e in ERRORS],
        "err_http": [e[3] for e in ERRORS],
        "ctx": [p[0] for p in pairs],
        "gen": [p[1] for p in pairs],
        "n_pairs": len(pairs),
        "user_agents": USER_AGENTS,
        "n_user_agents": len(USER_AGENTS),
        "teams": TEAMS,
        "n_teams": len(TEAMS),
    }

    with connection.cursor() as cursor:
        saved = None if args.keep_indexes else drop_secondary_indexes(cursor)
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SELECT setseed(0.42)")
        loaded, load_seconds = 0, 0.0
        try:
            for retention in classes:
                members = [p for p in plans if p["retention"] == retention]
                class_rows = round(args.rows * total_share[retention])
                window = [
                    (h, w) for h, w in zip(hours, weights, strict=True) if h >= end_hour - timedelta(days=retention)
                ]
                window_weight = sum(w for _, w in window)
                cursor.execute("TRUNCATE bench_key")
                with cursor.copy("COPY bench_key (key_account, key_no, identifier) FROM STDIN") as copy:
                    for a, plan in enumerate(members, start=1):
                        for k, (ident, _, _) in enumerate(plan["keys"], start=1):
                            copy.write_row((a, k, ident))
                params = dict(
                    common,
                    retention=retention,
                    account_ids=[p["account_id"] for p in members],
                    account_lb=lower_bounds([p["share"] for p in members]),
                    n_keys=[p["n_keys"] for p in members],
                    error_rates=[p["error_rate"] for p in members],
                )
                # One partition period at a time, sorted by time: the heap in arrival order.
                start = period_start(retention, window[0][0])
                while start < end_hour:
                    stop = next_period_start(retention, start)
                    chunk = [(h, w) for h, w in window if start <= h < stop]
                    start = stop
                    n = round(class_rows * sum(w for _, w in chunk) / window_weight)
                    if not chunk or n == 0:
                        continue
                    # A year of history as if no purge had run: every period gets its own.
                    create_partitions(retention, [period_start(retention, chunk[0][0])])
                    t1 = time.perf_counter()
                    cursor.execute(
                        INSERT_SQL,
                        dict(
                            params,
                            n=n,
                            start_epoch=chunk[0][0].timestamp(),
                            hour_lb=lower_bounds([w for _, w in chunk]),
                        ),
                    )
                    took = time.perf_counter() - t1
                    loaded += n
                    load_seconds += took
                    print(
                        f"  r{retention} {chunk[0][0]:%Y-%m-%d}: {n:>9,} rows in {took:5.1f} s "
                        f"({n / took:,.0f} rows/s); total {loaded:,}",
                        flush=True,
                    )
        finally:
            if saved:
                t2 = time.perf_counter()
                print("rebuilding indexes and the account FK ...", flush=True)
                restore_secondary_indexes(cursor, saved)
                index_seconds = time.perf_counter() - t2
            else:
                index_seconds = 0.0
            cursor.execute("DROP TABLE IF EXISTS bench_key")
        t3 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE logs_requestlog")
        cursor.execute("VACUUM ANALYZE")
        vacuum_seconds = time.perf_counter() - t3
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]

    total = load_seconds + index_seconds
    print(
        f"\nloaded {loaded:,} rows: insert {load_seconds:.1f} s ({loaded / load_seconds:,.0f} rows/s), "
        f"indexes {index_seconds:.1f} s, together {loaded / total:,.0f} rows/s; "
        f"VACUUM ANALYZE {vacuum_seconds:.1f} s; database {size}"
    )
    summary = {
        "rows": loaded,
        "insert_seconds": round(load_seconds, 1),
        "index_seconds": round(index_seconds, 1),
        "vacuum_seconds": round(vacuum_seconds, 1),
        "rows_per_second": round(loaded / total),
        "database_size": size,
        "generated_at": now.isoformat(),
        "seed": args.seed,
    }
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb)")
        cursor.execute(
            "INSERT INTO bench_meta VALUES ('load', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [json.dumps(summary)],
        )


if __name__ == "__main__":
    main()
