"""Latency of the analytics engine (analytics/usage.py) on the bench database, each figure
beside the same aggregate computed from raw rows in the same run, with a check that both agree.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/analytics_bench.py [--runs 20] [--raw-runs 3]

The rollups must be filled first (bench/generate.py COPYs rows behind ingest's back):

    .venv/bin/python manage.py rebuild_rollups --past-retention --days 400

For one account of each size (the same choice as run_bench.py) and the ranges 90 days and 1
year ending at the newest row, in the account's reporting zone (plus the largest account in
Asia/Kathmandu, with a model filter, a key filter, two models in Asia/Kathmandu and one
model in Asia/Tokyo; `--scenarios` keeps the labels that contain one of its parts), it times
every chart query of the analytics page (one engine call each: totals, usage, top_requests,
heatmap, peak_minute), each tab as a whole, the operator's all-accounts view and, when it
exists, GET /api/v1/usage. Beside each it runs a plain GROUP BY over logs_requestlog (same
account, retention classes, range and filters), prints its time and the ratio raw / engine,
and compares requests, errors, tokens, unpriced count and cost (to the cent): a difference
prints MISMATCH.

Beyond the page, the busiest minute of the largest account's 2, 3 and 8 busiest models at
once (`run_peak_values`; `--scenarios busiest` runs only these).

`--cold` (or `--cold-only`) first runs bench/cold_round.py: every default view (dashboard,
log list, each analytics tab, the cost tab's 90-day one-model chart, the usage API, the
operator view) through the view stack, each right after PostgreSQL's shared buffers are
swept of the bench database's pages and the OS page cache is dropped, its cold time beside
its warm median.

Prints a table with PASS/FAIL against issue 3's targets and writes
bench/results/analytics-<timestamp>.json (with EXPLAIN ANALYZE of every miss).
"""

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.analytics_cases import (
    PEAK_VALUES,
    RANGES,
    Scenario,
    api_available,
    run_api,
    run_operator,
    run_peak_values,
    run_scenario,
)
from bench.analytics_raw import RawRunner
from bench.analytics_report import print_header, print_summary
from bench.analytics_timing import CHART_P95_MS, OPERATOR_P95_MS, PAGE_P95_MS
from bench.common import RESULTS_DIR, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed engine calls per figure (after a warm-up)")
    parser.add_argument("--raw-runs", type=int, default=3, help="timed raw GROUP BY runs per figure (after a warm-up)")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per engine figure (min 5 runs)")
    parser.add_argument("--raw-budget", type=float, default=5.0, help="seconds per raw figure (min 1 run)")
    parser.add_argument("--accounts", help="comma-separated subset of: big,medium,small")
    parser.add_argument("--ranges", help="comma-separated subset of: 90d,1y")
    parser.add_argument("--no-extra", action="store_true", help="skip the Asia/Kathmandu and model-filter runs")
    parser.add_argument(
        "--scenarios", help="comma-separated parts of scenario labels to keep, e.g. 'Asia/Tokyo,api_key'"
    )
    parser.add_argument("--no-raw", action="store_true", help="engine only (no raw GROUP BY, no check)")
    parser.add_argument("--no-operator", action="store_true")
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--api-only", action="store_true", help="only the usage API (and its raw check)")
    parser.add_argument("--no-explain", dest="explain", action="store_false", help="no EXPLAIN ANALYZE of misses")
    parser.add_argument(
        "--cold", action="store_true", help="first a cold round of every default view (cold buffers and page cache)"
    )
    parser.add_argument("--cold-only", action="store_true", help="the cold round only")
    parser.add_argument("--cold-restart-pg", action="store_true", help="restart PostgreSQL instead of sweeping")
    parser.add_argument("--cold-restart", help="the command restarting PostgreSQL (default: pg_ctlcluster)")
    parser.add_argument("--cold-warm-runs", type=int, default=5, help="warm calls per view after the cold one")
    args = parser.parse_args()
    setup_django()

    from django.conf import settings
    from django.db import connection

    from bench.run_bench_lists import choose_accounts
    from console.models import Account

    settings.DEBUG = False  # no per-query logging in this process
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), max(timestamp) FROM logs_requestlog")
        total_rows, newest = cursor.fetchone()
        cursor.execute(
            "SELECT (SELECT count(*) FROM analytics_usagequarter), (SELECT count(*) FROM analytics_usageday), "
            "(SELECT count(*) FROM analytics_usageslice), (SELECT count(*) FROM analytics_usagesliceday)"
        )
        quarter_rows, day_rows, slice_rows, slice_day_rows = cursor.fetchone()
        accounts = choose_accounts(cursor)
    if not quarter_rows:
        sys.exit("the rollups are empty: run `manage.py rebuild_rollups --past-retention --days 400` first")
    if args.accounts:
        accounts = {k: v for k, v in accounts.items() if k in args.accounts.split(",")}
    ranges = {k: v for k, v in RANGES.items() if not args.ranges or k in args.ranges.split(",")}
    # The data stops at the generator's last full hour: "now" is just after the newest row.
    end = newest + timedelta(microseconds=1)
    print(
        f"{total_rows:,} rows, {quarter_rows:,} quarter rows, {slice_rows:,} slice rows, "
        f"{slice_day_rows:,} slice-day rows, {day_rows:,} day rows; "
        f"newest row {newest:%Y-%m-%d %H:%M:%S} UTC; accounts {accounts}; "
        f"{args.runs} engine runs / {args.raw_runs} raw runs per figure after a warm-up; "
        f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}\n"
    )

    scenarios = []
    for size, account_id in accounts.items():
        account = Account.objects.get(pk=account_id)
        for range_name, delta in ranges.items():
            scenarios.append(
                Scenario(f"{size} {range_name} {account.timezone}", size, account, range_name, end - delta, end,
                         account.zone)
            )  # fmt: skip
    if "big" in accounts and not args.no_extra:
        account = Account.objects.get(pk=accounts["big"])
        with connection.cursor() as cursor:
            cursor.execute(
                # Projection 0 (all dimensions): the others hold "" for a dimension they drop.
                "SELECT model FROM analytics_usageday WHERE account_id = %s AND projection = 0 "
                "GROUP BY 1 ORDER BY sum(requests) DESC LIMIT %s",
                [account.pk, max(PEAK_VALUES)],
            )
            busiest_models = [row[0] for row in cursor.fetchall()]
            top_models = busiest_models[:2]
            top_model = top_models[0]
            cursor.execute(
                "SELECT api_key FROM analytics_usageday WHERE account_id = %s AND projection = 0 "
                "GROUP BY 1 ORDER BY sum(requests) DESC LIMIT 1",
                [account.pk],
            )
            top_key = cursor.fetchone()[0]
        for range_name, delta in ranges.items():
            scenarios.append(
                Scenario(f"big {range_name} Asia/Kathmandu", "big", account, range_name, end - delta, end,
                         ZoneInfo("Asia/Kathmandu"))
            )  # fmt: skip
        for range_name, delta in ranges.items():
            scenarios.append(
                Scenario(f"big {range_name} model={top_model}", "big", account, range_name, end - delta, end,
                         account.zone, models=(top_model,))
            )  # fmt: skip
        for range_name, delta in ranges.items():
            scenarios.append(
                Scenario(f"big {range_name} api_key={top_key}", "big", account, range_name, end - delta, end,
                         account.zone, api_keys=(top_key,))
            )  # fmt: skip
            scenarios.append(
                Scenario(f"big {range_name} 2 models Asia/Kathmandu", "big", account, range_name, end - delta, end,
                         ZoneInfo("Asia/Kathmandu"), models=tuple(top_models))
            )  # fmt: skip
            # One value viewed in another zone on the whole hour: its days come from slices.
            scenarios.append(
                Scenario(f"big {range_name} model={top_model} Asia/Tokyo", "big", account, range_name, end - delta,
                         end, ZoneInfo("Asia/Tokyo"), models=(top_model,))
            )  # fmt: skip
    if args.scenarios:
        wanted = [part.strip() for part in args.scenarios.split(",") if part.strip()]
        scenarios = [s for s in scenarios if any(part in s.label for part in wanted)]

    result = {
        "started_at": started.isoformat(),
        "rows": total_rows,
        "rollup_rows": {"quarter": quarter_rows, "slice": slice_rows, "slice_day": slice_day_rows, "day": day_rows},
        "newest_row": newest.isoformat(),
        "accounts": accounts,
        "runs": args.runs,
        "raw_runs": args.raw_runs,
        "load_average_before": load_before,
        "targets_ms": {"chart_p95": CHART_P95_MS, "page_p95": PAGE_P95_MS, "operator_p95": OPERATOR_P95_MS},
        "scenarios": [
            {
                "label": s.label,
                "account_id": s.account.pk,
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "zone": s.zone.key,
                "models": list(s.models),
                "api_keys": list(s.api_keys),
            }
            for s in scenarios
        ],
        "charts": [],
        "pages": [],
        "operator": [],
        "peak_values": [],
        "api": None,
        "plans": [],
    }
    if args.cold or args.cold_only:
        from bench.cold_round import run_cold_round

        # First, before any warm call: the biggest account is the one an operator waits for.
        result["cold"] = run_cold_round(Account.objects.get(pk=accounts["big"]), args)
        if args.cold_only:
            _write(result, started)
            return
        print()
    print_header()
    for s in [] if args.api_only else scenarios:
        raw = RawRunner(args.raw_runs, args.raw_budget, args.no_raw)
        lines, pages, plans = run_scenario(s, args, raw)
        result["charts"] += lines
        result["pages"] += pages
        result["plans"] += plans
        print()
    if (
        "big" in accounts
        and not args.no_extra
        and not args.api_only
        and (not args.scenarios or "busiest" in args.scenarios)
    ):
        result["peak_values"] = run_peak_values(
            Account.objects.get(pk=accounts["big"]), busiest_models, ranges, end, args,
            RawRunner(args.raw_runs, args.raw_budget, args.no_raw),
        )  # fmt: skip
    if not args.no_operator and not args.api_only:
        lines, plans = run_operator(end, args, RawRunner(args.raw_runs, args.raw_budget, args.no_raw))
        result["operator"] = lines
        result["plans"] += plans
    if args.no_api:
        result["api_skipped"] = "--no-api"
    elif not api_available():
        result["api_skipped"] = "no /api/v1/usage route in this tree"
    else:
        print()
        result["api"] = run_api(scenarios, args, RawRunner(args.raw_runs, args.raw_budget, args.no_raw))
    result["load_average_after"] = os.getloadavg()
    result["finished_at"] = datetime.now(UTC).isoformat()
    print_summary(result)
    if result.get("cold"):
        failed = [line["view"] for line in result["cold"] if not line["pass"]]
        print(f"cold round: {len(result['cold']) - len(failed)} of {len(result['cold'])} views PASS" +
              (f"; FAIL: {', '.join(failed)}" if failed else ""))  # fmt: skip
    print(f"load average before {load_before[0]:.2f}, after {result['load_average_after'][0]:.2f}")
    _write(result, started)


def _write(result: dict, started: datetime) -> None:
    result.setdefault("load_average_after", os.getloadavg())
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"analytics-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=_json_default))
    print(f"\nresults: {path}" + (f" (with {len(result['plans'])} EXPLAIN plans)" if result["plans"] else ""))


def _json_default(value):
    if isinstance(value, Decimal | datetime | date):
        return str(value)
    return repr(value)


if __name__ == "__main__":
    main()
