"""analytics_bench.py's cases: the scenarios (account x range x zone x filters), the analytics
page's chart queries and whole tabs, analytics/reports.py's tabs, the operator's all-accounts
view, the busiest minute of several models and GET /api/v1/usage, each beside raw rows."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bench.analytics_raw import (
    COMPARED,
    RawRunner,
    compare,
    engine_usage_norm,
    raw_heatmap_sql,
    raw_peak_sql,
    raw_top_sql,
    raw_usage_norm,
    raw_usage_sql,
)
from bench.analytics_report import print_line, print_page
from bench.analytics_timing import CHART_P95_MS, OPERATOR_P95_MS, PAGE_P95_MS, measure_engine, passed, plans_of

RANGES = {"90d": timedelta(days=90), "1y": timedelta(days=365)}
TABS = ("cost", "trend", "peak", "errors")
PEAK_VALUES = (2, 3, 8)  # the busiest minute of the N busiest models (run_peak_values)


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
        from analytics.reports import REPORTS, resolve_period
        from analytics.usage import UsageFilters
    except ImportError:
        return []
    now = s.end
    if s.range_name == "90d":
        period = resolve_period(range_name="90d", start=None, end=None, zone=s.zone, now=now)
    else:
        last = now.astimezone(s.zone).date()
        period = resolve_period(range_name="custom", start=last - timedelta(days=364), end=last, zone=s.zone, now=now)
    filters = UsageFilters(models=s.models, api_keys=s.api_keys)
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
