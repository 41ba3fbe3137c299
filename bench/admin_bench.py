"""The Django admin's request-log changelist on the bench database, before and after in one
run: each case GETs the real changelist (django.test.Client, a superuser made for the run and
deleted after), and beside it times what the old changelist ran for the same view (an
unfiltered or account-only query, newest first, LIMIT 50 OFFSET k, plus its COUNT capped
at 100,000), so the ratio holds however busy the machine is.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \\
        .venv/bin/python bench/admin_bench.py [--runs 5]

Read-only apart from the run's user, its session and its login record, all deleted at the end.
"""

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, setup_django, stats
from bench.common import timed as common_timed

ADMIN_TARGET_MS = 1000.0
OLD_COUNT_CAP = 100_000  # the old CappedCountPaginator's cap
OLD_DEEP_PAGE = 2_000  # the deep page


def old_changelist(
    account_id: int | None = None, status: str | None = None, page: int = 1, per_page: int = 50, request_id=None
):
    """What the old admin ran for a changelist page: the capped count and the page, newest
    first over every partition (no window, no retention classes)."""
    from logs import gate

    queryset = gate.request_logs(account=gate.all_accounts())
    if account_id is not None:
        queryset = queryset.filter(account_id=account_id)
    if status is not None:
        queryset = queryset.filter(status=status)
    if request_id is not None:
        queryset = queryset.filter(request_id=request_id)  # the old exact search
    queryset = queryset.select_related("account").order_by("-timestamp", "-id")

    def run():
        count = queryset.order_by()[:OLD_COUNT_CAP].count()
        last = max(1, -(-count // per_page))
        number = min(page, last)
        return count, len(list(queryset[(number - 1) * per_page : number * per_page]))

    return run


def changelist_of(admin, query: dict):
    """The page's ChangeList (rows, count, page), from one call with the test instrumentation
    that records template contexts; the timed calls run without it."""
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    try:
        response = admin.client.get("/admin/logs/requestlog/", query)
    finally:
        teardown_test_environment()
    if response.status_code != 200:
        raise RuntimeError(f"admin changelist answered {response.status_code} for {query}")
    return response.context["cl"]


def pick(cursor) -> dict:
    """The largest account, one of its request ids from 3 days ago, and the last day of last
    week (set-up, not timed)."""
    cursor.execute("SELECT account_id FROM logs_requestlog GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    (big,) = cursor.fetchone()
    cursor.execute(
        "SELECT request_id FROM logs_requestlog WHERE account_id = %s "
        "AND timestamp BETWEEN now() - interval '3 days' AND now() - interval '71 hours' LIMIT 1",
        [big],
    )
    row = cursor.fetchone()
    today = datetime.now(UTC).date()
    sunday = today - timedelta(days=today.weekday() + 1)  # the last day of last week's partition
    return {"big": big, "request_id": row[0] if row else "none", "full_day": sunday}


def cases(values: dict, last_page: int) -> list[tuple[str, dict, object]]:
    big, day = values["big"], values["full_day"]
    day_name = f"{day:%a %d %b}"
    full_day = {
        "window": "all",
        "timestamp__gte": f"{day}T00:00:00Z",
        "timestamp__lt": f"{day + timedelta(days=1)}T00:00:00Z",
    }
    return [
        ("page 1, default (last 24 h)", {}, old_changelist()),
        (f"page {last_page} (last), default", {"p": last_page}, old_changelist(page=OLD_DEEP_PAGE)),
        ("page 1, any time", {"window": "all"}, old_changelist()),
        (f"page {last_page}, any time", {"window": "all", "p": last_page}, old_changelist(page=OLD_DEEP_PAGE)),
        ("page 1, last 7 days", {"window": "7d"}, old_changelist()),
        ("page 1, last 30 days", {"window": "30d"}, old_changelist()),
        ("page 1, status=error, any time", {"window": "all", "status__exact": "error"}, old_changelist(status="error")),
        (
            "page 1, largest account + error, 24 h",
            {"account__id__exact": big, "status__exact": "error"},
            old_changelist(big, "error"),
        ),
        (
            "page 1, largest account + error, any time",
            {"window": "all", "account__id__exact": big, "status__exact": "error"},
            old_changelist(big, "error"),
        ),
        (
            f"page {last_page}, largest account, any time",
            {"window": "all", "account__id__exact": big, "p": last_page},
            old_changelist(big, page=OLD_DEEP_PAGE),
        ),
        # The 24 h window's worst case: a whole day whose partitions are full (the last day
        # of a week; a monthly partition near its end too).
        (f"page 1, {day_name} (full partitions)", full_day, None),
        (f"page {last_page}, {day_name} (full partitions)", {**full_day, "p": last_page}, None),
        ("request_id search, no account", {"q": values["request_id"]}, old_changelist(request_id=values["request_id"])),
        (
            "request_id search, largest account",
            {"q": values["request_id"], "account__id__exact": big},
            old_changelist(big, request_id=values["request_id"]),
        ),
        ("page 999999 (past the end)", {"p": 999999}, None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--old-budget", type=float, default=20.0, help="seconds per old-query figure (min 2 runs)")
    args = parser.parse_args()
    setup_django()

    from django.conf import settings
    from django.db import connection

    from bench.run_bench_admin import AdminClient

    settings.DEBUG = False
    with connection.cursor() as cursor:
        values = pick(cursor)
    admin = AdminClient()
    last_page = admin.max_rows // admin.per_page
    now = datetime.now(UTC)
    print(f"{now:%Y-%m-%d %H:%M} UTC; largest account {values['big']}; {args.runs} runs after one warm-up\n")
    print(f"{'case':<44}{'new med':>9}{'p95':>9}{'rows':>7}{'count':>8}   {'old med':>9}{'p95':>9}  {'old/new':>7}")
    lines = []
    try:
        for name, query, old in cases(values, last_page):
            cl = changelist_of(admin, query)
            line = {"case": name, "query": {k: str(v) for k, v in query.items()}, "rows": len(cl.result_list)}
            line["count"], line["page"] = cl.result_count, cl.page_num
            line["new"] = stats(common_timed(lambda q=query: admin.get(q), args.runs)[0])
            if old is not None:
                line["old"] = stats(common_timed(old, args.runs, args.old_budget, min_runs=2)[0])
                line["ratio"] = round(line["old"]["median_ms"] / line["new"]["median_ms"], 1)
            lines.append(line)
            old_s = line.get("old", {})
            print(
                f"{name:<44}{line['new']['median_ms']:>9.0f}{line['new']['p95_ms']:>9.0f}{line['rows']:>7}"
                f"{line['count']:>8}   {old_s.get('median_ms') or 0:>9.0f}{old_s.get('p95_ms') or 0:>9.0f}"
                f"  {line.get('ratio', 0):>6.1f}x",
                flush=True,
            )
    finally:
        admin.close()
        from axes.models import AccessLog

        AccessLog.objects.filter(username=admin.user.username).delete()
    worst = max(lines, key=lambda line: line["new"]["p95_ms"])
    ok = worst["new"]["p95_ms"] <= ADMIN_TARGET_MS
    print(
        f"\nworst admin page p95: {worst['new']['p95_ms']:.0f} ms ({worst['case']}), "
        f"target <= {ADMIN_TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'}"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"admin-{now:%Y%m%dT%H%M%SZ}.json"
    result = {"started_at": now.isoformat(), "values": values, "lines": lines}
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"saved {path.relative_to(RESULTS_DIR.parent.parent)}")


if __name__ == "__main__":
    main()
