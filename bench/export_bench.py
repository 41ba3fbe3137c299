"""Export throughput through the real HTTP endpoint beside `psql \\copy` of the same query.

Starts gunicorn as ingest_bench.py does (2 sync workers, DEBUG off) against the bench
database, downloads GET /api/v1/export?format=csv (and with compress=gzip) of the newest
--rows rows of the largest account (a `start` filter picked so the export holds at least
that many rows) with a read token, and measures rows/s, time to first byte and the peak
RSS (VmHWM) of the gunicorn workers. In the same run it times

    psql -c "\\copy (<the export's SELECT: same columns, WHERE and ORDER>) TO '/dev/null' WITH CSV"

and prints the ratio with PASS/FAIL against issue 4's targets (>= 70% of \\copy's rate,
web process peak RSS < 100 MB). Both sides get an untimed warm-up; the verdict is the median
of the rounds' own ratios (\\copy then HTTP in each round), not the best round.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \\
        .venv/bin/python bench/export_bench.py [--rows 1000000] [--filtered] [--no-gzip] [--port 8123]
    ... bench/export_bench.py --all-accounts     # every row of the database (10 M)

An export belongs to one account (the largest holds ~17% of the rows, 1.7 M of 10 M), so
`--all-accounts` exports every account's whole log, one download per account one after the
other (as a script backing up every account would), and times one psql session running the
same SELECTs as `\\copy` one after the other: the figure covers every row of the database.

Needs a loaded bench database (`bench/generate.py --rows 1000000 --reset` is enough).
CSV on PostgreSQL goes through the COPY path (logs.export_sql.copy_csv_chunks); the gzip
download adds zlib's cost on top of it.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, bench_database_url, setup_django
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


def all_accounts() -> list[tuple[object, int]]:
    """Every account with rows and the rows its unfiltered export holds, largest first."""
    from console.models import Account
    from logs import selectors

    exports = []
    for account in Account.objects.order_by("pk"):
        filterset = selectors.filter_request_logs(account=account, params={})
        assert filterset.is_valid(), filterset.errors
        count = filterset.qs.count()
        if count:
            exports.append((account, count))
    return sorted(exports, key=lambda item: -item[1])


def copy_sql(account, params: dict) -> str:
    """The export's chunk SELECT without the keyset bound and LIMIT, params inlined."""
    from django.db import connection

    from logs import selectors

    try:
        from logs.exports.sql import COLUMNS  # logs/exports/ as a package
    except ImportError:
        from logs.exports import COLUMNS

    filterset = selectors.filter_request_logs(account=account, params=params)
    assert filterset.is_valid()
    qs = filterset.qs.order_by("-timestamp", "-id").values_list(*COLUMNS)
    sql, sql_params = qs.query.sql_with_params()
    return connection.ops.compose_sql(sql, sql_params)


def time_psql_copy(*sqls: str) -> float:
    """One psql session running `\\copy (sql) TO '/dev/null' WITH CSV` for each statement."""
    url = urlparse(bench_database_url())
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.writelines(f"\\copy ({sql}) TO '/dev/null' WITH CSV\n" for sql in sqls)
        script.flush()
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.hostname or "127.0.0.1",
               "-p", str(url.port or 5432), "-U", url.username or "postgres", "-d", url.path.lstrip("/"),
               "-f", script.name]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def download(port: int, token: str, query: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    cpu = time.process_time()
    start = time.perf_counter()
    conn.request("GET", "/api/v1/export?" + urlencode(query), headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export answered {response.status}: {response.read()[:500]!r}")
    first = None
    size = newlines = 0
    while True:
        data = response.read1(1 << 20)
        if not data:
            break
        if first is None:
            first = time.perf_counter() - start
        size += len(data)
        newlines += data.count(b"\n")
    seconds = time.perf_counter() - start
    conn.close()
    return {
        "seconds": seconds,
        "ttfb": first,
        "bytes": size,
        "newlines": newlines,
        "client_cpu_seconds": time.process_time() - cpu,
    }


def migrate() -> None:
    from django.core.management import call_command

    # A database loaded before the exports issue lacks ExportRecord. The logs app only:
    # other apps' migrations being written in this tree are none of this bench's business.
    call_command("migrate", "logs", verbosity=0)


def run_export_bench(
    rows: int = 1_000_000, filtered: bool = False, gzip: bool = True, rounds: int = 3, port: int = 0
) -> dict:
    """After an untimed warm-up of both sides (one `\\copy`, one HTTP CSV download), `rounds`
    times psql \\copy then the HTTP CSV download, alternately (the machine is shared: a busy
    moment then hits both sides of one round alike). The verdict is the median of the
    rounds' own ratios; the rates shown are the medians of each side."""
    from console.models import ApiToken, TokenScope

    migrate()

    account, params, count = pick_export(rows, filtered)
    token, secret = ApiToken.generate(account=account, scope=TokenScope.READ, name="export bench")
    sql = copy_sql(account, params)
    print(f"account {account.slug}: {count:,} rows, filters {params}", flush=True)
    results = {"rows": count, "filters": params, "rounds": []}
    server = None
    try:
        time_psql_copy(sql)  # warm-up of the \copy side; not counted
        port = port or free_port()
        server = start_server(port)
        workers = worker_pids(server.pid)
        results["worker_rss_before_mb"] = max(vm_kb(pid, "VmRSS") for pid in workers) / 1024
        download(port, secret, {"format": "csv", **params})  # warm-up of the HTTP side; not counted
        downloads = []
        for _ in range(rounds):
            copy_seconds = time_psql_copy(sql)
            downloads.append(timed_download(port, secret, {"format": "csv", **params}, workers))
            results["rounds"].append({"copy_seconds": copy_seconds, "csv_seconds": downloads[-1]["seconds"]})
            print(f"  round: \\copy {copy_seconds:.2f} s, HTTP CSV {downloads[-1]['seconds']:.2f} s", flush=True)
            if downloads[-1]["newlines"] != count + 1:
                print(f"  warning: {downloads[-1]['newlines'] - 1:,} CSV lines for {count:,} rows")
        median_of_rounds(results, downloads, count)
        if gzip:
            got = timed_download(port, secret, {"format": "csv", "compress": "gzip", **params}, workers)
            rate = count / got["seconds"]
            results["csv.gz"] = dict(got, rows_per_s=rate, ratio=rate / results["copy_rows_per_s"])
        results["worker_peak_rss_mb"] = max(vm_kb(pid, "VmHWM") for pid in worker_pids(server.pid)) / 1024
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        token.delete()
    return results


def median_of_rounds(results: dict, downloads: list[dict], count: int) -> None:
    """The rounds' medians: `\\copy` seconds, the HTTP download of the median round, and the
    verdict ratio (the median of the rounds' own ratios, not the best round's)."""
    results["round_ratio_median"] = statistics.median(r["copy_seconds"] / r["csv_seconds"] for r in results["rounds"])
    results["copy_seconds"] = statistics.median(r["copy_seconds"] for r in results["rounds"])
    results["copy_rows_per_s"] = count / results["copy_seconds"]
    by_time = sorted(downloads, key=lambda got: got["seconds"])
    middle = dict(by_time[(len(by_time) - 1) // 2])
    middle["seconds"] = statistics.median(got["seconds"] for got in downloads)
    middle.update(rows_per_s=count / middle["seconds"], ratio=results["round_ratio_median"])
    results["csv"] = middle


def timed_download(port: int, token: str, query: dict, workers: list[int]) -> dict:
    cpu = sum(map(cpu_seconds, workers))
    got = download(port, token, query)
    got["worker_cpu_seconds"] = sum(map(cpu_seconds, workers)) - cpu
    return got


def run_all_accounts_bench(rounds: int = 2, port: int = 0) -> dict:
    """Every account's whole export, one download each, beside one psql session running the
    same SELECTs; after an untimed warm-up of both sides, `rounds` times the psql session
    then the downloads; the verdict is the median of the rounds' ratios."""
    from console.models import ApiToken, TokenScope

    migrate()
    accounts = all_accounts()
    count = sum(rows for _, rows in accounts)
    sqls = [copy_sql(account, {}) for account, _ in accounts]
    print(f"{len(accounts)} accounts, {count:,} rows (largest {accounts[0][1]:,})", flush=True)
    tokens = [ApiToken.generate(account=account, scope=TokenScope.READ, name="export bench") for account, _ in accounts]
    port = port or free_port()
    server = start_server(port)
    results = {"rows": count, "accounts": len(accounts), "filters": "every account, unfiltered", "rounds": []}
    downloads = []
    try:
        workers = worker_pids(server.pid)
        results["worker_rss_before_mb"] = max(vm_kb(pid, "VmRSS") for pid in workers) / 1024
        # Warm-up of both sides (not counted): the psql session, and one download per account.
        time_psql_copy(*sqls)
        for _, secret in tokens:
            download(port, secret, {"format": "csv"})
        for _ in range(rounds):
            copy_seconds = time_psql_copy(*sqls)
            total = {"seconds": 0.0, "bytes": 0, "newlines": 0, "client_cpu_seconds": 0.0, "ttfb": []}
            cpu = sum(map(cpu_seconds, workers))
            for (account, rows), (_, token) in zip(accounts, tokens, strict=True):
                got = download(port, token, {"format": "csv"})
                if got["newlines"] != rows + 1:
                    print(f"  warning: {account.slug}: {got['newlines'] - 1:,} CSV lines for {rows:,} rows")
                for key in ("seconds", "bytes", "newlines", "client_cpu_seconds"):
                    total[key] += got[key]
                total["ttfb"].append(got["ttfb"])
            total["worker_cpu_seconds"] = sum(map(cpu_seconds, workers)) - cpu
            ttfbs = sorted(total.pop("ttfb"))
            total.update(ttfb=ttfbs[len(ttfbs) // 2], ttfb_max=ttfbs[-1])
            downloads.append(total)
            results["rounds"].append({"copy_seconds": copy_seconds, "csv_seconds": total["seconds"]})
            print(f"  round: \\copy {copy_seconds:.1f} s, HTTP CSV {total['seconds']:.1f} s", flush=True)
        results["worker_peak_rss_mb"] = max(vm_kb(pid, "VmHWM") for pid in worker_pids(server.pid)) / 1024
    finally:
        server.terminate()
        server.wait(timeout=30)
        ApiToken.objects.filter(pk__in=[token.pk for token, _ in tokens]).delete()
    median_of_rounds(results, downloads, count)
    return results


def report(results: dict) -> bool:
    ok = True
    print(
        f"psql \\copy of the same query: {results['copy_seconds']:.2f} s, {results['copy_rows_per_s']:,.0f} rows/s"
        f"{' (median of ' + str(len(results['rounds'])) + ' rounds)' if results.get('rounds') else ''}"
    )
    for name in ("csv", "csv.gz"):
        if name not in results:
            continue
        r = results[name]
        passed = r["ratio"] >= TARGET_RATIO
        ok &= passed or name != "csv"
        how = "median of the rounds' ratios" if name == "csv" else "one download vs the median \\copy; reference"
        print(
            f"HTTP export {name:7} {r['seconds']:6.2f} s  {r['rows_per_s']:9,.0f} rows/s  "
            f"{r['bytes'] / 1e6:8.1f} MB  first byte {r['ttfb'] * 1000:6.0f} ms"
            f"{' (median; max ' + format(r['ttfb_max'] * 1000, '.0f') + ' ms)' if 'ttfb_max' in r else ''}  "
            f"ratio {r['ratio']:.0%} of \\copy ({how}; target >= {TARGET_RATIO:.0%}) "
            f"{('PASS' if passed else 'FAIL') if name == 'csv' else '-'}; "
            f"CPU s: gunicorn {r['worker_cpu_seconds']:.1f}, client {r['client_cpu_seconds']:.1f}"
        )
    if "round_ratio_median" in results:
        print(
            "per round (\\copy then HTTP): ratio "
            + ", ".join(f"{r['copy_seconds'] / r['csv_seconds']:.0%}" for r in results["rounds"])
            + f"; median {results['round_ratio_median']:.0%} (the verdict)"
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
    parser.add_argument("--no-gzip", action="store_true", help="skip the gzip download")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="psql \\copy + HTTP CSV pairs after a warm-up of each, median (default 3; 2 with --all-accounts)",
    )
    parser.add_argument("--port", type=int, default=0, help="port for gunicorn (default: a free one)")
    parser.add_argument(
        "--all-accounts", action="store_true", help="every account's whole export (every row), instead of --rows"
    )
    args = parser.parse_args()
    setup_django()
    runs = []
    if args.all_accounts:
        runs.append(run_all_accounts_bench(rounds=args.rounds or 2, port=args.port))
    else:
        rounds = args.rounds or 3
        runs.append(run_export_bench(args.rows, gzip=not args.no_gzip, rounds=rounds, port=args.port))
        if args.filtered:
            runs.append(
                run_export_bench(args.rows, filtered=True, gzip=not args.no_gzip, rounds=rounds, port=args.port)
            )
    ok = True
    for results in runs:
        results["load_average_after"] = os.getloadavg()  # the machine is shared: say how busy it was
        ok &= report(results)
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"export-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(runs, indent=2, default=str))
    print(f"results: {path}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    main()
