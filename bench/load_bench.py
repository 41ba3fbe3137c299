"""Read and ingest load through gunicorn as shipped: one client alone beside 16 at once.

For each server configuration (workers x threads, set through the variables the shipped
gunicorn.conf.py reads: WEB_CONCURRENCY, GUNICORN_THREADS) it starts gunicorn against the
bench database (DEBUG off), sends a cold burst (every client asks for the same chart page at
once, to catch state that threads share), then runs for `--duration` seconds each:

- the read mix with 1 client, then with `--clients` (16): dashboard `/`, log list `/logs/`
  and analytics `/analytics/` with a logged-in session of a member of the largest account,
  `GET /api/v1/logs` and `GET /api/v1/usage?group_by=model` with a read token of it, every
  one the default view;
- the ingest mix with 1 client, then `--clients`: `POST /api/v1/ingest` of 100 fresh records
  a batch with ingest tokens of 4 accounts made for the run.

It prints p50 / p99 latency (ms, nearest rank, successful requests), requests/s and errors
per configuration side by side, the same per view for the read mix, the workers' peak RSS,
and which configuration the shipped defaults are beside the one the numbers favour. At the
end it deletes what it made (user, session, tokens, the ingest accounts and their rows).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/load_bench_db DEBUG=1 \\
        .venv/bin/python bench/load_bench.py [--duration 60] [--clients 16] [--configs 3x1,3x4,2x8]

The database needs its rollups for the dashboard and analytics pages: after generate.py,
`manage.py rebuild_rollups --past-retention`.
"""

import argparse
import json
import os
import runpy
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, setup_django
from bench.ingest_bench import free_port
from bench.load_mix import (
    CONF,
    IngestBodies,
    ServerConfig,
    cold_burst,
    ingest_mix,
    make_fixture,
    read_mix,
    run_phase,
    start_gunicorn,
    stop_gunicorn,
    workers_peak_rss_mb,
)

GUNICORN_VARIABLES = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "GUNICORN_BIND")


def shipped_config() -> ServerConfig:
    """gunicorn.conf.py's defaults: the file run with none of its variables set."""
    saved = {name: os.environ.pop(name) for name in GUNICORN_VARIABLES if name in os.environ}
    try:
        conf = runpy.run_path(str(CONF))
    finally:
        os.environ.update(saved)
    return ServerConfig("shipped", conf["workers"], conf["threads"])


def parse_configs(text: str, shipped: ServerConfig) -> list[ServerConfig]:
    configs = []
    for item in text.split(","):
        workers, _, threads = item.strip().partition("x")
        config = ServerConfig(item.strip(), int(workers), int(threads or 1))
        configs.append(shipped if (config.workers, config.threads) == (shipped.workers, shipped.threads) else config)
    if shipped not in configs:
        configs.append(shipped)
    return configs


def run_config(config: ServerConfig, fx, bodies, args, log_path: Path) -> dict:
    from django.conf import settings

    port = args.port or free_port()
    reads, ingests = [read_mix(fx)], ingest_mix(fx, bodies)
    server = start_gunicorn(config, port, settings.SECRET_KEY, log_path)
    out = {"config": config.label, "workers": config.workers, "threads": config.threads}
    try:
        out["cold_burst_errors"] = cold_burst(port, [reads[0][0], reads[0][3]], args.clients)
        # Untimed warm-up: every worker and thread has served the mix once before timing.
        run_phase(port, reads, args.clients, args.warmup)
        run_phase(port, ingests, args.clients, min(args.warmup, 2))
        for mix, call_lists in (("read", reads), ("ingest", ingests)):
            for clients in (1, args.clients):
                print(f"  {config.label}: {mix} mix, {clients} client(s), {args.duration:g} s ...", flush=True)
                cpu0 = time.process_time()
                result = run_phase(port, call_lists, clients, args.duration)
                # The clients' own CPU (this process) and the machine's load: is the client
                # or something else the bottleneck?
                client_cpu = (time.process_time() - cpu0) / args.duration
                names = sorted({s.name for s in result.samples} | {e.split(":")[0] for e in result.errors})
                out[f"{mix}_{clients}"] = {
                    "all": result.summary(),
                    "views": {name: result.summary(name) for name in names},
                    "error_examples": result.errors[:3],
                    "client_cpu_share": round(client_cpu, 3),
                    "loadavg_1min_after": round(os.getloadavg()[0], 2),
                }
        out["worker_peak_rss_mb"] = workers_peak_rss_mb(server.pid)
    finally:
        stop_gunicorn(server)
    section = log_path.read_text(errors="replace").rsplit("\n=== ", 1)[-1]
    problems = {word: section.count(word) for word in ("Traceback", "WORKER TIMEOUT", "Internal Server Error")}
    out["server_log_problems"] = ", ".join(f"{n} x {w}" for w, n in problems.items() if n) or "no tracebacks"
    return out


def fmt(summary: dict) -> str:
    p50, p99 = summary.get("p50_ms"), summary.get("p99_ms")
    cell = f"{p50:7.0f} {p99:7.0f}" if p50 is not None else f"{'-':>7} {'-':>7}"
    return f"{cell} {summary['rps']:6.1f} {summary['errors']:4d}"


def report(results: list[dict], shipped: ServerConfig, args) -> None:
    c = args.clients
    head = f"{'p50':>7} {'p99':>7} {'req/s':>6} {'err':>4}"
    for mix in ("read", "ingest"):
        print(f"\n{mix} mix, {args.duration:g} s per cell (ms; nearest-rank percentiles of successful requests)")
        print(f"{'configuration':<34} | {'1 client':^27} | {f'{c} clients':^27}")
        print(f"{'':<34} | {head} | {head}")
        for r in results:
            tag = " (shipped)" if (r["workers"], r["threads"]) == (shipped.workers, shipped.threads) else ""
            print(f"{r['config'] + tag:<34} | {fmt(r[f'{mix}_1']['all'])} | {fmt(r[f'{mix}_{c}']['all'])}")
    print(f"\nread mix per view: p50 / p99 ms, 1 client -> {c} clients")
    views = list(results[0]["read_1"]["views"])
    print(f"{'view':<24} " + " ".join(f"{r['config']:>30}" for r in results))
    for view in views:
        cells = []
        for r in results:
            a, b = r["read_1"]["views"].get(view, {}), r[f"read_{c}"]["views"].get(view, {})
            cells.append(f"{a.get('p50_ms', 0):4.0f}/{a.get('p99_ms', 0):<4.0f} -> {b.get('p50_ms', 0):5.0f}/"
                         f"{b.get('p99_ms', 0):<5.0f}")  # fmt: skip
        print(f"{view:<24} " + " ".join(f"{cell:>30}" for cell in cells))
    print("\nworkers' peak RSS (VmHWM, MB): " + "; ".join(
        f"{r['config']}: max {max(r['worker_peak_rss_mb']):.0f}, sum {sum(r['worker_peak_rss_mb']):.0f}"
        for r in results))  # fmt: skip
    print("client CPU (share of one core) / 1-min load average after each cell: " + "; ".join(
        f"{r['config']}: " + ", ".join(f"{r[k]['client_cpu_share']:.2f}/{r[k]['loadavg_1min_after']:.1f}"
                                       for k in ("read_1", f"read_{c}", "ingest_1", f"ingest_{c}"))
        for r in results))  # fmt: skip
    for r in results:
        print(f"cold burst ({r['config']}): {2 * c} cold chart-page requests, {len(r['cold_burst_errors'])} errors; "
              f"server log: {r['server_log_problems']}")  # fmt: skip
        if r["cold_burst_errors"]:
            errors = r["cold_burst_errors"]
            print(f"COLD BURST ERRORS ({r['config']}): {len(errors)}, e.g. {errors[0]}")
        for key in ("read_1", f"read_{c}", "ingest_1", f"ingest_{c}"):
            if r[key]["error_examples"]:
                print(f"errors ({r['config']}, {key}): {r[key]['error_examples'][0]}")
    verdict(results, shipped, c)


def verdict(results: list[dict], shipped: ServerConfig, c: int) -> None:
    """The configuration with the lowest read p50 at `c` clients among those without errors,
    beside the shipped one."""
    clean = [r for r in results if not r["cold_burst_errors"] and not any(
        r[k]["all"]["errors"] for k in ("read_1", f"read_{c}", "ingest_1", f"ingest_{c}"))]  # fmt: skip
    mine = next(r for r in results if (r["workers"], r["threads"]) == (shipped.workers, shipped.threads))
    print(f"\nshipped defaults (gunicorn.conf.py): {shipped.label} "
          f"(WEB_CONCURRENCY={shipped.workers}, GUNICORN_THREADS={shipped.threads})")  # fmt: skip
    if not clean:
        print("every configuration had errors: no choice follows from this run")
        return
    best = min(clean, key=lambda r: r[f"read_{c}"]["all"]["p50_ms"])
    for r in results:
        rd, ing = r[f"read_{c}"]["all"], r[f"ingest_{c}"]["all"]
        print(f"  {r['config']:<30} read at {c}: p50 {rd['p50_ms']:.0f} ms, p99 {rd['p99_ms']:.0f} ms, "
              f"{rd['rps']:.1f} req/s; ingest at {c}: p50 {ing['p50_ms']:.0f} ms, "
              f"{ing['rps']:.1f} batches/s")  # fmt: skip
    ratio = mine[f"read_{c}"]["all"]["p50_ms"] / best[f"read_{c}"]["all"]["p50_ms"]
    if best is mine:
        print(f"the numbers favour the shipped defaults: lowest read p50 at {c} clients without errors")
    else:
        print(
            f"lowest read p50 at {c} clients: {best['config']}; the shipped one is {ratio:.2f}x its p50 "
            f"({'within 10%: noise on this machine' if ratio <= 1.1 else 'REVIEW the defaults'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help="seconds per mix and client count (default 60)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients beside one alone (default 16)")
    parser.add_argument("--configs", default="3x1,3x4,2x8",
                        help="workers x threads to compare, comma-separated (1 thread: sync); the shipped "
                             "defaults are always included (default 3x1,3x4,2x8)")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=5, help="untimed seconds of the read mix per server")
    parser.add_argument("--port", type=int, default=0, help="port for gunicorn (default: a free one)")
    args = parser.parse_args()
    setup_django()

    shipped = shipped_config()
    configs = parse_configs(args.configs, shipped)
    started = datetime.now(UTC)
    RESULTS_DIR.mkdir(exist_ok=True)
    log_path = RESULTS_DIR / f"load-{started:%Y%m%dT%H%M%SZ}-gunicorn.log"
    print(f"load bench: {len(configs)} configurations x (read, ingest) x (1, {args.clients} clients) x "
          f"{args.duration:g} s; gunicorn output and access log in {log_path}", flush=True)  # fmt: skip
    fx = make_fixture()
    bodies = IngestBodies(fx.run)
    results = []
    t0 = time.perf_counter()
    try:
        for config in configs:
            results.append(run_config(config, fx, bodies, args, log_path))
    finally:
        rows = fx.cleanup()
        print(f"cleaned up: the run's user, session, tokens, {len(fx.ingest_tokens)} ingest accounts "
              f"and their {rows:,} rows", flush=True)  # fmt: skip
    report(results, shipped, args)
    path = RESULTS_DIR / f"load-{started:%Y%m%dT%H%M%SZ}.json"
    meta = {
        "started": started.isoformat(),
        "seconds": round(time.perf_counter() - t0),
        "args": vars(args),
        "shipped": {"workers": shipped.workers, "threads": shipped.threads},
        "account": fx.read_account.slug,
    }
    path.write_text(json.dumps({**meta, "results": results}, indent=1, default=str))
    print(f"results in {path}")


if __name__ == "__main__":
    main()
