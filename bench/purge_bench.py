"""The retention purge at 10 M rows while gateways ingest (issue 15).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \\
        .venv/bin/python bench/purge_bench.py [--clients 4] [--quiet 30]

DESTRUCTIVE: it purges the bench database for real (build it anew afterwards with
bench/generate.py). The data ends at the generator's "now", as if a purge had just run, so:

1. quiet (before, and again at the end): the ingest mix of load_bench.py (batches of 100
   records into accounts made for the run) through gunicorn with the shipped config,
   `--clients` clients for `--quiet` s;
2. daily: the same load, and meanwhile the purge as if one day had passed (now = newest row
   + 1 day): one day of expired rows per retention class;
3. half: the same load, and the purge as if half a year had passed: the 30-, 90- and 180-day
   classes wholly, about half of the 365-day one.

For each purge: its wall time, the partitions it dropped (the longest drop: DETACH holds
an exclusive lock on the class table), its longest DELETE batch (row locks), ingest p50 / p99
during it beside the quiet figure, and the log's size on disk and rows before and after.
Targets (issue 15): drops under 1 s in all, no lock over 100 ms, ingest p99 within 1.5x of
quiet, the size shrinking by the purged share.
"""

import argparse
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, percentile, setup_django
from bench.ingest_bench import free_port


def log_size() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('logs_requestlog') "
            "WHERE isleaf"
        )
        size = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM logs_requestlog")
        rows = int(cursor.fetchone()[0])
    return size, rows


class Load:
    """Ingest clients until stopped; each sample keeps when it started."""

    def __init__(self, port: int, call_lists, clients: int):
        self.port, self.call_lists, self.clients = port, call_lists, clients
        self.samples: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(clients)]

    def _client(self, i: int) -> None:
        import http.client

        from bench.load_mix import _one

        calls = self.call_lists[i % len(self.call_lists)]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        n = i
        while not self._stop.is_set():
            call = calls[n % len(calls)]
            n += 1
            started = time.perf_counter()
            try:
                status, payload = _one(conn, call)
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(f"{type(exc).__name__} {exc}")
                conn.close()
                continue
            with self._lock:
                if status == 200:
                    self.samples.append((started, (time.perf_counter() - started) * 1000))
                else:
                    self.errors.append(f"HTTP {status} {payload[:120]!r}")
        conn.close()

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def between(self, start: float, end: float) -> dict:
        times = [ms for at, ms in self.samples if start <= at < end]
        if not times:
            return {"n": 0}
        return {"n": len(times), "p50_ms": round(percentile(times, 50), 1), "p99_ms": round(percentile(times, 99), 1)}


class Phases:
    """When the purge was in which step: wraps the steps of logs.retention.deletes so each
    slow ingest request can be matched with what the purge was doing meanwhile."""

    STEPS = {"detach_partitions": "detach", "rows_by_account": "count", "delete_expired_rows": "delete"}

    def __init__(self):
        self.spans: list[tuple[str, float, float]] = []

    def __enter__(self):
        from logs.retention import deletes

        self._saved = {}
        for name, label in self.STEPS.items():
            real = getattr(deletes, name)
            self._saved[name] = real
            setattr(deletes, name, self._timed(real, label))
        real_drop = deletes.drop_detached

        def drop(table):
            # drop_detached counts (rows_by_account, timed above) then drops: the rest is the DROP.
            began, before = time.perf_counter(), len(self.spans)
            out = real_drop(table)
            counted = sum(e - b for _, b, e in self.spans[before:])
            self.spans.append(("drop", began + counted, time.perf_counter()))
            return out

        self._saved["drop_detached"] = real_drop
        deletes.drop_detached = drop
        return self

    def _timed(self, real, label):
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.spans.append((label, began, time.perf_counter()))

        return timed

    def __exit__(self, *exc):
        from logs.retention import deletes

        for name, real in self._saved.items():
            setattr(deletes, name, real)

    def overlapping(self, samples, slower_than: float) -> dict:
        """Of the samples slower than `slower_than` ms, how many overlapped each step."""
        found: dict[str, int] = {}
        for at, ms in samples:
            if ms <= slower_than:
                continue
            end = at + ms / 1000
            labels = {label for label, b, e in self.spans if b < end and e > at} or {"nothing"}
            for label in labels:
                found[label] = found.get(label, 0) + 1
        return found

    def totals(self) -> dict:
        out: dict[str, float] = {}
        for label, b, e in self.spans:
            out[label] = round(out.get(label, 0) + (e - b), 2)
        return out


def purge_under_load(label: str, now, load_args, quiet_p99: float | None = None) -> dict:
    from logs.retention.services import purge_expired_logs

    size_before, rows_before = log_size()
    with Load(*load_args) as load:
        time.sleep(2)  # the clients are sending
        with Phases() as phases:
            started = time.perf_counter()
            run = purge_expired_logs(now=now)
            ended = time.perf_counter()
        if ended - started < 10:
            time.sleep(10 - (ended - started))  # at least 10 s of load samples around it
        during = load.between(started - 1, max(ended, started + 10))
        errors = list(load.errors)
        window = [(at, ms) for at, ms in load.samples if started - 1 <= at < max(ended, started + 10)]
    size_after, rows_after = log_size()
    # A drop is the DETACH (the class table's exclusive lock) and the DROP of the detached
    # table; between them the detached table's rows are counted per account for the run's
    # record, a read of a table nobody else can see any more, shown apart.
    # Periods detached in one transaction (detach_group) share its detach_ms: count it once.
    groups = {p.get("detach_group") or p["name"]: p.get("detach_ms") or 0 for p in run.partitions}
    detaches = list(groups.values())
    drops = [p.get("drop_ms", 0) for p in run.partitions] + detaches
    counts = [p.get("count_ms", 0) for p in run.partitions]
    batches = [e.get("max_batch_ms", 0) for e in run.accounts]
    out = {
        "purge": label,
        "now": now.isoformat(),
        "status": run.status,
        "seconds": round(ended - started, 2),
        "deleted": run.deleted,
        "partitions_dropped": len(run.partitions),
        "drops_total_ms": round(sum(drops), 1),
        "longest_drop_ms": round(max(drops, default=0), 1),
        "detaches": len(detaches),
        "detaches_total_ms": round(sum(detaches), 1),
        "counts_total_ms": round(sum(counts), 1),
        "longest_count_ms": round(max(counts, default=0), 1),
        # The class table's exclusive lock is held by the DETACH only (the count and the
        # DROP of the detached table lock nothing ingest or readers use).
        "longest_detach_ms": round(max(detaches, default=0), 1),
        "longest_batch_ms": round(max(batches, default=0), 1),
        "ingest_during": during,
        # Seconds in each step, and which steps the requests slower than the quiet p99 overlapped.
        "steps_s": phases.totals(),
        "slow_requests_overlapped": phases.overlapping(window, quiet_p99) if quiet_p99 else None,
        "ingest_errors": errors[:3],
        "size_before": size_before,
        "size_after": size_after,
        "rows_before": rows_before,
        "rows_after": rows_after,
    }
    print(
        f"{label}: {out['seconds']} s, {run.deleted:,} rows deleted ({run.status}), "
        f"{len(run.partitions)} partitions dropped in {out['drops_total_ms']} ms "
        f"(DETACH + DROP; {out['detaches']} DETACH transactions in {out['detaches_total_ms']} ms, "
        f"longest {out['longest_detach_ms']} ms; "
        f"counting the detached tables {out['counts_total_ms']} ms, longest {out['longest_count_ms']} ms), "
        f"longest DELETE batch {out['longest_batch_ms']} ms; ingest during: {during}; errors {len(errors)}; "
        f"size {size_before / 2**30:.2f} -> {size_after / 2**30:.2f} GiB "
        f"({1 - size_after / size_before:.1%} less), rows {rows_before:,} -> {rows_after:,} "
        f"({1 - rows_after / rows_before:.1%} less); seconds per step {out['steps_s']}; "
        f"requests slower than the quiet p99 overlapped: {out['slow_requests_overlapped']}",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="ingest clients (default 4)")
    parser.add_argument("--quiet", type=float, default=30, help="seconds of ingest without a purge (default 30)")
    parser.add_argument("--half-days", type=int, default=183, help="days ahead for the second purge (default 183)")
    args = parser.parse_args()
    setup_django()

    import json
    import os
    from datetime import UTC, datetime

    from django.conf import settings
    from django.db import connection

    from bench.load_bench import shipped_config
    from bench.load_mix import IngestBodies, ingest_mix, make_fixture, start_gunicorn, stop_gunicorn

    settings.DEBUG = False
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(timestamp) FROM logs_requestlog")
        (newest,) = cursor.fetchone()
    started = datetime.now(UTC)
    print(
        f"newest row {newest:%Y-%m-%d %H:%M} UTC; load average {os.getloadavg()[0]:.2f}; "
        f"METERLOG_PURGE_BATCH_ROWS {settings.METERLOG_PURGE_BATCH_ROWS}, "
        f"METERLOG_PURGE_PAUSE_PERCENT {settings.METERLOG_PURGE_PAUSE_PERCENT}, "
        f"METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS {settings.METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS}",
        flush=True,
    )
    fx = make_fixture()
    bodies = IngestBodies(fx.run)
    port = free_port()
    log_path = RESULTS_DIR / f"purge-{started:%Y%m%dT%H%M%SZ}-gunicorn.log"
    RESULTS_DIR.mkdir(exist_ok=True)
    server = start_gunicorn(shipped_config(), port, settings.SECRET_KEY, log_path)
    result = {
        "started_at": started.isoformat(),
        "clients": args.clients,
        "batch_rows": settings.METERLOG_PURGE_BATCH_ROWS,
        "pause_percent": settings.METERLOG_PURGE_PAUSE_PERCENT,
        "ddl_lock_timeout_ms": settings.METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS,
        "loadavg_before": os.getloadavg(),
    }
    try:
        load_args = (port, ingest_mix(fx, bodies), args.clients)
        with Load(*load_args) as load:
            time.sleep(3)  # untimed warm-up
            t0 = time.perf_counter()
            time.sleep(args.quiet)
            quiet = load.between(t0, time.perf_counter())
        result["quiet"] = quiet
        print(f"quiet ingest ({args.clients} clients, {args.quiet:g} s): {quiet}", flush=True)
        quiet_p99 = quiet.get("p99_ms")
        result["daily"] = purge_under_load(
            "daily purge (now + 1 day)", newest + timedelta(days=1), load_args, quiet_p99
        )
        result["half"] = purge_under_load(
            f"half purge (now + {args.half_days} days)", newest + timedelta(days=args.half_days), load_args, quiet_p99
        )
        # The machine's load drifts: quiet again after; each purge is compared with the higher
        # (kinder) of the two quiet figures.
        with Load(*load_args) as load:
            time.sleep(3)
            t0 = time.perf_counter()
            time.sleep(args.quiet)
            result["quiet_after"] = load.between(t0, time.perf_counter())
        print(f"quiet ingest again: {result['quiet_after']}", flush=True)
    finally:
        stop_gunicorn(server)
        result["cleanup_rows"] = fx.cleanup()
    result["loadavg_after"] = os.getloadavg()
    for key in ("daily", "half"):
        r = result[key]
        p99 = r["ingest_during"].get("p99_ms")
        quiet_p99 = max(quiet.get("p99_ms") or 0, result["quiet_after"].get("p99_ms") or 0)
        ratio = p99 / quiet_p99 if p99 and quiet_p99 else None
        checks = {
            "drops under 1 s in all": r["drops_total_ms"] < 1000,
            "no lock over 100 ms": max(r["longest_detach_ms"], r["longest_batch_ms"]) <= 100,
            "ingest p99 within 1.5x quiet": ratio is not None and ratio <= 1.5,
        }
        r["checks"] = checks
        print(
            f"{r['purge']}: ingest p99 {p99} ms vs quiet {quiet.get('p99_ms')} / "
            f"{result['quiet_after'].get('p99_ms')} ms ({ratio:.2f}x); "
            if ratio
            else f"{r['purge']}: no ingest samples; ",
            ", ".join(f"{name} {'PASS' if ok else 'FAIL'}" for name, ok in checks.items()),
        )
    path = RESULTS_DIR / f"purge-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
