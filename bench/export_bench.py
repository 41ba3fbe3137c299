"""Export throughput through the real HTTP endpoint beside `psql \\copy` of the same query.

Starts gunicorn as ingest_bench.py does (2 sync workers, DEBUG off) against the bench
database, downloads GET /api/v1/export?format=csv (and with compress=gzip) of the newest
--rows rows of the largest account (a `start` filter picked so the export holds at least
that many rows) with a read token, and measures rows/s, time to first byte and the peak
RSS (VmHWM) of the gunicorn workers. In the same run it times

    psql -c "\\copy (<the export's SELECT: same columns, WHERE and ORDER>) TO '/dev/null' WITH CSV"

and prints the ratio with PASS/FAIL against issue 4's targets (>= 70% of \\copy's rate,
web process peak RSS < 100 MB).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \\
        .venv/bin/python bench/export_bench.py [--rows 1000000] [--filtered]

Needs a loaded bench database (`bench/generate.py --rows 1000000 --reset` is enough).
CSV on PostgreSQL goes through the COPY path (logs.export_sql.copy_csv_chunks); the gzip
download adds zlib's cost on top of it.
"""

import argparse
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database_url, setup_django
from bench.ingest_bench import free_port, start_server

TARGET_RATIO = 0.70
TARGET_RSS_MB = 100


def worker_pids(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def pick_export(rows: int, filtered: bool) -> tuple[object, dict, int]:
    """The largest account and a `start` so that the export holds >= `rows` rows (all of
    them if it has fewer). `filtered` adds status=success (a filter most rows pass)."""
    from django.db import connection

    from console.models import Account

    with connection.cursor() as cursor:
        cursor.execute("SELECT account_id FROM logs_requestlog GROUP BY account_id ORDER BY count(*) DESC LIMIT 1")
        account = Account.objects.get(pk=cursor.fetchone()[0])
    params = {"status": "success"} if filtered else {}
    from logs import selectors

    filterset = selectors.filter_request_logs(account=account, params=params)
    assert filterset.is_valid(), filterset.errors
    qs = filterset.qs.order_by("-timestamp", "-id")
    boundary = qs.values_list("timestamp", flat=True)[rows - 1 : rows].first()
    if boundary is not None:
        params["start"] = boundary.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    filterset = selectors.filter_request_logs(account=account, params=params)
    assert filterset.is_valid(), filterset.errors
    count = filterset.qs.count()
    return account, params, count


def copy_sql(account, params: dict) -> str:
    """The export's chunk SELECT without the keyset bound and LIMIT, params inlined."""
    from django.db import connection

    from logs import selectors
    from logs.exports import COLUMNS

    filterset = selectors.filter_request_logs(account=account, params=params)
    assert filterset.is_valid()
    qs = filterset.qs.order_by("-timestamp", "-id").values_list(*COLUMNS)
    sql, sql_params = qs.query.sql_with_params()
    return connection.ops.compose_sql(sql, sql_params)


def time_psql_copy(sql: str) -> float:
    url = urlparse(bench_database_url())
    cmd = ["psql", "-X", "-q", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432),
           "-U", url.username or "postgres", "-d", url.path.lstrip("/"),
           "-c", f"\\copy ({sql}) TO '/dev/null' WITH CSV"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def download(port: int, token: str, query: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    conn.request("GET", "/api/v1/export?" + urlencode(query), headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export answered {response.status}: {response.read()[:500]!r}")
    first = None
    size = newlines = 0
    while True:
        data = response.read1(1 << 16)
        if not data:
            break
        if first is None:
            first = time.perf_counter() - start
        size += len(data)
        newlines += data.count(b"\n")
    seconds = time.perf_counter() - start
    conn.close()
    return {"seconds": seconds, "ttfb": first, "bytes": size, "newlines": newlines}


def run_export_bench(rows: int = 1_000_000, filtered: bool = False) -> dict:
    from django.core.management import call_command

    from console.models import ApiToken, TokenScope

    call_command("migrate", verbosity=0)  # a database loaded before the exports issue lacks ExportRecord

    account, params, count = pick_export(rows, filtered)
    token = ApiToken.generate(account=account, scope=TokenScope.READ, name="export bench")[1]
    sql = copy_sql(account, params)
    print(f"account {account.slug}: {count:,} rows, filters {params}", flush=True)

    copy_seconds = time_psql_copy(sql)  # also warms the cache for the HTTP runs
    copy_seconds = min(copy_seconds, time_psql_copy(sql))
    copy_rate = count / copy_seconds

    port = free_port()
    server = start_server(port)
    results = {"rows": count, "filters": params, "copy_seconds": copy_seconds, "copy_rows_per_s": copy_rate}
    try:
        workers = worker_pids(server.pid)
        results["worker_rss_before_mb"] = max(vm_kb(pid, "VmRSS") for pid in workers) / 1024
        for name, extra in (("csv", {}), ("csv.gz", {"compress": "gzip"})):
            got = download(port, token, {"format": "csv", **params, **extra})
            if name == "csv" and got["newlines"] != count + 1:
                print(f"  warning: {got['newlines'] - 1:,} CSV lines for {count:,} rows (multi-line values?)")
            rate = count / got["seconds"]
            results[name] = {**got, "rows_per_s": rate, "ratio": rate / copy_rate}
        results["worker_peak_rss_mb"] = max(vm_kb(pid, "VmHWM") for pid in worker_pids(server.pid)) / 1024
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def report(results: dict) -> bool:
    ok = True
    print(f"psql \\copy of the same query: {results['copy_seconds']:.2f} s, {results['copy_rows_per_s']:,.0f} rows/s")
    for name in ("csv", "csv.gz"):
        r = results[name]
        passed = r["ratio"] >= TARGET_RATIO
        ok &= passed or name != "csv"
        print(
            f"HTTP export {name:7} {r['seconds']:6.2f} s  {r['rows_per_s']:9,.0f} rows/s  "
            f"{r['bytes'] / 1e6:8.1f} MB  first byte {r['ttfb'] * 1000:6.0f} ms  "
            f"ratio {r['ratio']:.0%} of \\copy (target >= {TARGET_RATIO:.0%}) {'PASS' if passed else 'FAIL'}"
        )
    rss = results["worker_peak_rss_mb"]
    ok &= rss < TARGET_RSS_MB
    print(
        f"gunicorn worker peak RSS (VmHWM) {rss:.0f} MB (idle {results['worker_rss_before_mb']:.0f} MB), "
        f"target < {TARGET_RSS_MB} MB {'PASS' if rss < TARGET_RSS_MB else 'FAIL'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--filtered", action="store_true", help="also export a status=success subset")
    args = parser.parse_args()
    setup_django()
    ok = report(run_export_bench(args.rows))
    if args.filtered:
        ok &= report(run_export_bench(args.rows, filtered=True))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    main()
