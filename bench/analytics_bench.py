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

Prints a table with PASS/FAIL against issue 3's targets and writes
bench/results/analytics-<timestamp>.json (with EXPLAIN ANALYZE of every miss).
"""

import argparse
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, median, setup_django, timed
from bench.common import stats as common_stats

CHART_P95_MS = 50.0
PAGE_P95_MS = 300.0
OPERATOR_P95_MS = 1500.0
RANGES = {"90d": timedelta(days=90), "1y": timedelta(days=365)}
CENT = Decimal("0.01")
# Compared between engine and raw rows, in this order.
COMPARED = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "unpriced")
RAW_MEASURES = (
    "count(*), count(*) FILTER (WHERE status = 'error'), coalesce(sum(prompt_tokens), 0), "
    "coalesce(sum(completion_tokens), 0), coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0), "
    "count(*) FILTER (WHERE cost IS NULL)"
)
TABS = ("cost", "trend", "peak", "errors")
PEAK_VALUES = (2, 3, 8)  # the busiest minute of the N busiest models (run_peak_values)


# --- timing -------------------------------------------------------------------------------------


def stats(times: list[float], timeouts: list[float] = ()) -> dict:
    out = common_stats(times, timeouts)
    if timeouts:
        out["error"] = f"QueryTimeout in {len(timeouts)} of {len(times) + len(timeouts)} calls (warm-up included)"
    return out


def measure_engine(fn, runs: int, budget_s: float) -> tuple[dict, object]:
    """Stats of the engine calls; a call that raises QueryTimeout is counted (the figure
    fails) and the other calls are kept. The result is the warm-up's (None if it timed out:
    then nothing is compared with raw rows)."""
    timeouts: list[float] = []
    times, result = timed(fn, runs, budget_s, min_runs=5, timeouts=timeouts)
    return stats(times, timeouts), result


def passed(timing: dict, target: float) -> bool:
    """No call timed out and the p95 of the others is within the target."""
    return not timing.get("timeouts") and timing["p95_ms"] is not None and timing["p95_ms"] <= target


def p95_text(timing: dict) -> str:
    return f"p95 {timing['p95_ms']} ms" if timing.get("p95_ms") is not None else "no p95 (every call timed out)"


def worst_p95(timings: list[dict]) -> str:
    """The worst p95 of the figures that answered, and how many timed out (never a stand-in
    number for a timeout)."""
    p95s = [t["p95_ms"] for t in timings if t.get("p95_ms") is not None]
    text = f"worst p95 {max(p95s):.1f} ms" if p95s else "no p95"
    timed_out = sum(1 for t in timings if t.get("timeouts"))
    if timed_out:
        text += f"; {timed_out} figure(s) with a QueryTimeout"
    return text


def plans_of(fn) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT `fn` sends, and PostgreSQL's own planning +
    execution time summed over them."""
    from django.db import connection

    from bench.run_bench_plans import captured_selects
    from logs.selectors import QueryTimeout

    texts, planning, execution = [], 0.0, 0.0
    try:
        statements = captured_selects(fn)
    except QueryTimeout:
        return {"planning_ms": 0.0, "execution_ms": 0.0, "plan": "QueryTimeout while capturing the statements"}
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
            for line in lines:
                if line.startswith("Planning Time:"):
                    planning += float(line.split()[2])
                elif line.startswith("Execution Time:"):
                    execution += float(line.split()[2])
            texts.append(f"{sql}\n-- params: {params!r}")
            texts.append("\n".join(lines))
    return {"planning_ms": round(planning, 2), "execution_ms": round(execution, 2), "plan": "\n".join(texts)}


# --- raw rows -----------------------------------------------------------------------------------


class RawRunner:
    """Plain SQL over logs_requestlog; identical statements in one scenario run once."""

    def __init__(self, runs: int, budget_s: float, skip: bool):
        self.runs, self.budget_s, self.skip = runs, budget_s, skip
        self.cache: dict = {}

    def run(self, sql: str, params: list) -> tuple[dict | None, list | None, bool]:
        """(timing stats, rows, reused?)"""
        if self.skip:
            return None, None, False
        key = (sql, repr(params))
        if key in self.cache:
            timing, rows = self.cache[key]
            return timing, rows, True
        from django.db import connection

        def once():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        times, rows = timed(once, self.runs, self.budget_s, min_runs=1)
        timing = stats(times)
        self.cache[key] = (timing, rows)
        return timing, rows, False


def raw_where(account, start, end, models=(), statuses=(), api_keys=()) -> tuple[str, list]:
    """The rows the engine reads: the account's retention classes (as logs.gate.request_logs
    filters them), the range and the filters."""
    from logs.gate import retention_classes

    where, params = ["timestamp >= %s", "timestamp < %s"], [start, end]
    if account is not None and account.pk is not None:  # all_accounts() has no pk: every row
        where[:0] = ["account_id = %s", "retention_days = ANY(%s::smallint[])"]
        params[:0] = [account.pk, retention_classes(account=account) or [0]]
    if models:
        where.append("model = ANY(%s)")
        params.append(list(models))
    if statuses:
        where.append("status = ANY(%s)")
        params.append(list(statuses))
    if api_keys:
        where.append("api_key = ANY(%s)")
        params.append(list(api_keys))
    return " AND ".join(where), params


def raw_usage_sql(q) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    key_params = []
    if q.bucket is None:
        key = "''"
    elif q.bucket == "day":
        key, key_params = "((timestamp AT TIME ZONE %s)::date)::text", [q.zone.key]
    elif q.bucket == "week":
        key, key_params = "(date_trunc('week', timestamp AT TIME ZONE %s)::date)::text", [q.zone.key]
    else:
        raise ValueError(q.bucket)
    groups = ["account_id::text" if g == "account" else g for g in q.group_by]
    select = ", ".join([key, *groups, RAW_MEASURES])
    group_by = ", ".join(str(i + 1) for i in range(1 + len(groups)))
    return f"SELECT {select} FROM logs_requestlog WHERE {where} GROUP BY {group_by}", [*key_params, *params]


def raw_usage_norm(rows, n_groups: int) -> dict:
    out = {}
    for row in rows:
        key = tuple("" if v is None else str(v) for v in row[: 1 + n_groups])
        out[key] = tuple(row[1 + n_groups :])
    return out


def raw_heatmap_sql(q) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    return (
        "SELECT extract(isodow FROM timestamp AT TIME ZONE %s)::int - 1, "
        "extract(hour FROM timestamp AT TIME ZONE %s)::int, count(*) "
        f"FROM logs_requestlog WHERE {where} GROUP BY 1, 2",
        [q.zone.key, q.zone.key, *params],
    )


def raw_peak_sql(q) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    return (
        "SELECT coalesce(max(n), 0), coalesce(max(t), 0) FROM (SELECT count(*) AS n, sum(total_tokens) AS t "
        f"FROM logs_requestlog WHERE {where} GROUP BY date_trunc('minute', timestamp)) AS minutes",
        params,
    )


def raw_top_sql(q, n: int) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    return (
        f"SELECT id, cost FROM logs_requestlog WHERE {where} AND cost IS NOT NULL "
        f"ORDER BY cost DESC, timestamp DESC LIMIT {int(n)}",
        params,
    )


# --- engine results in the same shape -----------------------------------------------------------


def engine_usage_norm(buckets, q) -> tuple[dict, list]:
    out, duplicates = {}, []
    for bucket in buckets:
        label = bucket.start.astimezone(q.zone).date().isoformat() if q.bucket else ""
        for group, t in bucket.groups.items():
            key = (label, *("" if g is None else str(g) for g in group))
            values = tuple(getattr(t, name) for name in COMPARED)
            if key in out:  # e.g. NULL and '' as two groups
                duplicates.append(key)
                values = tuple(a + b for a, b in zip(out[key], values, strict=True))
            out[key] = values
    return out, duplicates


def compare(engine: dict, raw: dict) -> dict:
    """Every key of both, each value equal (Decimals to the cent; exactness noted)."""
    problems, exact = [], True
    for key in sorted(set(engine) | set(raw), key=str):
        e, r = engine.get(key), raw.get(key)
        if e is None or r is None:
            problems.append({"key": key, "engine": e, "raw": r})
            continue
        for a, b in zip(e, r, strict=True):
            if isinstance(a, Decimal) or isinstance(b, Decimal):
                a, b = Decimal(a), Decimal(b)
                if a != b:
                    exact = False
                if a.quantize(CENT) != b.quantize(CENT):
                    problems.append({"key": key, "engine": e, "raw": r})
                    break
            elif a != b:
                problems.append({"key": key, "engine": e, "raw": r})
                break
    return {
        "ok": not problems,
        "keys": len(set(engine) | set(raw)),
        "exact_cost": exact,
        "problems": [{k: str(v) for k, v in p.items()} for p in problems[:10]],
        "n_problems": len(problems),
    }


# --- scenarios ----------------------------------------------------------------------------------


@dataclass
class Scenario:
    label: str
    size: str
    account: object
    range_name: str
    start: datetime
    end: datetime
    zone: ZoneInfo
    models: tuple = ()
    api_keys: tuple = ()

    def query(self, previous=False, **kwargs):
        from analytics.usage import UsageQuery

        start, end = self.start, self.end
        if previous:
            start, end = start - (end - start), start
        # As analytics/reports.py asks: the pages read no bucket's maxima (sums_only).
        return UsageQuery(
            account=self.account, start=start, end=end, zone=self.zone, models=self.models, api_keys=self.api_keys,
            sums_only=True, **kwargs,
        )  # fmt: skip


def charts(s: Scenario) -> list[dict]:
    """The analytics page's chart queries: (name, tab, engine call, raw SQL, how to compare)."""
    from analytics.usage import heatmap, peak_minute, top_requests, totals, usage

    trend = "day" if s.range_name == "90d" else "week"
    out = []

    def add_usage(name, tab, q, use_totals=False):
        fn = (lambda q=q: totals(q)) if use_totals else (lambda q=q: usage(q))
        sql, params = raw_usage_sql(q)
        n_groups = len(q.group_by)

        def check(result, rows, q=q, use_totals=use_totals):
            if use_totals:
                engine = {("",): tuple(getattr(result, n) for n in COMPARED)} if result.requests else {}
                duplicates = []
            else:
                engine, duplicates = engine_usage_norm(result, q)
            out = compare(engine, raw_usage_norm(rows, n_groups))
            if duplicates:
                out["ok"] = False
                out["problems"].insert(0, {"duplicate_groups": str(duplicates[:5])})
            return out

        out.append({"name": name, "tab": tab, "engine": fn, "raw_sql": (sql, params), "check": check})

    add_usage("cost total", "cost", s.query(), use_totals=True)
    add_usage("cost total, previous period", "cost", s.query(previous=True), use_totals=True)
    add_usage("cost by day", "cost", s.query(bucket="day"))
    add_usage("cost by model", "cost", s.query(group_by=("model",)))
    add_usage("cost by API key", "cost", s.query(group_by=("api_key",)))

    q = s.query()

    def check_top(result, rows):
        engine = {(str(i),): (r["cost"],) for i, r in enumerate(result)}
        raw = {(str(i),): (cost,) for i, (_id, cost) in enumerate(rows)}
        out = compare(engine, raw)
        same_ids = [r["id"] for r in result] == [row[0] for row in rows]
        out["same_ids"] = same_ids  # equal costs may tie: ids are reported, costs decide
        return out

    out.append(
        {
            "name": "top 10 requests",
            "tab": "cost",
            "engine": lambda q=q: top_requests(q, n=10),
            "raw_sql": raw_top_sql(q, 10),
            "check": check_top,
        }
    )
    add_usage(f"usage trend by {trend}", "trend", s.query(bucket=trend))
    add_usage(f"usage trend by {trend}, previous", "trend", s.query(previous=True, bucket=trend))

    def check_heatmap(result, rows):
        engine = {(f"{d}-{h}",): (n,) for d, row in enumerate(result) for h, n in enumerate(row) if n}
        raw = {(f"{d}-{h}",): (n,) for d, h, n in rows}
        return compare(engine, raw)

    out.append(
        {"name": "heatmap", "tab": "peak", "engine": lambda q=q: heatmap(q), "raw_sql": raw_heatmap_sql(q),
         "check": check_heatmap}
    )  # fmt: skip

    out.append(
        {"name": "peak minute", "tab": "peak", "engine": lambda q=q: peak_minute(q), "raw_sql": raw_peak_sql(q),
         "check": check_peak}
    )  # fmt: skip
    add_usage("error rate by day", "errors", s.query(bucket="day"))
    add_usage("errors by error code", "errors", s.query(statuses=("error",), group_by=("error_code",)))
    add_usage("errors by model", "errors", s.query(statuses=("error",), group_by=("model",)))
    return out


def check_peak(result, rows) -> dict:
    return compare({("",): tuple(result)}, {("",): tuple(rows[0])})


def beside_raw(line: dict, raw: RawRunner, raw_sql: tuple[str, list], result, check) -> None:
    """The same figure from raw rows in the same run: its timing and, when the engine
    answered, check(result, rows) (the comparison)."""
    raw_timing, rows, reused = raw.run(*raw_sql)
    if raw_timing is not None:
        line["raw"] = dict(raw_timing, reused=reused)
        if result is not None:
            line["check"] = check(result, rows)


def run_scenario(s: Scenario, args, raw: RawRunner) -> tuple[list[dict], list[dict], list[dict]]:
    lines, pages, plans = [], [], []
    items = charts(s)
    for item in items:
        timing, result = measure_engine(item["engine"], args.runs, args.budget)
        line = {"scenario": s.label, "chart": item["name"], "tab": item["tab"], "engine": timing}
        beside_raw(line, raw, item["raw_sql"], result, item["check"])
        missed = not passed(timing, CHART_P95_MS)
        line["pass"] = not missed
        if missed and args.explain and timing["p95_ms"] is not None and not timing.get("timeouts"):
            explained = plans_of(item["engine"])
            line["db_ms"] = {k: explained[k] for k in ("planning_ms", "execution_ms")}
            plans.append({"what": f"{s.label} / {item['name']}", **explained})
        lines.append(line)
        print_line(line)
    for tab in TABS:
        fns = [item["engine"] for item in items if item["tab"] == tab]

        def whole(fns=fns):
            for fn in fns:
                fn()

        timing, _ = measure_engine(whole, args.runs, args.budget)
        tab_lines = [line for line in lines if line["tab"] == tab]
        raw_sum = None
        if all("raw" in line for line in tab_lines):
            raw_sum = round(sum(line["raw"]["median_ms"] for line in tab_lines), 1)
        page = {
            "scenario": s.label,
            "tab": tab,
            "charts": len(fns),
            "engine": timing,
            "raw_sum_median_ms": raw_sum,
            "pass": passed(timing, PAGE_P95_MS),
        }
        pages.append(page)
        print_page(page)
    pages += run_reports(s, args)
    return lines, pages, plans


def run_reports(s: Scenario, args) -> list[dict]:
    """The page's own report functions (analytics/reports.py), when they exist: what a tab
    really runs (its queries differ a little from the chart list above)."""
    try:
        from analytics.reports import REPORTS, Filters, resolve_period
    except ImportError:
        return []
    now = s.end
    if s.range_name == "90d":
        period = resolve_period(range_name="90d", start=None, end=None, zone=s.zone, now=now)
    else:
        last = now.astimezone(s.zone).date()
        period = resolve_period(range_name="custom", start=last - timedelta(days=364), end=last, zone=s.zone, now=now)
    filters = Filters(models=s.models, api_keys=s.api_keys)
    pages = []
    for tab, report in REPORTS.items():
        timing, _ = measure_engine(
            lambda report=report: report(account=s.account, period=period, filters=filters), args.runs, args.budget
        )
        page = {
            "scenario": s.label,
            "tab": f"{tab} (reports.py, {period.bucket})",
            "charts": "-",
            "engine": timing,
            "raw_sum_median_ms": None,
            "pass": passed(timing, PAGE_P95_MS),
            "reports_py": True,
        }
        pages.append(page)
        print_page(page)
    return pages


# --- operator and API ---------------------------------------------------------------------------


def run_operator(end: datetime, args, raw: RawRunner) -> tuple[list[dict], list[dict]]:
    from analytics.usage import UsageQuery, usage
    from logs.gate import all_accounts

    lines, plans = [], []
    for range_name, delta in RANGES.items():
        q = UsageQuery(account=all_accounts(), start=end - delta, end=end, zone=ZoneInfo("UTC"), group_by=("account",))
        timing, result = measure_engine(lambda q=q: usage(q), args.runs, max(args.budget, 30.0))
        line = {"scenario": f"all accounts {range_name} UTC", "chart": "usage by account", "tab": "operator",
                "engine": timing}  # fmt: skip

        def check(result, rows, q=q):
            engine, duplicates = engine_usage_norm(result, q)
            return dict(compare(engine, raw_usage_norm(rows, 1)), **({"ok": False} if duplicates else {}))

        beside_raw(line, raw, raw_usage_sql(q), result, check)
        line["pass"] = passed(timing, OPERATOR_P95_MS)
        if not line["pass"] and args.explain and timing["p95_ms"] is not None and not timing.get("timeouts"):
            explained = plans_of(lambda q=q: usage(q))
            line["db_ms"] = {k: explained[k] for k in ("planning_ms", "execution_ms")}
            plans.append({"what": f"{line['scenario']} / usage by account", **explained})
        lines.append(line)
        print_line(line, target=OPERATOR_P95_MS)
    return lines, plans


def run_peak_values(account, models: list[str], ranges: dict, end: datetime, args, raw: RawRunner) -> list[dict]:
    """The busiest minute (peak tab) of the account's N busiest models at once, beyond the
    page scenarios: the sums of several values' peaks that bound it grow loose with N."""
    from analytics.usage import UsageQuery, peak_minute

    print()
    lines = []
    for n in PEAK_VALUES:
        for range_name, delta in ranges.items():
            q = UsageQuery(account=account, start=end - delta, end=end, zone=account.zone, models=tuple(models[:n]))
            timing, result = measure_engine(lambda q=q: peak_minute(q), args.runs, args.budget)
            line = {"scenario": f"big {range_name} {n} busiest models", "chart": "peak minute", "tab": "peak",
                    "engine": timing}  # fmt: skip
            beside_raw(line, raw, raw_peak_sql(q), result, check_peak)
            line["pass"] = passed(timing, CHART_P95_MS)
            lines.append(line)
            print_line(line)
    return lines


def api_available() -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/v1/usage")
    except Resolver404:
        return False
    return True


def run_api(scenarios: list[Scenario], args, raw: RawRunner) -> list[dict]:
    """GET /api/v1/usage through django.test.Client with a read token, grouped by model."""
    from django.conf import settings
    from django.test import Client

    from analytics.usage import UsageQuery, bucket_date
    from console.models import TokenScope
    from console.services import token_create, token_revoke
    from logs.selectors import QueryTimeout

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    lines = []
    for s in scenarios:
        if s.models or s.api_keys or s.zone.key != s.account.timezone:
            continue
        token, secret = token_create(account=s.account, scope=TokenScope.READ, name="analytics bench")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        bucket = "day" if s.range_name == "90d" else "week"
        params = {"start": s.start.isoformat(), "end": s.end.isoformat(), "bucket": bucket, "group_by": "model"}
        try:

            def get(params=params, client=client):
                response = client.get("/api/v1/usage", params)
                if response.status_code == 422 and b"too long" in response.content:
                    raise QueryTimeout(response.content.decode()[:200])  # counted, the other calls kept
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.content[:300]!r}")
                return response.json()

            try:
                timing, body = measure_engine(get, args.runs, args.budget)
            except RuntimeError as exc:
                timing, body = {"median_ms": None, "p95_ms": None, "n": 0, "error": str(exc)}, None
        finally:
            token_revoke(account=s.account, token_id=token.pk)
        line = {"scenario": s.label, "chart": f"GET /api/v1/usage {bucket} x model", "tab": "api", "engine": timing}
        q = UsageQuery(account=s.account, start=s.start, end=s.end, zone=s.zone, bucket=bucket, group_by=("model",))
        raw_timing, rows, reused = raw.run(*raw_usage_sql(q))
        if raw_timing is not None:
            line["raw"] = dict(raw_timing, reused=reused)
            if body is not None:
                engine = {}
                for bucket_row in body["buckets"]:
                    # The API clips the first and last bucket to the range: label by the bucket holding its start.
                    first_day = datetime.fromisoformat(bucket_row["start"]).astimezone(s.zone).date()
                    label = bucket_date(first_day, bucket).isoformat()
                    for r in bucket_row["results"]:
                        engine[(label, str(r.get("model") or ""))] = (
                            r["requests"], r["errors"], r["prompt_tokens"], r["completion_tokens"],
                            r["total_tokens"], Decimal(r["cost"]), r.get("unpriced_requests", 0),
                        )  # fmt: skip
                line["check"] = compare(engine, raw_usage_norm(rows, 1))
        line["pass"] = passed(timing, CHART_P95_MS)
        lines.append(line)
        print_line(line)
    return lines


# --- printing -----------------------------------------------------------------------------------


def _ms(value) -> str:
    return f"{value:9.1f}" if isinstance(value, int | float) else f"{'-':>9}"


def print_header() -> None:
    print(
        f"{'scenario':<30}{'chart query':<34}{'med ms':>9}{'p95 ms':>9} {'target':>7} {'':4} "
        f"{'raw med':>9} {'raw/eng':>8}  check"
    )


def check_text(line: dict) -> str:
    check = line.get("check")
    if check is None:
        return "-" if "raw" not in line else "no result"
    if not check["ok"]:
        return f"MISMATCH ({check['n_problems']} of {check['keys']}: {check['problems'][:2]})"
    text = f"ok ({check['keys']} keys" + ("" if check["exact_cost"] else ", cost equal to the cent only")
    if check.get("same_ids") is False:
        text += ", other ids at equal cost"
    return text + ")"


def print_line(line: dict, target: float = CHART_P95_MS) -> None:
    e, r = line["engine"], line.get("raw", {})
    ratio = ""
    if r.get("median_ms") and e.get("median_ms"):
        ratio = f"{r['median_ms'] / e['median_ms']:7.0f}x"
    result = "PASS" if line["pass"] else "FAIL"
    reused = "*" if r.get("reused") else " "
    error = f"  {e['error']}" if "error" in e else ""
    db = f"  (db {line['db_ms']['planning_ms']:.1f}+{line['db_ms']['execution_ms']:.1f} ms)" if "db_ms" in line else ""
    check = check_text(line)
    if check.startswith("MISMATCH"):
        check = "!!! " + check + " !!!"
    print(
        f"{line['scenario']:<30}{line['chart']:<34}{_ms(e.get('median_ms'))}{_ms(e.get('p95_ms'))} "
        f"{target:>7.0f} {result:4} {_ms(r.get('median_ms'))}{reused}{ratio:>8}  {check}{error}{db}",
        flush=True,
    )


def print_page(page: dict) -> None:
    e = page["engine"]
    ratio = ""
    if page["raw_sum_median_ms"] and e.get("median_ms"):
        ratio = f"{page['raw_sum_median_ms'] / e['median_ms']:7.0f}x"
    result = "PASS" if page["pass"] else "FAIL"
    print(
        f"{page['scenario']:<30}{_page_name(page):<34}"
        f"{_ms(e.get('median_ms'))}{_ms(e.get('p95_ms'))} {PAGE_P95_MS:>7.0f} {result:4} "
        f"{_ms(page['raw_sum_median_ms'])} {ratio:>8}" + (f"  {e['error']}" if "error" in e else ""),
        flush=True,
    )


def _page_name(page: dict) -> str:
    if page.get("reports_py"):
        return f"= page {page['tab']}"
    return f"= {page['tab']} tab, sum of {page['charts']}"


def print_summary(result: dict) -> None:
    lines = result["charts"]
    pages = result["pages"]
    print("\n" + "=" * 110)
    print("SUMMARY")
    chart_fail = [line for line in lines if not line["pass"]]
    print(
        f"chart queries: {len(lines) - len(chart_fail)}/{len(lines)} within p95 <= {CHART_P95_MS:.0f} ms; "
        f"{worst_p95([line['engine'] for line in lines])}"
    )
    for line in chart_fail:
        e = line["engine"]
        print(f"  FAIL {line['scenario']} / {line['chart']}: {p95_text(e)} {e.get('error', '')}")
    page_fail = [p for p in pages if not p["pass"]]
    print(
        f"whole tabs: {len(pages) - len(page_fail)}/{len(pages)} within p95 <= {PAGE_P95_MS:.0f} ms; "
        f"{worst_p95([p['engine'] for p in pages])}"
    )
    for p in page_fail:
        print(f"  FAIL {p['scenario']} / {p['tab']} tab: {p95_text(p['engine'])} {p['engine'].get('error', '')}")
    for line in result["operator"]:
        print(
            f"operator {line['scenario']}: {p95_text(line['engine'])} (<= {OPERATOR_P95_MS:.0f}) "
            f"{'PASS' if line['pass'] else 'FAIL'}; raw {line.get('raw', {}).get('median_ms')} ms "
            f"{line['engine'].get('error', '')}"
        )
    for line in result["peak_values"]:
        print(
            f"busiest minute, {line['scenario']}: {p95_text(line['engine'])} "
            f"{'PASS' if line['pass'] else 'FAIL'}; raw {line.get('raw', {}).get('median_ms')} ms "
            f"{line['engine'].get('error', '')}"
        )
    if result["api"] is None:
        print(f"usage API: skipped ({result.get('api_skipped', 'not run')})")
    for line in result["api"] or []:
        print(
            f"usage API {line['scenario']}: {p95_text(line['engine'])} {'PASS' if line['pass'] else 'FAIL'} "
            f"{line['engine'].get('error', '')}"
        )
    checked = [
        line
        for line in [*lines, *result["operator"], *result["peak_values"], *(result["api"] or [])]
        if "check" in line
    ]
    bad = [line for line in checked if not line["check"]["ok"]]
    print(f"engine vs raw rows: {len(checked) - len(bad)}/{len(checked)} agree")
    for line in bad:
        print(f"  !!! MISMATCH {line['scenario']} / {line['chart']}: {line['check']['problems'][:3]}")
    ratios = [
        line["raw"]["median_ms"] / line["engine"]["median_ms"]
        for line in lines
        if line.get("raw", {}).get("median_ms") and line["engine"].get("median_ms") and not line["raw"]["reused"]
    ]
    if ratios:
        print(
            f"raw / engine median ratio: min {min(ratios):.1f}x, median {median(ratios):.0f}x, max {max(ratios):.0f}x"
        )


# --- main ---------------------------------------------------------------------------------------


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
    print(f"load average before {load_before[0]:.2f}, after {result['load_average_after'][0]:.2f}")
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
