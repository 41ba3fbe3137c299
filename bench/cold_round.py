"""analytics_bench.py's cold round (`--cold`): every default view of the console, each one
first on a cold cache and then warm, through the real view stack (django.test.Client: the
session, the tenant gate, the page's own queries and its template).

Each view is called once first, so Python's side is warm (imports, templates); then, before
each cold call, PostgreSQL's shared buffers are emptied of the bench database's pages and the
operating system's page cache is dropped (root only; the line says what was done). By
default the buffers are swept by reading a filler table of another database into them
(pg_prewarm; pg_buffercache counts what is left), so other clients of the server are not
cut off; `--cold-restart-pg` restarts PostgreSQL instead (`--cold-restart` names the
command). Then the same GET is repeated warm (median of `--cold-warm-runs`).

A view passes when its cold answer is a 200 that is not "The search took too long" and
comes within the read timeout (LOG_SEARCH_TIMEOUT_MS) -- what an operator sees after a
restart -- and prints its warm median beside it.
"""

import logging
import shlex
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from bench.common import bench_database_url, median

TOO_LONG = b"took too long"


@dataclass
class View:
    label: str
    path: str
    params: dict
    operator: bool = False  # a staff user's session (the all-accounts view)
    token: bool = False  # a read token instead of a session (the usage API)


def default_views(top_model: str) -> list[View]:
    tabs = ("cost", "trend", "peak", "errors")
    views = [
        View("dashboard", "/", {}),
        View("log list", "/logs/", {}),
        *(View(f"analytics {tab} (7 days)", "/analytics/", {"tab": tab}) for tab in tabs),
        # The chart that timed out cold before: one model's cost by API key over 90 days.
        View(f"analytics cost 90 days model={top_model}", "/analytics/", {"tab": "cost", "range": "90d",
                                                                          "model": top_model}),
        View("usage API (default)", "/api/v1/usage", {}, token=True),
    ]  # fmt: skip
    for range_key in ("7d", "90d", "1y"):
        views.append(View(f"operator all accounts {range_key}", "/analytics/operator/", {"range": range_key}, True))
    return views


def _restart_command() -> list[str]:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]


FILLER_DATABASE = "cold_filler_bench"
FILLER_SHARE = 8  # the filler is this many times shared_buffers: every hot page is swept out


class Evictor:
    """Empties PostgreSQL's shared buffers of the bench database without a restart (which
    would cut every other client of the server): pg_prewarm reads a filler table of a
    database of its own, FILLER_SHARE times shared_buffers, into the buffers, and the clock
    sweep evicts what was there. pg_buffercache then counts the bench database's pages still
    in shared buffers, printed on each line."""

    def __init__(self, bench_url: str):
        import psycopg

        from bench.common import database_name, maintenance_url

        self.bench_name = database_name(bench_url)
        url = maintenance_url(bench_url)
        with psycopg.connect(url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [FILLER_DATABASE]).fetchone():
                conn.execute(f"CREATE DATABASE {FILLER_DATABASE}")
        self.url = url.rsplit("/", 1)[0] + "/" + FILLER_DATABASE
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
            buffers = int(conn.execute("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'").fetchone()[0])
            pages = conn.execute("SELECT coalesce((SELECT relpages FROM pg_class WHERE relname = 'filler'), 0)")
            if pages.fetchone()[0] < FILLER_SHARE * buffers:
                conn.execute("DROP TABLE IF EXISTS filler")
                # ~14 rows of 500 bytes a page.
                rows = FILLER_SHARE * buffers * 14
                conn.execute(
                    f"CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, {rows}) g"
                )
                conn.execute("VACUUM ANALYZE filler")

    def evict(self) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_prewarm('filler', 'buffer')")
            left = conn.execute(
                "SELECT count(*) FROM pg_buffercache "
                "WHERE reldatabase = (SELECT oid FROM pg_database WHERE datname = %s)",
                [self.bench_name],
            ).fetchone()[0]
        return f"shared buffers evicted ({left} bench pages left)"


def make_cold(restart: list[str] | None, evictor: Evictor | None) -> str:
    """Empty what caches the bench can empty; returns what was done (printed on the line)."""
    from django.db import connection

    connection.close()
    done = []
    if restart:
        result = subprocess.run(restart, capture_output=True, text=True)
        done.append("PostgreSQL restarted" if result.returncode == 0 else f"restart failed: {result.stderr.strip()}")
    if evictor:
        done.append(evictor.evict())
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        done.append("OS cache dropped")
    except OSError as exc:
        done.append(f"OS cache kept ({exc.strerror})")
    for _ in range(60):  # wait until the server accepts connections again
        try:
            connection.ensure_connection()
            break
        except Exception:  # any connection error means "not up yet"
            connection.close()
            time.sleep(0.5)
    connection.close()  # the timed call opens its own, as a worker's first request would
    return ", ".join(done)


def run_cold_round(account, args) -> list[dict]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from console.models import Membership, Role, TokenScope
    from console.services import token_create, token_revoke

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    logging.getLogger("axes").setLevel(logging.ERROR)  # a line per force_login otherwise
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise, without collectstatic
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model FROM analytics_usageday WHERE account_id = %s AND projection = 0 "
            "GROUP BY 1 ORDER BY sum(requests) DESC LIMIT 1",
            [account.pk],
        )
        (top_model,) = cursor.fetchone()
    restart, evictor = None, None
    if args.cold_restart_pg:
        restart = shlex.split(args.cold_restart) if args.cold_restart else _restart_command()
    else:
        evictor = Evictor(bench_database_url())
    budget_ms = settings.LOG_SEARCH_TIMEOUT_MS
    users = get_user_model().objects
    stamp = f"{time.time_ns()}"
    member = users.create_user(username=f"cold-bench-{stamp}", email="", password=None)
    Membership.objects.create(user=member, account=account, role=Role.VIEWER)
    operator = users.create_user(username=f"cold-bench-op-{stamp}", email="", password=None, is_staff=True)
    token, secret = token_create(account=account, scope=TokenScope.READ, name="cold bench")
    lines = []
    print(f"\ncold round: account {account.pk} ({account.name}), budget {budget_ms} ms cold (the read timeout)")
    print(f"{'view':<46} {'cold ms':>9} {'warm median':>12}  result   caches")
    try:
        views = default_views(top_model)
        clients = {}
        for view in views:
            if view.token:
                clients[view.label] = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
            else:
                clients[view.label] = Client()
                clients[view.label].force_login(operator if view.operator else member)
            # Python's side warm (imports, templates, URL resolver): what is cold is the data.
            _get(clients[view.label], view)
        for view in views:
            client = clients[view.label]
            caches = make_cold(restart, evictor)
            cold_ms, cold_ok, status = _get(client, view)
            warm = [_get(client, view)[0] for _ in range(args.cold_warm_runs)]
            line = {
                "view": view.label,
                "path": view.path,
                "params": view.params,
                "cold_ms": round(cold_ms, 1),
                "warm_median_ms": round(median(warm), 1),
                "status": status,
                "caches": caches,
                "pass": cold_ok and cold_ms <= budget_ms,
            }
            lines.append(line)
            print(
                f"{view.label:<46} {line['cold_ms']:>9.1f} {line['warm_median_ms']:>12.1f}  "
                f"{'PASS' if line['pass'] else 'FAIL'}{'' if cold_ok else f' ({status})':<4}  {caches}"
            )
    finally:
        token_revoke(account=account, token_id=token.pk)
        member.delete()
        operator.delete()
    return lines


def _get(client, view: View) -> tuple[float, bool, str]:
    started = time.perf_counter()
    response = client.get(view.path, view.params)
    elapsed = (time.perf_counter() - started) * 1000
    body = response.content
    ok = response.status_code == 200 and TOO_LONG not in body
    status = str(response.status_code) + (" took too long" if TOO_LONG in body else "")
    return elapsed, ok, status
