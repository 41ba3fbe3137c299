"""Ingest throughput through the real HTTP endpoint beside PostgreSQL COPY of the same rows.

Starts gunicorn (2 sync workers, production settings: DEBUG off) on 127.0.0.1 against the
bench database, POSTs fresh records in batches of 1,000 from 2 client threads, then COPYs
the same number of equivalent rows into the same table (same indexes) in this process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/ingest_bench.py [--records 50000]

Also run by `run_bench.py --ingest`.
"""

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_DIR, bench_database_url, setup_django
from bench.generate import ERRORS, MODELS, USER_AGENTS, load_trace, provider_of

BATCH = 1_000
CLIENTS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=bench_database_url(),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        STATIC_MANIFEST="0",
        LOG_LEVEL="WARNING",
        PYTHONWARNINGS="ignore::UserWarning",  # "No directory at STATIC_ROOT": no static files here
    )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    cmd = [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "--timeout", "120",
           "--log-level", "warning", "console.wsgi:application"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO_DIR, env=env)
    deadline = time.time() + 60
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
    raise RuntimeError("gunicorn did not answer within 60 s")


def make_records(n: int, keys: list[str], rng: random.Random, prefix: str) -> list[dict]:
    """Fresh records in the ingest format, shaped like the loaded data: Azure token pairs,
    skewed models and keys, ~5% errors; 80% carry a cost (as LiteLLM sends it), the rest are
    priced by the service."""
    _, pairs = load_trace()
    models = [m[0] for m in MODELS]
    model_weights = [m[1] for m in MODELS]
    now = datetime.now(UTC)
    records = []
    for i in range(n):
        prompt, completion = rng.choice(pairs)
        model = rng.choices(models, model_weights)[0]
        ts = now - timedelta(seconds=rng.uniform(5, 3600))
        record = {
            "request_id": f"{prefix}-{uuid.uuid4().hex[:20]}-{i}",
            "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "model": model,
            "status": "success",
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "api_key": keys[min(len(keys) - 1, int(len(keys) * rng.random() ** 2.2))],
            "ip_address": f"10.9.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "user_agent": rng.choice(USER_AGENTS),
            "latency_ms": 180 + completion * 14,
            "request_params": {"temperature": 0.7, "max_tokens": 1024, "stream": rng.random() < 0.35},
            "tags": {"env": "prod", "team": "search"},
        }
        if rng.random() < 0.8:
            record["cost"] = str(Decimal(prompt * 0.15 + completion * 0.6) / Decimal(1_000_000))
        if rng.random() < 0.05:
            code, _, message, http_status = rng.choices(ERRORS, [e[1] for e in ERRORS])[0]
            record.update(status="error", completion_tokens=0, total_tokens=prompt, cost="0", error_code=code,
                          error_message=message, error_details={"http_status": http_status,
                                                                "llm_provider": provider_of(model)})  # fmt: skip
        records.append(record)
    return records


def post_batches(port: int, token: str, bodies: list[bytes], errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in bodies:
        conn.request("POST", "/api/v1/ingest", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            errors.append(f"{response.status}: {payload[:300]!r}")
            continue
        answer = json.loads(payload)
        if answer["accepted"] != BATCH:
            errors.append(f"accepted {answer['accepted']} of {BATCH}: {str(answer)[:300]}")
    conn.close()


def http_ingest(port: int, jobs: list[tuple[str, list[bytes]]]) -> float:
    """Run one thread per (token, bodies) job; returns the wall-clock seconds of all."""
    errors: list[str] = []
    threads = [threading.Thread(target=post_batches, args=(port, token, bodies, errors)) for token, bodies in jobs]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} batches failed, e.g. {errors[0]}")
    return seconds


def copy_rows(account, records: list[dict], table: str = "logs_requestlog") -> float:
    """COPY equivalent rows (one stream, one transaction), timing only the COPY itself."""
    from django.db import connection, transaction

    from logs.ingest.services import COLUMNS
    from logs.partitions import ensure_partitions

    now = datetime.now(UTC)
    rows = []
    for r in records:
        ts = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        rows.append(
            (account.pk, account.retention_days, "copy-" + r["request_id"], ts, r["model"], r["status"],
             r["prompt_tokens"], r["completion_tokens"], r["total_tokens"], None, None,
             Decimal(r["cost"]) if "cost" in r else None, None, r["api_key"], r["ip_address"], r["user_agent"],
             r["latency_ms"], json.dumps(r["request_params"]), json.dumps(r["tags"]), r.get("error_code", ""),
             r.get("error_message", ""), json.dumps(r["error_details"]) if "error_details" in r else None, now)
        )  # fmt: skip
    ensure_partitions(account.retention_days, {row[3] for row in rows})
    t0 = time.perf_counter()
    sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    return time.perf_counter() - t0


def run_ingest_bench(records: int = 50_000) -> dict:
    """Returns records/s of HTTP ingest (2 clients into one account, and into two accounts),
    of COPY, and the ratio of the one-account figure to COPY."""
    from console.models import Account, ApiToken, TokenScope
    from logs.models import ApiKey

    records = max(BATCH * CLIENTS, records // (BATCH * CLIENTS) * BATCH * CLIENTS)
    rng = random.Random(7)
    # Two mid-sized accounts of the loaded data (their indexes and partitions are warm-ish
    # and realistic), created if the database is empty of them.
    accounts = list(Account.objects.filter(slug__in=["bench-020", "bench-021"]).order_by("slug"))
    if len(accounts) < 2:
        accounts = [Account.objects.get_or_create(slug=s, defaults={"name": s, "tier": "enterprise"})[0]
                    for s in ("bench-ingest-a", "bench-ingest-b")]  # fmt: skip
    tokens = [ApiToken.generate(account=a, scope=TokenScope.INGEST, name="bench")[1] for a in accounts]
    keys = {a.pk: list(ApiKey.objects.filter(account=a).values_list("identifier", flat=True)) or ["bench"]
            for a in accounts}  # fmt: skip
    # Masked secrets cannot be sent back as they are; send aliases (as LiteLLM does) only.
    keys = {pk: [k for k in ks if "…" not in k] or ["bench-alias"] for pk, ks in keys.items()}

    def bodies_for(account, n, prefix):
        recs = make_records(n, keys[account.pk], rng, prefix)
        return recs, [json.dumps(recs[i : i + BATCH]).encode() for i in range(0, n, BATCH)]

    port = free_port()
    server = start_server(port)
    try:
        # Warm-up (not timed): each worker imports, connects, and caches its partitions.
        _, warm = bodies_for(accounts[0], BATCH * 4, "warm")
        http_ingest(port, [(tokens[0], warm[:2]), (tokens[0], warm[2:])])

        one_records, one_bodies = bodies_for(accounts[0], records, "one")
        half = len(one_bodies) // 2
        one_s = http_ingest(port, [(tokens[0], one_bodies[:half]), (tokens[0], one_bodies[half:])])
        _, a_bodies = bodies_for(accounts[0], records // 2, "two")
        _, b_bodies = bodies_for(accounts[1], records // 2, "two")
        two_s = http_ingest(port, [(tokens[0], a_bodies), (tokens[1], b_bodies)])
    finally:
        server.terminate()
        server.wait(timeout=30)
    copy_s = copy_rows(accounts[0], one_records)
    # Reference only: the same COPY into a plain table without indexes, FK or partitions.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy_plain")
        cursor.execute("CREATE TABLE bench_copy_plain (LIKE logs_requestlog INCLUDING DEFAULTS)")
    plain_s = copy_rows(accounts[0], one_records, table="bench_copy_plain")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy_plain")
        # The COPY baseline went in behind ingest's back (no rollups): take it out again, or
        # the analytics bench finds raw rows that no rollup counts.
        cursor.execute(
            "DELETE FROM logs_requestlog WHERE account_id = %s AND request_id LIKE 'copy-%%'", [accounts[0].pk]
        )
    result = {
        "records": records,
        "batch": BATCH,
        "clients": CLIENTS,
        "http_rps": records / one_s,
        "http_two_accounts_rps": records / two_s,
        "copy_rps": records / copy_s,
        "copy_plain_table_rps": records / plain_s,
    }
    result["ratio"] = result["http_rps"] / result["copy_rps"]
    result["ratio_two_accounts"] = result["http_two_accounts_rps"] / result["copy_rps"]
    print(
        f"ingest {records:,} records in batches of {BATCH:,}, {CLIENTS} client threads, gunicorn 2 workers:\n"
        f"  HTTP, one account:   {result['http_rps']:>9,.0f} records/s ({one_s:.1f} s)\n"
        f"  HTTP, two accounts:  {result['http_two_accounts_rps']:>9,.0f} records/s ({two_s:.1f} s)\n"
        f"  COPY, same rows:     {result['copy_rps']:>9,.0f} rows/s ({copy_s:.1f} s)\n"
        f"  (COPY into a plain table, no index/FK/partitions: {result['copy_plain_table_rps']:,.0f} rows/s)\n"
        f"  ratio HTTP/COPY:     {result['ratio']:.0%} (one account), {result['ratio_two_accounts']:.0%} (two)\n",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    setup_django()
    from django.conf import settings

    settings.DEBUG = False
    run_ingest_bench(records=args.records)


if __name__ == "__main__":
    main()
