"""Ingest throughput through the real HTTP endpoint beside PostgreSQL COPY of the same rows.

Starts gunicorn (2 sync workers, production settings: DEBUG off) on 127.0.0.1 against the
bench database, POSTs fresh records in batches of 1,000 from 2 client threads, then COPYs
the same number of equivalent rows into the same table (same indexes) in this process;
`--rounds` times (default 3) after an untimed warm-up of both sides, and the verdict is the
median of the rounds' ratios. At the end (in a finally) it deletes the rows it inserted (by
their request_id prefix, unique to the run) and rebuilds the rollups of the days it touched.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/ingest_bench.py [--records 50000] [--rounds 3] [--port 8123]

Also run by `run_bench.py --ingest`.
"""

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_DIR, bench_database_url, setup_django, wait_for_gunicorn
from bench.generate_data import ERRORS, MODELS, USER_AGENTS, load_trace, provider_of

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
    # gunicorn reads ./gunicorn.conf.py by itself (4 gthread threads, access log): this bench's
    # figures are of sync workers, without the access log, so the command line says so.
    cmd = [str(gunicorn), "--workers", "2", "--worker-class", "sync", "--threads", "1", "--bind", f"127.0.0.1:{port}",
           "--timeout", "120", "--log-level", "warning", "--access-logfile", os.devnull,
           "console.wsgi:application"]  # fmt: skip
    return wait_for_gunicorn(subprocess.Popen(cmd, cwd=REPO_DIR, env=env), port)


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
             r.get("error_message", ""), json.dumps(r["error_details"]) if "error_details" in r else None, now,
             None)  # encrypted: NULL, plain
        )  # fmt: skip
    ensure_partitions(account.retention_days, {row[3] for row in rows})
    t0 = time.perf_counter()
    sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    return time.perf_counter() - t0


def run_ingest_bench(records: int = 50_000, rounds: int = 3, port: int = 0) -> dict:
    """Records/s of HTTP ingest (2 clients into one account, and into two accounts) and of
    COPY of the same rows, in `rounds` rounds (HTTP one account, then COPY of those rows,
    then HTTP two accounts; after an untimed warm-up of each), and the medians of the rounds'
    ratios. Everything it inserted is deleted at the end (see cleanup)."""
    from console.models import Account, ApiToken, TokenScope
    from logs.models import ApiKey

    records = max(BATCH * CLIENTS, records // (BATCH * CLIENTS) * BATCH * CLIENTS)
    rng = random.Random(7)
    run = f"ib{secrets.token_hex(4)}"  # every request_id this run sends starts with it
    # Two mid-sized accounts of the loaded data (their indexes and partitions are warm-ish
    # and realistic), created if the database is empty of them.
    accounts = list(Account.objects.filter(slug__in=["bench-020", "bench-021"]).order_by("slug"))
    created = []
    if len(accounts) < 2:
        accounts = []
        for slug in ("bench-ingest-a", "bench-ingest-b"):
            account, new = Account.objects.get_or_create(slug=slug, defaults={"name": slug, "tier": "enterprise"})
            accounts.append(account)
            created += [account] if new else []
    before = snapshot(accounts)
    started = datetime.now(UTC)
    tokens = [ApiToken.generate(account=a, scope=TokenScope.INGEST, name="bench") for a in accounts]
    secrets_ = [secret for _, secret in tokens]
    keys = {a.pk: list(ApiKey.objects.filter(account=a).values_list("identifier", flat=True)) or ["bench"]
            for a in accounts}  # fmt: skip
    # Masked secrets cannot be sent back as they are; send aliases (as LiteLLM does) only.
    keys = {pk: [k for k in ks if "…" not in k] or ["bench-alias"] for pk, ks in keys.items()}

    def bodies_for(account, n, prefix):
        recs = make_records(n, keys[account.pk], rng, f"{run}-{prefix}")
        return recs, [json.dumps(recs[i : i + BATCH]).encode() for i in range(0, n, BATCH)]

    from django.db import connection

    out_rounds = []
    try:
        port = port or free_port()
        server = start_server(port)
        try:
            # Warm-up (not timed) of both sides: each worker imports, connects and caches its
            # partitions; this process's COPY path (and the plain table) gets its first run.
            warm_records, warm = bodies_for(accounts[0], BATCH * 4, "warm")
            http_ingest(port, [(secrets_[0], warm[:2]), (secrets_[0], warm[2:])])
            copy_rows(accounts[0], warm_records)
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS bench_copy_plain")
                cursor.execute("CREATE TABLE bench_copy_plain (LIKE logs_requestlog INCLUDING DEFAULTS)")
            copy_rows(accounts[0], warm_records, table="bench_copy_plain")
            for number in range(rounds):
                # HTTP and COPY of the same rows one after the other in each round: a busy
                # moment of the shared machine then hits both sides of one round alike.
                one_records, one_bodies = bodies_for(accounts[0], records, f"one{number}")
                half = len(one_bodies) // 2
                one_s = http_ingest(port, [(secrets_[0], one_bodies[:half]), (secrets_[0], one_bodies[half:])])
                copy_s = copy_rows(accounts[0], one_records)
                plain_s = copy_rows(accounts[0], one_records, table="bench_copy_plain")
                with connection.cursor() as cursor:
                    cursor.execute("TRUNCATE bench_copy_plain")
                _, a_bodies = bodies_for(accounts[0], records // 2, f"two{number}")
                _, b_bodies = bodies_for(accounts[1], records // 2, f"two{number}")
                two_s = http_ingest(port, [(secrets_[0], a_bodies), (secrets_[1], b_bodies)])
                out_rounds.append(
                    {"http_rps": records / one_s, "http_two_accounts_rps": records / two_s,
                     "copy_rps": records / copy_s, "copy_plain_table_rps": records / plain_s}
                )  # fmt: skip
                r = out_rounds[-1]
                print(
                    f"  round {number + 1}: HTTP {r['http_rps']:,.0f}/s, two accounts {r['http_two_accounts_rps']:,.0f}"
                    f"/s, COPY {r['copy_rps']:,.0f}/s: ratio {r['http_rps'] / r['copy_rps']:.0%}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_copy_plain")
        deleted = cleanup(accounts, run, before, created, [token for token, _ in tokens], started)
        print(f"  cleanup: deleted the {deleted:,} rows this run inserted (request_id {run}-*, copy-{run}-*)")
    med = {key: statistics.median(r[key] for r in out_rounds) for key in out_rounds[0]}
    result = {
        "records": records,
        "batch": BATCH,
        "clients": CLIENTS,
        "rounds": out_rounds,
        **med,
        # The verdicts: the median of the rounds' own ratios (not the best round).
        "ratio": statistics.median(r["http_rps"] / r["copy_rps"] for r in out_rounds),
        "ratio_two_accounts": statistics.median(r["http_two_accounts_rps"] / r["copy_rps"] for r in out_rounds),
    }
    print(
        f"ingest {records:,} records a round in batches of {BATCH:,}, {CLIENTS} client threads, gunicorn 2 workers; "
        f"medians of {len(out_rounds)} rounds:\n"
        f"  HTTP, one account:   {result['http_rps']:>9,.0f} records/s\n"
        f"  HTTP, two accounts:  {result['http_two_accounts_rps']:>9,.0f} records/s\n"
        f"  COPY, same rows:     {result['copy_rps']:>9,.0f} rows/s\n"
        f"  (COPY into a plain table, no index/FK/partitions: {result['copy_plain_table_rps']:,.0f} rows/s)\n"
        f"  ratio HTTP/COPY (median of the rounds' ratios): {result['ratio']:.0%} (one account), "
        f"{result['ratio_two_accounts']:.0%} (two)\n",
        flush=True,
    )
    return result


def snapshot(accounts) -> dict:
    """What the cleanup compares with: the accounts' ApiKey / AccountModel ids, whether they
    had rollups and a RollupState."""
    from analytics.models import RollupState, UsageQuarter
    from logs.models import AccountModel, ApiKey

    pks = [a.pk for a in accounts]
    return {
        "api_keys": set(ApiKey.objects.filter(account_id__in=pks).values_list("pk", flat=True)),
        "models": set(AccountModel.objects.filter(account_id__in=pks).values_list("pk", flat=True)),
        "rollups": {a.pk: UsageQuarter.objects.filter(account=a).exists() for a in accounts},
        "state": set(RollupState.objects.filter(account_id__in=pks).values_list("account_id", flat=True)),
    }


def cleanup(accounts, run: str, before: dict, created: list, tokens: list, started: datetime) -> int:
    """Delete what this run inserted, and only that: its rows (by request_id prefix, in the
    two accounts), its tokens, the ApiKey / AccountModel rows and accounts it created; then
    the rollups of the days it touched are rebuilt from the raw rows left (or, for an account
    that had no rollups, its rollup rows go), so the next run finds the database as it was."""
    from django.db import connection

    from analytics import models as rollup_models
    from analytics.rollups import rebuild
    from console.models import ApiToken
    from logs.models import AccountModel, ApiKey

    pks = [a.pk for a in accounts]
    from logs.guard import allow_log_writes

    # The bench's own synthetic rows: an operator's deletion, so it says so (logs.guard).
    with allow_log_writes("deletion"), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM logs_requestlog WHERE account_id = ANY(%s) AND (request_id LIKE %s OR request_id LIKE %s)",
            [pks, f"{run}-%", f"copy-{run}-%"],
        )
        deleted = cursor.rowcount
    ApiToken.objects.filter(pk__in=[t.pk for t in tokens]).delete()
    ApiKey.objects.filter(account_id__in=pks).exclude(pk__in=before["api_keys"]).delete()
    AccountModel.objects.filter(account_id__in=pks).exclude(pk__in=before["models"]).delete()
    for account in accounts:
        if account in created:
            continue
        if before["rollups"][account.pk]:
            zone = account.zone
            # The records' timestamps lie within the hour before they were made.
            first = (started - timedelta(hours=1, minutes=5)).astimezone(zone).date()
            last = datetime.now(UTC).astimezone(zone).date()
            rebuild(account, first, last)
        else:
            for model in (rollup_models.UsageQuarter, rollup_models.UsageHour, rollup_models.UsageSlice,
                          rollup_models.UsageSliceDay, rollup_models.UsageDay, rollup_models.UsageMinute):  # fmt: skip
                model.objects.filter(account=account).delete()
            if account.pk not in before["state"]:
                rollup_models.RollupState.objects.filter(account=account).delete()
    for account in created:
        account.delete()
    return deleted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000, help="records per round")
    parser.add_argument("--rounds", type=int, default=3, help="HTTP + COPY rounds, interleaved (median)")
    parser.add_argument("--port", type=int, default=0, help="port for gunicorn (default: a free one)")
    args = parser.parse_args()
    setup_django()
    from django.conf import settings

    settings.DEBUG = False
    run_ingest_bench(records=args.records, rounds=args.rounds, port=args.port)


if __name__ == "__main__":
    main()
