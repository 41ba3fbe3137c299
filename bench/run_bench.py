"""Latency of the log list, the totals bar and the admin changelist on the bench database,
plus (with --ingest) ingest throughput beside COPY. Prints a summary with PASS/FAIL per target
and writes bench/results/<timestamp>.json (and the EXPLAIN plans of the misses).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/run_bench.py [--ingest [--port 8123]] [--runs 20]

Everything is measured through the real code path: logs.selectors.filter_request_logs,
log_page and log_totals, in this process against PostgreSQL (no HTTP in the list figures);
the admin baseline is the real changelist, GET /admin/logs/requestlog/ with the same filters
through django.test.Client logged in as a superuser made for the run (and deleted after).
A figure whose call raises QueryTimeout fails and the run goes on; a run that stops early
still writes what it measured.
"""

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django
from bench.run_bench_lists import FILTERS, RANGES, bench_lists, bench_search, bench_timeout, choose_accounts
from bench.run_bench_summary import print_summary, save, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--admin-budget", type=float, default=6.0, help="seconds per admin measurement (min 3 runs)")
    parser.add_argument("--ingest", action="store_true", help="also measure HTTP ingest beside COPY")
    parser.add_argument("--ingest-records", type=int, default=50_000, help="records per ingest round")
    parser.add_argument("--ingest-rounds", type=int, default=3, help="HTTP + COPY rounds, interleaved (median)")
    parser.add_argument(
        "--port", type=int, default=0, help="port for the ingest bench's gunicorn (default: a free one)"
    )
    parser.add_argument("--skip-lists", action="store_true")
    parser.add_argument("--filters", help=f"comma-separated subset of: {', '.join(FILTERS)}")
    parser.add_argument("--ranges", help="comma-separated subset of: 24h,30d,1y")
    parser.add_argument("--accounts", help="comma-separated subset of: big,medium,small")
    args = parser.parse_args()
    setup_django()

    from django.conf import settings
    from django.db import connection

    settings.DEBUG = False  # no per-query logging in this process: it would time Django's debug cursor
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM logs_requestlog")
        total_rows = cursor.fetchone()[0]
        cursor.execute("SELECT value FROM bench_meta WHERE key = 'load'")
        load = cursor.fetchone()[0]
        accounts = choose_accounts(cursor)
    if args.accounts:
        accounts = {k: v for k, v in accounts.items() if k in args.accounts.split(",")}
    filters = args.filters.split(",") if args.filters else FILTERS
    ranges = {k: v for k, v in RANGES.items() if not args.ranges or k in args.ranges.split(",")}
    print(f"{total_rows:,} rows; accounts {accounts}; {args.runs} runs per figure after one warm-up\n")

    result = {"started_at": now.isoformat(), "rows": total_rows, "load": load, "accounts": accounts}
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    ingest = None
    rows, plans, search, timeout = [], [], [], {"ms": 0, "raised": False, "outcome": "skipped"}
    result.update({"lists": rows, "search": search, "timeout": timeout, "plans": plans})
    finished = False
    try:
        if args.ingest:
            from bench.ingest_bench import run_ingest_bench

            ingest = run_ingest_bench(records=args.ingest_records, rounds=args.ingest_rounds, port=args.port)
            result["ingest"] = ingest
        if not args.skip_lists:
            print(
                f"{'account':<7}{'rng':<5}{'filter':<22}{'rows':>10} {'first med':>8} {'p95':>8} {'deep med':>8} "
                f"{'p95':>8} {'tot med':>8} {'p95':>8} {'admin med':>8} {'p95':>8} {'adm/key':>8} "
                f"{'1st plan+exec':>11} {'deep plan+exec':>11}"
            )
            bench_lists(accounts, args.runs, now, args.admin_budget, filters, ranges, rows, plans)
            if not args.filters:
                print("\ntext search and IP over 30 days (median / p95 ms)")
                search += bench_search(accounts, args.runs, now)
            if "big" in accounts and not args.filters:
                timeout.update(bench_timeout(accounts, now))
        finished = True
    finally:
        # Whatever was measured is saved, also when the run stops half-way.
        if not finished:
            result["incomplete"] = True
            print("\nthe run stopped early: saving what was measured", flush=True)
        lines = summary(rows, search, timeout, ingest)
        result["summary"] = lines
        if finished:
            print_summary(lines)
        save(result, plans, stamp)


if __name__ == "__main__":
    main()
