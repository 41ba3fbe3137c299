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
import contextlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, setup_django, stats
from bench.common import timed as common_timed

LIST_P95_MS = 50.0
TOTALS_P95_MS = 200.0
SEARCH_P95_MS = 1000.0
INGEST_RATIO = 0.25
PAGE_LIMIT = 50
DEEP = 1_000_000
RANGES = {"24h": timedelta(hours=24), "30d": timedelta(days=30), "1y": timedelta(days=365)}
FILTERS = [
    "none",
    "model",
    "status=error",
    "api_key",
    "error_code",
    "request_id",
    "model+status",
    "api_key+model",
    "model+api_key+status",
    "api_key+status",
    "model(2)",
    "api_key(3)",
]


def choose_accounts(cursor) -> dict[str, int]:
    """The largest account, one near 1% of the rows and one near 0.05% (both keeping
    more than 30 days, so the 1-year range differs from the 30-day one)."""
    cursor.execute("SELECT account_id, retention_days, count(*) FROM logs_requestlog GROUP BY 1, 2 ORDER BY 3 DESC")
    sizes = cursor.fetchall()
    total = sum(n for _, _, n in sizes)
    longer = [row for row in sizes if row[1] > 30]

    def nearest(share):
        return min(longer, key=lambda row: abs(row[2] - share * total))[0]

    return {"big": sizes[0][0], "medium": nearest(0.01), "small": nearest(0.0005)}


def pick_values(cursor, account_id: int) -> dict:
    """Realistic filter values for one account: its second busiest API key, a mid-popular
    model, an error code, a request id, an IP and a search string."""

    def top(column, extra="", offset=0):
        cursor.execute(
            f"SELECT {column} FROM logs_requestlog WHERE account_id = %s {extra} "
            f"GROUP BY 1 ORDER BY count(*) DESC OFFSET %s LIMIT 1",
            [account_id, offset],
        )
        row = cursor.fetchone()
        return row[0] if row else None

    cursor.execute(
        "SELECT request_id FROM logs_requestlog WHERE account_id = %s "
        "AND timestamp > now() - interval '20 hours' ORDER BY timestamp DESC LIMIT 1 OFFSET 7",
        [account_id],
    )
    row = cursor.fetchone()
    if row is None:
        cursor.execute("SELECT request_id FROM logs_requestlog WHERE account_id = %s LIMIT 1", [account_id])
        row = cursor.fetchone()
    keys = [k for k in (top("api_key", offset=i) for i in range(4)) if k is not None]
    return {
        "model": "claude-sonnet-4-20250514",
        "model(2)": ["claude-sonnet-4-20250514", "gpt-4o"],
        "api_key": keys[1] if len(keys) > 1 else keys[0],
        "api_key(3)": keys[1:4] or keys,
        "error_code": "context_length_exceeded",
        "request_id": row[0],
        "ip": str(top("ip_address")),
        "q_id": row[0][9:17],  # a piece of a request id
        "q_text": "maximum context length",
    }


def filter_params(name: str, values: dict) -> dict:
    params = {}
    for part in name.split("+"):
        if part.startswith("status"):
            params["status"] = "error"
        elif part != "none":
            params[part.split("(")[0]] = values[part]  # "model(2)": ?model=a&model=b
    return params


def timed(fn, runs: int, budget_s: float | None = None) -> dict:
    """Stats of `runs` calls after one warm-up call; with a budget, stop early (at least 3
    runs) once the calls have used it. A call that raises QueryTimeout is counted in the
    figure's `timeouts` (the figure fails) and the run goes on."""
    timeouts: list[float] = []
    times = common_timed(fn, runs, budget_s, min_runs=3, timeouts=timeouts)[0]
    return stats(times, timeouts)


def within(s: dict, target: float) -> bool:
    """A figure passes when none of its calls timed out and its p95 is within the target."""
    return not s.get("timeouts") and s["p95_ms"] is not None and s["p95_ms"] <= target


def worst_key(s: dict) -> float:
    """Timed-out figures sort as the worst."""
    return float("inf") if s.get("timeouts") or s["p95_ms"] is None else s["p95_ms"]


def captured_selects(fn) -> list[tuple[str, list]]:
    """The SELECT statements `fn` sends (e.g. one log_page call): what is EXPLAINed is exactly
    what the code under test runs, whatever shape it gives its queries."""
    from django.db import connection

    captured = []

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("SELECT", "(SELECT", "WITH")):
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        fn()
    return captured


def explain(fn) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements `fn` sends; if `fn` itself times out,
    EXPLAIN without ANALYZE (the plan, not a run to the end in an I/O stall)."""
    from django.db import connection

    from logs.selectors import QueryTimeout

    try:
        statements = captured_selects(fn)
        analyze = "ANALYZE, BUFFERS"
    except QueryTimeout:
        statements = captured_selects_until_timeout(fn)
        analyze = "COSTS"
    out = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(f"EXPLAIN ({analyze}) " + sql, params)
            out.append("\n".join(row[0] for row in cursor.fetchall()))
    return "\n-- next statement --\n".join(out)


def captured_selects_until_timeout(fn) -> list[tuple[str, list]]:
    from django.db import connection

    from logs.selectors import QueryTimeout

    captured = []

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("SELECT", "(SELECT", "WITH")):
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper), contextlib.suppress(QueryTimeout):
        fn()
    return [(sql, params) for sql, params in captured if "set_config(" not in sql]


def server_ms(fn) -> dict:
    """Planning and execution time as PostgreSQL reports them (one EXPLAIN ANALYZE of each
    statement `fn` runs, summed): the rest of a timing is Django, the driver, the round
    trips and the machine's noise. Under the log statement timeout: {"timeout": True} when
    `fn` or its EXPLAIN ANALYZE runs past it."""
    from django.db import connection

    from logs.selectors import QueryTimeout, statement_timeout

    planning = execution = 0.0
    try:
        statements = captured_selects(fn)
        with statement_timeout(), connection.cursor() as cursor:
            for sql, params in statements:
                if "set_config(" in sql:
                    continue
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
                planning += plan["Planning Time"]
                execution += plan["Execution Time"]
    except QueryTimeout:
        return {"timeout": True}
    return {"planning_ms": round(planning, 2), "execution_ms": round(execution, 2)}


ADMIN_PATH = "/admin/logs/requestlog/"
ADMIN_RATIO = 20.0  # the keyset page must be at least 20x faster than the admin changelist


def admin_query(account_id: int, params: dict) -> dict:
    """The admin changelist's query string for the same filters: the admin takes lookups on
    the model's own fields (`?model__in=a,b`), `p` for its 1-based page."""
    query = {"account__id__exact": account_id}
    for name, value in params.items():
        if name == "start":
            query["timestamp__gte"] = value
        elif isinstance(value, list):
            query[f"{name}__in"] = ",".join(value)
        else:
            query[f"{name}__exact"] = value
    return query


class AdminClient:
    """django.test.Client logged in as a superuser made for this run (deleted by close()),
    GETting the real admin changelist: Django admin's own queries, paginator (its capped
    count) and template, as an operator's browser gets it (no HTTP socket)."""

    def __init__(self):
        import secrets

        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.test import Client

        if "testserver" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        self.user = get_user_model().objects.create_superuser(
            username=f"bench-admin-{secrets.token_hex(4)}", email="", password=None
        )
        self.client = Client()
        self.client.force_login(self.user)
        from logs.admin import RequestLogAdmin

        self.per_page = RequestLogAdmin.list_per_page
        self.max_rows = RequestLogAdmin.paginator.COUNT_CAP  # the admin pages no deeper than its capped count

    def page_for(self, depth: int, matching: int) -> int:
        """The admin page holding row `depth`, or its last reachable page."""
        last = max(1, -(-min(matching, self.max_rows) // self.per_page))
        return min(depth // self.per_page + 1, last)

    def get(self, query: dict) -> int:
        response = self.client.get(ADMIN_PATH, query)
        if response.status_code != 200:
            raise RuntimeError(f"admin changelist answered {response.status_code} for {query}")
        return len(response.content)

    def close(self) -> None:
        self.client.logout()  # deletes the session row
        self.user.delete()


def bench_lists(
    accounts, runs: int, now: datetime, admin_budget: float, filters=FILTERS, ranges=RANGES, rows=None, plans=None
) -> tuple[list[dict], list[dict]]:
    """Appends each line to `rows` (and the plans of misses to `plans`) as it is measured,
    so a run that stops half-way still has them."""
    from django.db import connection

    from console.models import Account
    from logs.pagination import encode_cursor
    from logs.selectors import filter_request_logs, log_page, log_totals

    rows = [] if rows is None else rows
    plans = [] if plans is None else plans
    admin = AdminClient()
    try:
        for label, account_id in accounts.items():
            account = Account.objects.get(pk=account_id)
            with connection.cursor() as cursor:
                values = pick_values(cursor, account_id)
            for range_name, delta in ranges.items():
                start = (now - delta).isoformat()
                for filter_name in filters:
                    params = {"start": start, **filter_params(filter_name, values)}
                    line = bench_line(
                        label, account, range_name, filter_name, params, runs, admin, admin_budget, plans,
                        filter_request_logs, log_page, log_totals, encode_cursor,
                    )  # fmt: skip
                    rows.append(line)
                    print_line(line)
    finally:
        admin.close()
    return rows, plans


def bench_line(
    label, account, range_name, filter_name, params, runs, admin, admin_budget, plans,
    filter_request_logs, log_page, log_totals, encode_cursor,
) -> dict:  # fmt: skip
    def bound(params=params, account=account):
        filterset = filter_request_logs(account=account, params=params)
        assert filterset.is_valid(), filterset.errors
        return filterset

    base = bound().qs.order_by("-timestamp", "-id")
    matching = base.count()  # set-up, not timed
    line = {
        "account": label,
        "account_id": account.pk,
        "range": range_name,
        "filter": filter_name,
        "matching_rows": matching,
    }
    first_fn = lambda b=bound: log_page(filterset=b(), cursor=None, limit=PAGE_LIMIT)  # noqa: E731
    fns = {"first": first_fn, "totals": lambda b=bound: log_totals(filterset=b())}
    line["first"] = timed(first_fn, runs)
    depth = min(DEEP, matching - PAGE_LIMIT - 1)
    if depth >= 10 * PAGE_LIMIT:
        ts, pk = base.values_list("timestamp", "id")[depth]  # one set-up query
        cursor_value = encode_cursor(ts, pk)
        line["deep_depth"] = depth
        fns["deep"] = lambda b=bound, c=cursor_value: log_page(filterset=b(), cursor=c, limit=PAGE_LIMIT)
        line["deep"] = timed(fns["deep"], runs)
        # The real Django admin changelist (GET /admin/logs/requestlog/ with the same filters)
        # at the same depth, or its last page if its capped count stops it short of that.
        query = admin_query(account.pk, params)
        page = admin.page_for(depth, matching)
        line["admin_depth"] = (page - 1) * admin.per_page
        line["admin"] = timed(lambda q={**query, "p": page}: admin.get(q), runs, admin_budget)
        line["admin_first"] = timed(lambda q=query: admin.get(q), runs, admin_budget)
        # No ratio when a side timed out: the line then counts as failed in the summary.
        sides = (line["deep"], line["admin"])
        if all(side["median_ms"] and not side.get("timeouts") for side in sides):
            line["admin_ratio"] = round(line["admin"]["median_ms"] / line["deep"]["median_ms"], 1)
    line["totals"] = timed(fns["totals"], runs)
    for kind in fns:
        line[f"{kind}_server"] = server_ms(fns[kind])
    for kind, target in (("first", LIST_P95_MS), ("deep", LIST_P95_MS), ("totals", TOTALS_P95_MS)):
        if kind in line and not within(line[kind], target):
            plans.append({"what": f"{label} {range_name} {filter_name} {kind}", "plan": explain(fns[kind])})
    return line


def print_line(line: dict) -> None:
    def cell(key):
        s = line.get(key)
        if not s:
            return f"{'-':>8} {'-':>8}"
        if s.get("timeouts"):
            return f"{'TIMEOUT':>8} {str(s['timeouts']) + 'x':>8}"
        return f"{s['median_ms']:8.1f} {s['p95_ms']:8.1f}"

    def server(key):
        s = line.get(key)
        if s and s.get("timeout"):
            return f"{'timeout':>11}"
        return f"{s['planning_ms']:5.1f}+{s['execution_ms']:<5.1f}" if s else f"{'-':>11}"

    ratio = f"{line['admin_ratio']:7.1f}x" if "admin_ratio" in line else f"{'-':>8}"
    print(
        f"{line['account']:<7}{line['range']:<5}{line['filter']:<22}{line['matching_rows']:>10,} "
        f"{cell('first')} {cell('deep')} {cell('totals')} {cell('admin')} {ratio} "
        f"{server('first_server')} {server('deep_server')}",
        flush=True,
    )


def bench_search(accounts, runs: int, now: datetime) -> list[dict]:
    from django.db import connection

    from console.models import Account
    from logs.selectors import filter_request_logs, log_page, log_totals

    out = []
    start = (now - RANGES["30d"]).isoformat()
    for label, account_id in accounts.items():
        account = Account.objects.get(pk=account_id)
        with connection.cursor() as cursor:
            values = pick_values(cursor, account_id)
        for name, params in (
            ("q=request-id piece", {"q": values["q_id"]}),
            ("q=error text", {"q": values["q_text"]}),
            ("ip", {"ip": values["ip"]}),
        ):
            params = {"start": start, **params}

            def bound(params=params, account=account):
                filterset = filter_request_logs(account=account, params=params)
                assert filterset.is_valid(), filterset.errors
                return filterset

            line = {"account": label, "account_id": account_id, "range": "30d", "filter": name}
            for kind, fn in (
                ("first", lambda b=bound: log_page(filterset=b(), cursor=None, limit=PAGE_LIMIT)),
                ("totals", lambda b=bound: log_totals(filterset=b())),
            ):
                line[kind] = timed(fn, runs)
            out.append(line)

            def shown(s):
                timeouts = f" ({s['timeouts']} QueryTimeout)" if s.get("timeouts") else ""
                return f"{s['median_ms']!s:>8} / {s['p95_ms']!s:>8}{timeouts}"

            print(f"{label:<7}30d  {name:<22} page {shown(line['first'])}   totals {shown(line['totals'])}", flush=True)
    return out


def bench_timeout(accounts, now: datetime) -> dict:
    """With LOG_SEARCH_TIMEOUT_MS at 5 ms, a 1-year text search must answer QueryTimeout fast."""
    from django.conf import settings

    from console.models import Account
    from logs.selectors import QueryTimeout, filter_request_logs, log_page

    account = Account.objects.get(pk=accounts["big"])
    filterset = filter_request_logs(
        account=account, params={"start": (now - RANGES["1y"]).isoformat(), "q": "no-such-text-anywhere"}
    )
    assert filterset.is_valid()
    saved = settings.LOG_SEARCH_TIMEOUT_MS
    settings.LOG_SEARCH_TIMEOUT_MS = 5
    t0 = time.perf_counter()
    try:
        log_page(filterset=filterset, cursor=None, limit=PAGE_LIMIT)
        outcome = "no timeout (query finished)"
    except QueryTimeout as exc:
        outcome = f"QueryTimeout: {exc}"
    finally:
        settings.LOG_SEARCH_TIMEOUT_MS = saved
    ms = (time.perf_counter() - t0) * 1000
    print(f"statement timeout 5 ms, q over 1 year (big account): {outcome} after {ms:.0f} ms")
    return {"outcome": outcome, "ms": round(ms, 1), "raised": outcome.startswith("QueryTimeout")}


def summary(rows, search, timeout, ingest) -> list[dict]:
    lines = []

    def add(what, value, target, ok, unit="ms"):
        lines.append({"what": what, "value": value, "target": target, "pass": ok, "unit": unit})

    if ingest:
        ratio = ingest["ratio"]
        add(
            f"ingest HTTP {ingest['http_rps']:,.0f}/s vs COPY {ingest['copy_rps']:,.0f}/s",
            round(ratio * 100, 1),
            f">= {INGEST_RATIO:.0%}",
            ratio >= INGEST_RATIO,
            "%",
        )
        add(
            f"  same, 2 clients into 2 accounts ({ingest['http_two_accounts_rps']:,.0f}/s)",
            round(ingest["ratio_two_accounts"] * 100, 1),
            f">= {INGEST_RATIO:.0%}",
            ingest["ratio_two_accounts"] >= INGEST_RATIO,
            "%",
        )
        plain = ingest["copy_plain_table_rps"]
        add(f"  reference: HTTP vs COPY into an unindexed plain table ({plain:,.0f}/s)",
            round(ingest["http_rps"] / plain * 100, 1), "-", None, "%")  # fmt: skip

    def shown(s):
        return f"timeout ({s['timeouts']} of {s['n'] + s['timeouts']})" if s.get("timeouts") else s["p95_ms"]

    def db(server):
        if server.get("timeout"):
            return "db timeout"
        return f"db {server['planning_ms']:.1f}+{server['execution_ms']:.1f} ms"

    for filter_name in FILTERS:
        for kind in ("first", "deep"):
            matching = [r for r in rows if r["filter"] == filter_name and kind in r]
            if matching:
                # The worst line, with PostgreSQL's own plan+exec time for it: a p95 far above
                # that is the machine's noise, one close to it is the query plan.
                worst = max(matching, key=lambda r, k=kind: worst_key(r[k]))
                add(
                    f"list {kind:<5} {filter_name} (of {len(matching)}; {db(worst[f'{kind}_server'])})",
                    shown(worst[kind]),
                    f"<= {LIST_P95_MS:.0f}",
                    within(worst[kind], LIST_P95_MS),
                )
    for filter_name in FILTERS if rows else []:
        matching = [r for r in rows if r["filter"] == filter_name and r["range"] != "1y"]
        if not matching:
            continue
        worst = max(matching, key=lambda r: worst_key(r["totals"]))
        add(
            f"totals {filter_name} 24h/30d (of {len(matching)}; {db(worst['totals_server'])})",
            shown(worst["totals"]),
            f"<= {TOTALS_P95_MS:.0f}",
            within(worst["totals"], TOTALS_P95_MS),
        )
    year = [r["totals"] for r in rows if r["range"] == "1y"]
    if year:  # the spec sets the totals target for 30 days; 1 year is shown for reference
        add(f"totals any filter 1y (worst p95 of {len(year)}; reference)", shown(max(year, key=worst_key)), "-", None)
    # Keyset deep page against the real admin changelist (medians): worst ratio over the lines.
    compared = [r for r in rows if "admin" in r]
    if compared:
        ratios = [(r.get("admin_ratio"), r) for r in compared]
        failed = [r for ratio, r in ratios if ratio is None]  # a side timed out
        worst_ratio, worst = min(((x, r) for x, r in ratios if x is not None), default=(None, None), key=lambda t: t[0])
        if worst is not None:
            add(
                f"admin changelist / keyset deep page (medians; worst of {len(compared)}: "
                f"{worst['account']} {worst['range']} {worst['filter']})",
                worst_ratio,
                f">= {ADMIN_RATIO:.0f}x",
                worst_ratio >= ADMIN_RATIO and not failed,
                "x",
            )
            lines[-1]["detail"] = (
                f"admin {worst['admin']['median_ms']:.0f} ms at row {worst['admin_depth']:,} "
                f"(page {worst['admin_depth'] // 50 + 1}), keyset {worst['deep']['median_ms']:.1f} ms "
                f"at row {worst['deep_depth']:,}"
            )
        if failed:
            add(f"admin changelist / keyset page: {len(failed)} lines timed out", "timeout", f">= {ADMIN_RATIO:.0f}x",
                False, "x")  # fmt: skip
        first = [r["admin_first"]["median_ms"] / r["first"]["median_ms"] for r in compared
                 if r["admin_first"]["median_ms"] and r["first"]["median_ms"]]  # fmt: skip
        if first:
            add("admin changelist first page / keyset first page, median (worst; reference)", min(first), "-", None,
                "x")  # fmt: skip
    for line in search:
        for kind in ("first", "totals"):
            s = line[kind]
            add(
                f"{line['filter']} {line['account']} 30d {kind} p95",
                shown(s),
                f"<= {SEARCH_P95_MS:.0f}",
                within(s, SEARCH_P95_MS),
            )
    if timeout["outcome"] != "skipped":
        add("statement timeout answers QueryTimeout", timeout["ms"], "raises", timeout["raised"])
    return lines


def print_summary(lines) -> None:
    print("\n" + "=" * 100)
    print(f"{'SUMMARY':<66}{'value':>12} {'target':>10}  result")
    for line in lines:
        value = line["value"]
        shown = f"{value:,.1f} {line['unit']}" if isinstance(value, int | float) else str(value)
        result = "-" if line["pass"] is None else "PASS" if line["pass"] else "FAIL"
        print(f"{line['what']:<66}{shown:>12} {line['target']:>10}  {result}")
        if line.get("detail"):
            print(f"    {line['detail']}")


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


def save(result: dict, plans: list, stamp: str) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    if plans:
        (RESULTS_DIR / f"{stamp}-plans.txt").write_text(
            "\n\n".join(f"== {p['what']}\n{p['plan']}" for p in plans) + "\n"
        )
    print(f"\nresults: {path}" + (f" (+ {len(plans)} EXPLAIN plans in {stamp}-plans.txt)" if plans else ""))


if __name__ == "__main__":
    main()
