"""run_bench.py's measurements: the accounts and filter values, the log list (first and deep
page), the totals bar and the admin changelist per account x range x filter, text search and
IP, and the statement timeout; the targets they are judged by."""

import time
from datetime import datetime, timedelta

from bench.common import stats
from bench.common import timed as common_timed
from bench.run_bench_admin import AdminClient, admin_query
from bench.run_bench_plans import explain, server_ms

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
