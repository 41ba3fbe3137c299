"""Building one monthly report (alerts.reports) for the largest account of the bench
database, beside the same figures computed from raw rows, with a check that both agree.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/report_bench.py [--runs 10] [--raw-runs 2] [--model M] [--api-key K]

Read-only. The month is the last whole calendar month (in the account's zone) before the
newest row. Timed: build_report (every figure of the mail: days, previous period, by model,
by key, by error code, busiest hour, alerts), the mail rendered from it (subject, text, HTML,
CSV) and the PDF. Beside them, each figure as a plain GROUP BY over logs_requestlog (same
account, retention classes and range), its time and the comparison of requests, errors,
tokens and cost (to the cent). Target (issue 16): one monthly report under 1 s.
"""

import argparse
import sys
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django, stats, timed

TARGET_MS = 1000
CENT = Decimal("0.01")
MEASURES = "count(*), count(*) FILTER (WHERE status = 'error'), coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0)"


def _raw(runs, sql, params):
    from django.db import connection

    def once():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    times, rows = timed(once, runs, budget_s=60, min_runs=1)
    return stats(times), rows


def _same(engine: dict, raw: dict) -> list[str]:
    """Keys whose (requests, errors, tokens, cost to the cent) differ."""
    problems = []
    for key in sorted(set(engine) | set(raw), key=str):
        a, b = engine.get(key, (0, 0, 0, Decimal(0))), raw.get(key, (0, 0, 0, Decimal(0)))
        if a[:3] != b[:3] or Decimal(a[3]).quantize(CENT) != Decimal(b[3]).quantize(CENT):
            problems.append(f"{key}: engine {a} raw {b}")
    return problems


def _t(t) -> tuple:
    return (t.requests, t.errors, t.total_tokens, t.cost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed builds after a warm-up")
    parser.add_argument("--raw-runs", type=int, default=2, help="timed raw GROUP BYs per figure after a warm-up")
    parser.add_argument("--account", type=int, help="account id (default: the one with the most rows)")
    parser.add_argument("--model", default="", help="a report of this model only")
    parser.add_argument("--api-key", default="", help="a report of this API key only")
    args = parser.parse_args()
    setup_django()

    import os

    from django.conf import settings
    from django.db import connection

    from alerts.reports.builder import ReportScope, build_report
    from alerts.reports.email import render_report_email
    from alerts.reports.pdf import report_pdf
    from alerts.reports.periods import report_period
    from analytics.timekeys import previous_month
    from console.models import Account
    from logs.gate import retention_classes

    settings.DEBUG = False
    load = os.getloadavg()
    with connection.cursor() as cursor:
        if args.account:
            account_id = args.account
        else:
            cursor.execute("SELECT account_id, count(*) FROM logs_requestlog GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
            account_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*), min(timestamp), max(timestamp) FROM logs_requestlog WHERE account_id = %s", [account_id]
        )
        rows, oldest, newest = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM logs_requestlog")
        total_rows = cursor.fetchone()[0]
    account = Account.objects.get(pk=account_id)
    zone = account.zone
    first = previous_month(newest.astimezone(zone).date().replace(day=1))
    last = newest.astimezone(zone).date().replace(day=1) - timedelta(days=1)
    period = report_period(first, last, zone, "monthly")
    print(
        f"{total_rows:,} rows; account {account.slug} (id {account.pk}, {zone.key}): {rows:,} rows "
        f"{oldest:%Y-%m-%d} - {newest:%Y-%m-%d %H:%M} UTC; month {first} - {last} "
        f"(previous from {period.previous_start.astimezone(zone):%Y-%m-%d}); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    if oldest > period.previous_start:
        print("NOTE: the account's rows start after the previous month began: its figures are partial")
    scope = ReportScope(account, model=args.model, api_key=args.api_key)
    print(f"scope: {scope.label}")

    # The first build alone: its pages may not be in PostgreSQL's buffers yet.
    started = time.perf_counter()
    build_report(scope, period)
    first_ms = (time.perf_counter() - started) * 1000
    times, report = timed(lambda: build_report(scope, period), args.runs)
    build = stats(times)
    mail_times, _ = timed(lambda: render_report_email(report, frequency="monthly"), args.runs)
    pdf_times, pdf = timed(lambda: report_pdf(report), max(3, args.runs // 3))
    whole = [b + m for b, m in zip(times, mail_times, strict=False)]

    # --- the same figures from raw rows ---------------------------------------------------
    classes = retention_classes(account=account) or [0]
    where = "account_id = %s AND retention_days = ANY(%s::smallint[]) AND timestamp >= %s AND timestamp < %s"
    filters, filter_params = "", []
    for column, value in (("model", args.model), ("api_key", args.api_key)):
        if value:
            filters += f" AND {column} = %s"
            filter_params.append(value)
    where += filters
    base = [account.pk, classes, period.start, period.end, *filter_params]
    lines = []

    def figure(name, sql, params, engine: dict, convert):
        timing, raw_rows = _raw(args.raw_runs, sql, params)
        raw = {}
        for row in raw_rows:
            key, values = convert(row)
            raw[key] = values
        problems = _same(engine, raw)
        lines.append((name, timing, len(raw), problems))

    day_sql = "((timestamp AT TIME ZONE %s)::date)::text"
    figure(
        "total of the month",
        f"SELECT {MEASURES} FROM logs_requestlog WHERE {where}",
        base,
        {"": _t(report.total)},
        lambda r: ("", (r[0], r[1], r[2], r[3])),
    )
    figure(
        "total of the previous month",
        f"SELECT {MEASURES} FROM logs_requestlog WHERE {where}",
        [account.pk, classes, period.previous_start, period.previous_end, *filter_params],
        {"": _t(report.previous)},
        lambda r: ("", (r[0], r[1], r[2], r[3])),
    )
    figure(
        "by day (the CSV)",
        f"SELECT {day_sql}, {MEASURES} FROM logs_requestlog WHERE {where} GROUP BY 1",
        [zone.key, *base],
        {b.start.astimezone(zone).date().isoformat(): _t(b.total) for b in report.days if b.total.requests},
        lambda r: (r[0], tuple(r[1:])),
    )
    figure(
        "cost by model",
        f"SELECT model, {MEASURES} FROM logs_requestlog WHERE {where} GROUP BY 1",
        base,
        {model: _t(t) for model, t in report.by_model},
        lambda r: (r[0] or "(none)", tuple(r[1:])),
    )
    engine_keys = {key: _t(t) for key, _name, t in report.top_keys}
    figure(
        "top API keys",
        f"SELECT api_key, {MEASURES} FROM logs_requestlog WHERE {where} GROUP BY 1 ORDER BY 5 DESC, 2 DESC LIMIT %s",
        [*base, len(report.top_keys)],
        engine_keys,
        lambda r: (r[0] or "(none)", tuple(r[1:])),
    )
    codes = defaultdict(int, report.errors_by_code)
    figure(
        "errors by code",
        f"SELECT coalesce(nullif(error_code, ''), '(none)'), count(*), count(*), 0, 0 FROM logs_requestlog "
        f"WHERE {where} AND status = 'error' GROUP BY 1",
        base,
        {code: (n, n, 0, Decimal(0)) for code, n in codes.items()},
        lambda r: (r[0], (r[1], r[2], r[3], Decimal(r[4]))),
    )
    peak = report.peak_hour
    figure(
        "busiest hour",
        f"SELECT date_trunc('hour', timestamp AT TIME ZONE %s)::text, count(*), 0, 0, 0 FROM logs_requestlog "
        f"WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
        [zone.key, *base],
        # Compared by its count: two hours may tie, and each side names the first it found.
        {"": (peak.total.requests, 0, 0, Decimal(0))} if peak else {},
        lambda r: ("", (r[1], r[2], r[3], Decimal(r[4]))),
    )

    print(f"\n{'figure':<32}{'raw med ms':>12}{'keys':>7}  check")
    raw_sum = 0.0
    for name, timing, keys, problems in lines:
        raw_sum += timing["median_ms"] or 0
        check = "ok" if not problems else f"!!! MISMATCH {len(problems)}: {problems[:2]}"
        print(f"{name:<32}{timing['median_ms']:>12.1f}{keys:>7}  {check}")
    print(f"{'= sum of the raw figures':<32}{raw_sum:>12.1f}")
    print(
        f"\nbuild_report (engine)          median {build['median_ms']:.1f} ms, p95 {build['p95_ms']:.1f} ms "
        f"({build['n']} runs after a first build of {first_ms:.1f} ms); raw/engine {raw_sum / build['median_ms']:.0f}x"
    )
    mail = stats(mail_times)
    print(f"mail rendered (subject, text, HTML, CSV) median {mail['median_ms']:.1f} ms")
    whole_stats = stats(whole)
    verdict = "PASS" if whole_stats["p95_ms"] <= TARGET_MS else "FAIL"
    print(
        f"one monthly report (build + mail) median {whole_stats['median_ms']:.1f} ms, "
        f"p95 {whole_stats['p95_ms']:.1f} ms (target < {TARGET_MS} ms) {verdict}"
    )
    pdf_stats = stats(pdf_times)
    print(f"PDF of it ({len(pdf):,} bytes) median {pdf_stats['median_ms']:.1f} ms")
    bad = [name for name, _t_, _k, problems in lines if problems]
    print(f"engine vs raw rows: {len(lines) - len(bad)}/{len(lines)} figures agree")


if __name__ == "__main__":
    main()
