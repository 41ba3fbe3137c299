"""Shared set-up for the bench scripts: Django against the bench database only."""

import gc
import http.client
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"


def bench_database_url() -> str:
    """The DATABASE_URL, refusing anything that is not a PostgreSQL database named *bench*:
    the loader drops indexes and the whole database, so it must never point at real data."""
    url = os.environ.get("DATABASE_URL", "")
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if parsed.scheme not in ("postgres", "postgresql") or "bench" not in name:
        sys.exit(f"DATABASE_URL must name a PostgreSQL database containing 'bench' (got {url!r})")
    return url


def maintenance_url(url: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(path="/postgres").geturl()


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def setup_django() -> None:
    bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("DEBUG", "1")
    if str(REPO_DIR) not in sys.path:
        sys.path.insert(0, str(REPO_DIR))
    import django

    django.setup()


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def timed(fn, runs: int, budget_s: float | None = None, min_runs: int = 1, timeouts: list | None = None):
    """(milliseconds of up to `runs` calls after one warm-up call, the warm-up's result).
    With a budget, stop once the timed calls used it and `min_runs` are done.

    With a `timeouts` list, a call that raises logs.selectors.QueryTimeout (the statement
    timeout, e.g. during an I/O stall) appends its milliseconds there and the other calls
    are kept: the figure then fails on its timeouts instead of killing the run. Without
    one, the QueryTimeout propagates. A warm-up that times out leaves the result None.

    The objects this harness has piled up by then (raw rows, results, plans of earlier
    scenarios) are frozen out of the garbage collector's scans for the timed calls: a web
    worker does not carry them, and a full collection over them landed inside some calls
    (p95 104 ms for a median of 37 ms). The calls' own garbage is still collected."""
    from logs.selectors import QueryTimeout

    catch = QueryTimeout if timeouts is not None else ()
    result = None
    t0 = time.perf_counter()
    try:
        result = fn()
    except catch:
        timeouts.append((time.perf_counter() - t0) * 1000)
    times, spent = [], 0.0
    gc.collect()
    gc.freeze()
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            try:
                fn()
            except catch:
                ms = (time.perf_counter() - t0) * 1000
                timeouts.append(ms)
            else:
                ms = (time.perf_counter() - t0) * 1000
                times.append(ms)
            spent += ms / 1000
            if budget_s and spent > budget_s and len(times) + len(timeouts or ()) >= min_runs:
                break
    finally:
        gc.unfreeze()
    return times, result


def stats(times: list[float], timeouts: list[float] = ()) -> dict:
    """Median and p95 of the timed runs (ms), and how many calls timed out."""
    out = {"median_ms": None, "p95_ms": None, "n": len(times)}
    if times:
        out.update(median_ms=round(median(times), 2), p95_ms=round(percentile(times, 95), 2))
    if timeouts:
        out.update(timeouts=len(timeouts), timeout_after_ms=round(max(timeouts), 1))
    return out


def wait_for_gunicorn(proc, port: int, seconds: int = 60):
    """`proc` (a gunicorn just started) once it answers an unauthenticated ingest POST with
    401/403; terminated with an error if it exits or stays silent for `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/api/v1/ingest", body=b"[]", headers={"Content-Type": "application/json"})
            status = conn.getresponse().status
            conn.close()
            if status in (401, 403):
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited; see its output above")
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"gunicorn did not answer within {seconds} s")
