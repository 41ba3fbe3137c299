"""Load N realistic request-log rows into the bench database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/generate.py --rows 1000000 --reset

Shape of the data (see bench/README.md):
- ~500 accounts, Zipf-like sizes; tiers standard (30 d) / professional (90 d) / enterprise
  (365 d) plus a few 180-day overrides, so rows land in four LIST partitions; each account's
  rows span its retention window ending now (as if the purge had run).
- arrivals: an hourly weekday/weekend diurnal curve with a year of growth, and inside each
  hour the per-second arrival profile of the Azure LLM inference trace (bursts included);
  prompt/completion token pairs sampled from the same trace (bench/data, CC-BY 4.0).
- 16 models with skewed use (one unpriced, so NULL costs exist), 1-50 API keys per account
  (aliases and masked secrets), ~5% errors (per-account rate 1-12%) with codes and messages.

Rows are generated inside PostgreSQL (INSERT ... SELECT generate_series), one partition
period at a time and sorted by time, so each partition's heap is in arrival order like a
real append-only log. Secondary indexes and the account FK are dropped during the load and
rebuilt afterwards (exactly as the migration defined them), then VACUUM ANALYZE.
"""

import argparse
import csv
import hashlib
import json
import math
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DATA_DIR, bench_database_url, database_name, maintenance_url, setup_django

# (model, weight, input $/Mtok, output $/Mtok, cached input $/Mtok, reasoning model)
# Prices are list prices at the time of writing; None = unpriced (cost stays NULL).
MODELS = [
    ("gpt-4o-mini", 30, 0.15, 0.60, 0.075, False),
    ("gpt-4.1-mini", 16, 0.40, 1.60, 0.10, False),
    ("claude-sonnet-4-20250514", 12, 3.00, 15.00, 0.30, False),
    ("gpt-4o", 9, 2.50, 10.00, 1.25, False),
    ("gemini-2.0-flash", 7, 0.10, 0.40, 0.025, False),
    ("gpt-4.1", 5, 2.00, 8.00, 0.50, False),
    ("claude-3-5-haiku-latest", 4.5, 0.80, 4.00, 0.08, False),
    ("o4-mini", 4, 1.10, 4.40, 0.275, True),
    ("text-embedding-3-small", 3.5, 0.02, 0.0, None, False),
    ("gemini-2.5-pro", 2.5, 1.25, 10.00, 0.31, True),
    ("gpt-4.1-nano", 2, 0.10, 0.40, 0.025, False),
    ("mistral-large-latest", 1.5, 2.00, 6.00, None, False),
    ("o3-mini", 1.2, 1.10, 4.40, 0.55, True),
    ("claude-opus-4-1-20250805", 0.8, 15.00, 75.00, 1.50, False),
    ("llama-3.1-70b-instruct", 0.6, 0.88, 0.88, None, False),
    ("acme-finetune-v2", 0.4, None, None, None, False),
]

# (error_code, weight, message, http status)
ERRORS = [
    ("rate_limit_exceeded", 45, "Rate limit reached for requests per minute. Please try again in 20s.", 429),
    ("context_length_exceeded", 14, "This model's maximum context length is 128000 tokens.", 400),
    ("internal_server_error", 12, "The server had an error while processing your request.", 500),
    ("timeout", 10, "Request timed out after 600 seconds.", 504),
    ("invalid_request_error", 8, "Invalid value for 'temperature': expected a number <= 2.", 400),
    ("content_filter", 6, "The response was filtered due to the prompt triggering the content policy.", 400),
    ("service_unavailable", 5, "The engine is currently overloaded, please try again later.", 503),
]

USER_AGENTS = [
    "OpenAI/Python 1.54.3",
    "litellm/1.108.7",
    "Anthropic/Python 0.39.0",
    "OpenAI/NodeJS 4.71.1",
    "langchain-openai/0.2.9",
    "curl/8.5.0",
    "Go-http-client/2.0",
]
TEAMS = ["search", "support", "analytics", "platform", "growth", "billing"]
KEY_WORDS = ["prod", "staging", "backend", "batch", "chatbot", "eval", "etl", "mobile", "web", "ci"]
TIERS = [("standard", 30), ("professional", 90), ("enterprise", 365)]
OVERRIDE_DAYS = 180


def provider_of(model: str) -> str:
    for prefix, provider in (
        ("gpt", "openai"),
        ("o", "openai"),
        ("text-", "openai"),
        ("claude", "anthropic"),
        ("gemini", "gemini"),
        ("mistral", "mistral"),
        ("llama", "together_ai"),
    ):
        if model.startswith(prefix):
            return provider
    return "custom"


def load_trace():
    """Per-second arrival weights of the Azure hour and its (prompt, completion) pairs."""
    with open(DATA_DIR / "azure_arrivals_per_second.csv") as f:
        counts = [int(r["code"]) + int(r["conv"]) for r in csv.DictReader(f)]
    span = max(i for i, c in enumerate(counts) if c) + 1  # the trace covers ~58 of 60 minutes
    with open(DATA_DIR / "azure_token_pairs.csv") as f:
        pairs = [(int(r["context_tokens"]), int(r["generated_tokens"])) for r in csv.DictReader(f)]
    return counts[:span], pairs


def lower_bounds(weights) -> list[float]:
    """Cumulative lower bounds in [0, 1) for width_bucket(random(), bounds): bucket i has
    probability weights[i] / sum."""
    total = float(sum(weights))
    out, acc = [], 0.0
    for w in weights:
        out.append(acc / total)
        acc += w
    return out


def hour_weight(moment: datetime, year_start: datetime, rng: random.Random) -> float:
    """Traffic of one UTC hour: a weekday office-hours peak (Europe + US overlap), a lower
    weekend, and growth over the year, with a little day-to-day noise."""
    h = moment.hour + 0.5
    diurnal = 0.22 + 0.78 * math.exp(-(((h - 15.0) / 4.5) ** 2))
    weekend = 0.45 if moment.weekday() >= 5 else 1.0
    growth = 0.55 + 0.45 * (moment - year_start) / timedelta(days=365)
    return diurnal * weekend * growth * rng.uniform(0.9, 1.1)


def plan_accounts(n_accounts: int, rng: random.Random):
    """Sizes (row shares) by Zipf rank, tiers at random except the largest (enterprise)."""
    shares = [1.0 / (rank**1.05) for rank in range(1, n_accounts + 1)]
    total = sum(shares)
    plans = []
    for rank, share in enumerate(shares, start=1):
        roll = rng.random()
        tier = "enterprise" if rank == 1 or roll < 0.2 else "professional" if roll < 0.5 else "standard"
        override = None
        if rank in (7, 40, 150):  # negotiated retention: a fourth LIST partition class
            tier, override = "enterprise", OVERRIDE_DAYS
        n_keys = max(1, min(50, round(55 / rank**0.45 * rng.uniform(0.6, 1.2))))
        plans.append(
            {
                "rank": rank,
                "share": share / total,
                "tier": tier,
                "override": override,
                "n_keys": n_keys,
                "error_rate": rng.choice([0.01, 0.02, 0.03, 0.04, 0.05, 0.05, 0.06, 0.08, 0.12]),
            }
        )
    return plans


def key_identifiers(slug: str, n_keys: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(identifier, fingerprint, display name) per key; a third look like provider secrets
    and are stored masked, the rest are aliases as LiteLLM sends them."""
    from logs.models import ApiKey, fingerprint

    keys, seen = [], set()
    while len(keys) < n_keys:
        if rng.random() < 0.33:
            raw = "sk-" + hashlib.sha256(f"{slug}-{len(keys)}-{rng.random()}".encode()).hexdigest()[:40]
            display = ""
        else:
            raw = f"{rng.choice(KEY_WORDS)}-{rng.choice(TEAMS)}-{len(keys) + 1}"
            display = raw.replace("-", " ").title()
        ident = ApiKey.identifier_for(raw)
        if ident not in seen:
            seen.add(ident)
            keys.append((ident, fingerprint(raw), display))
    return keys


def reset_database(url: str) -> None:
    import psycopg

    name = database_name(url)
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"created database {name}")


def ensure_database(url: str) -> None:
    import psycopg

    name = database_name(url)
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def create_accounts(plans, now: datetime, rng: random.Random):
    from console.models import Account
    from logs.models import AccountModel, ApiKey

    accounts = []
    for plan in plans:
        slug = f"bench-{plan['rank']:03d}"
        account = Account.objects.create(
            slug=slug,
            name=f"Bench customer {plan['rank']:03d}",
            tier=plan["tier"],
            retention_days_override=plan["override"],
            timezone=rng.choice(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
        )
        plan["account_id"] = account.pk
        plan["slug"] = slug
        plan["retention"] = account.retention_days
        plan["keys"] = key_identifiers(slug, plan["n_keys"], rng)
        start = now - timedelta(days=account.retention_days)
        ApiKey.objects.bulk_create(
            ApiKey(account=account, identifier=i, fingerprint=f, display_name=d, first_seen=start, last_seen=now)
            for i, f, d in plan["keys"]
        )
        AccountModel.objects.bulk_create(
            AccountModel(account=account, model=m[0], first_seen=start, last_seen=now) for m in MODELS
        )
        accounts.append(account)
    return accounts


INSERT_SQL = """
INSERT INTO logs_requestlog (
    account_id, retention_days, request_id, "timestamp", model, status, prompt_tokens,
    completion_tokens, total_tokens, cached_tokens, reasoning_tokens, cost, price_id, api_key,
    ip_address, user_agent, latency_ms, request_params, tags, error_code, error_message,
    error_details, ingested_at)
SELECT account_id, %(retention)s, request_id, ts, model, status, prompt, completion,
       prompt + completion, cached, reasoning,
       CASE WHEN is_err THEN 0
            WHEN p_in IS NULL THEN NULL
            ELSE ((prompt - coalesce(cached, 0)) * p_in + coalesce(cached, 0) * coalesce(p_cached, p_in)
                  + completion * p_out) / 1e6 END::numeric(24, 12),
       NULL, api_key, ip::inet, user_agent, latency, request_params, tags,
       CASE WHEN is_err THEN err_code ELSE '' END,
       CASE WHEN is_err THEN err_msg ELSE '' END,
       CASE WHEN is_err THEN jsonb_build_object('http_status', err_http, 'llm_provider', provider) END,
       ts + (r1 * 3) * interval '1 second'
FROM (
    SELECT g.*, k.identifier AS api_key,
           (%(account_ids)s::bigint[])[a] AS account_id,
           'chatcmpl-' || substr(md5(r1::text || r2::text), 1, 24) AS request_id,
           to_timestamp(%(start_epoch)s + (h - 1) * 3600 + (s - 1 + r1) * %(second_scale)s) AS ts,
           (%(model_names)s::text[])[m] AS model,
           CASE WHEN is_err THEN 'error' ELSE 'success' END AS status,
           CASE WHEN is_err AND e = 1 THEN 0 ELSE ctx END AS prompt,
           CASE WHEN is_err THEN 0 WHEN (%(model_names)s::text[])[m] LIKE 'text-embedding%%' THEN 0
                ELSE gen END AS completion,
           CASE WHEN NOT is_err AND r3 < 0.3 THEN floor(ctx * r4 * 0.8)::int END AS cached,
           CASE WHEN NOT is_err AND (%(reasoning)s::bool[])[m] THEN floor(gen * (0.5 + r4))::int END AS reasoning,
           (%(p_in)s::float8[])[m] AS p_in,
           (%(p_out)s::float8[])[m] AS p_out,
           (%(p_cached)s::float8[])[m] AS p_cached,

           CASE WHEN a %% 9 = 0
                THEN '2001:db8:' || to_hex(a) || '::' || to_hex(1 + floor(r5 * 4)::int)
                ELSE '10.' || (a / 250) || '.' || (a %% 250) || '.' || (1 + floor(r5 * 6)::int) END AS ip,
           (%(user_agents)s::text[])[1 + floor(r6 * r6 * %(n_user_agents)s)::int] AS user_agent,
           CASE WHEN is_err THEN 20 + floor(r7 * 400)::int
                ELSE (180 + gen * 14 + ctx * 0.04 * (0.6 + r7))::int END AS latency,
           jsonb_build_object('temperature', round((r3 * 1.2)::numeric, 1),
                              'max_tokens', (ARRAY[256, 512, 1024, 2048, 4096])[1 + floor(r4 * 5)::int],
                              'stream', r5 < 0.35) AS request_params,
           CASE WHEN r6 < 0.2 THEN '{}'::jsonb
                ELSE jsonb_build_object('env', CASE WHEN r7 < 0.85 THEN 'prod' ELSE 'staging' END,
                                        'team', (%(teams)s::text[])[1 + floor(r2 * %(n_teams)s)::int]) END AS tags,
           (%(err_codes)s::text[])[e] AS err_code,
           (%(err_msgs)s::text[])[e] AS err_msg,
           (%(err_http)s::int[])[e] AS err_http,
           (%(providers)s::text[])[m] AS provider
    FROM (
        SELECT a, h, s, m, t, e, r1, r2, r3, r4, r5, r6, r7,
               (%(ctx)s::int[])[t] AS ctx, (%(gen)s::int[])[t] AS gen,
               r_err < (%(error_rates)s::float8[])[a] AS is_err,
               1 + floor(power(r_key, 2.2) * (%(n_keys)s::int[])[a])::int AS key_no
        FROM (
            SELECT width_bucket(random(), %(account_lb)s::float8[]) AS a,
                   width_bucket(random(), %(hour_lb)s::float8[]) AS h,
                   width_bucket(random(), %(second_lb)s::float8[]) AS s,
                   width_bucket(random(), %(model_lb)s::float8[]) AS m,
                   width_bucket(random(), %(error_lb)s::float8[]) AS e,
                   1 + floor(random() * %(n_pairs)s)::int AS t,
                   random() AS r_err, random() AS r_key,
                   random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                   random() AS r5, random() AS r6, random() AS r7
            FROM generate_series(1, %(n)s)
        ) raw
    ) g
    JOIN bench_key k ON k.key_account = g.a AND k.key_no = g.key_no
) x
ORDER BY ts
"""


def drop_secondary_indexes(cursor) -> dict:
    """Drop the parent's secondary indexes and the account FK; returns their definitions."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'logs_requestlog' "
        "AND indexname <> 'logs_requestlog_pkey'"
    )
    indexes = dict(cursor.fetchall())
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'logs_requestlog'::regclass AND contype = 'f'"
    )
    fks = dict(cursor.fetchall())
    for name in fks:
        cursor.execute(f"ALTER TABLE logs_requestlog DROP CONSTRAINT {name}")
    for name in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return {"indexes": indexes, "fks": fks}


def restore_secondary_indexes(cursor, saved: dict) -> None:
    cursor.execute("SET maintenance_work_mem = '512MB'")
    for name, definition in saved["indexes"].items():
        t0 = time.perf_counter()
        # pg_indexes shows the parent's index as "ON ONLY" (parent alone, left invalid);
        # without ONLY it is built on every partition and attached.
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
        print(f"  index {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    for name, definition in saved["fks"].items():
        cursor.execute(f"ALTER TABLE logs_requestlog ADD CONSTRAINT {name} {definition}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--reset", action="store_true", help="drop and re-create the bench database first")
    parser.add_argument("--keep-indexes", action="store_true", help="load with every index in place (slower)")
    args = parser.parse_args()

    url = bench_database_url()
    if args.reset:
        reset_database(url)
    else:
        ensure_database(url)
    setup_django()

    from django.core.management import call_command
    from django.db import connection

    from console.models import Account
    from logs.partitions import ensure_partitions, next_period_start, period_start

    call_command("migrate", verbosity=0)
    if Account.objects.exists():
        sys.exit("the bench database already has accounts; pass --reset to start over")

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    end_hour = now.replace(minute=0, second=0, microsecond=0)  # rows stop at the last full hour
    year_start = end_hour - timedelta(days=365)
    hours = [year_start + timedelta(hours=i) for i in range(365 * 24)]
    weights = [hour_weight(h, year_start, rng) for h in hours]
    counts, pairs = load_trace()
    second_lb = lower_bounds([c + 0.05 for c in counts])  # a trickle in quiet seconds

    plans = plan_accounts(args.accounts, rng)
    t0 = time.perf_counter()
    create_accounts(plans, now, rng)
    print(f"{len(plans)} accounts, {sum(p['n_keys'] for p in plans)} API keys ({time.perf_counter() - t0:.1f} s)")

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_key")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_key "
            "(key_account int, key_no int, identifier text, PRIMARY KEY (key_account, key_no))"
        )

    classes = sorted({p["retention"] for p in plans})
    total_share = {r: sum(p["share"] for p in plans if p["retention"] == r) for r in classes}
    common = {
        "second_lb": second_lb,
        "second_scale": 3600.0 / len(counts),
        "model_names": [m[0] for m in MODELS],
        "providers": [provider_of(m[0]) for m in MODELS],
        "model_lb": lower_bounds([m[1] for m in MODELS]),
        "p_in": [m[2] for m in MODELS],
        "p_out": [m[3] for m in MODELS],
        "p_cached": [m[4] for m in MODELS],
        "reasoning": [m[5] for m in MODELS],
        "error_lb": lower_bounds([e[1] for e in ERRORS]),
        "err_codes": [e[0] for e in ERRORS],
        "err_msgs": [e[2] for e in ERRORS],
        "err_http": [e[3] for e in ERRORS],
        "ctx": [p[0] for p in pairs],
        "gen": [p[1] for p in pairs],
        "n_pairs": len(pairs),
        "user_agents": USER_AGENTS,
        "n_user_agents": len(USER_AGENTS),
        "teams": TEAMS,
        "n_teams": len(TEAMS),
    }

    with connection.cursor() as cursor:
        saved = None if args.keep_indexes else drop_secondary_indexes(cursor)
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SELECT setseed(0.42)")
        loaded, load_seconds = 0, 0.0
        try:
            for retention in classes:
                members = [p for p in plans if p["retention"] == retention]
                class_rows = round(args.rows * total_share[retention])
                window = [
                    (h, w) for h, w in zip(hours, weights, strict=True) if h >= end_hour - timedelta(days=retention)
                ]
                window_weight = sum(w for _, w in window)
                cursor.execute("TRUNCATE bench_key")
                with cursor.copy("COPY bench_key (key_account, key_no, identifier) FROM STDIN") as copy:
                    for a, plan in enumerate(members, start=1):
                        for k, (ident, _, _) in enumerate(plan["keys"], start=1):
                            copy.write_row((a, k, ident))
                params = dict(
                    common,
                    retention=retention,
                    account_ids=[p["account_id"] for p in members],
                    account_lb=lower_bounds([p["share"] for p in members]),
                    n_keys=[p["n_keys"] for p in members],
                    error_rates=[p["error_rate"] for p in members],
                )
                # One partition period at a time, sorted by time: the heap in arrival order.
                start = period_start(retention, window[0][0])
                while start < end_hour:
                    stop = next_period_start(retention, start)
                    chunk = [(h, w) for h, w in window if start <= h < stop]
                    start = stop
                    n = round(class_rows * sum(w for _, w in chunk) / window_weight)
                    if not chunk or n == 0:
                        continue
                    ensure_partitions(retention, [chunk[0][0], chunk[-1][0]])
                    t1 = time.perf_counter()
                    cursor.execute(
                        INSERT_SQL,
                        dict(
                            params,
                            n=n,
                            start_epoch=chunk[0][0].timestamp(),
                            hour_lb=lower_bounds([w for _, w in chunk]),
                        ),
                    )
                    took = time.perf_counter() - t1
                    loaded += n
                    load_seconds += took
                    print(
                        f"  r{retention} {chunk[0][0]:%Y-%m-%d}: {n:>9,} rows in {took:5.1f} s "
                        f"({n / took:,.0f} rows/s); total {loaded:,}",
                        flush=True,
                    )
        finally:
            if saved:
                t2 = time.perf_counter()
                print("rebuilding indexes and the account FK ...", flush=True)
                restore_secondary_indexes(cursor, saved)
                index_seconds = time.perf_counter() - t2
            else:
                index_seconds = 0.0
            cursor.execute("DROP TABLE IF EXISTS bench_key")
        t3 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE logs_requestlog")
        cursor.execute("VACUUM ANALYZE")
        vacuum_seconds = time.perf_counter() - t3
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]

    total = load_seconds + index_seconds
    print(
        f"\nloaded {loaded:,} rows: insert {load_seconds:.1f} s ({loaded / load_seconds:,.0f} rows/s), "
        f"indexes {index_seconds:.1f} s, together {loaded / total:,.0f} rows/s; "
        f"VACUUM ANALYZE {vacuum_seconds:.1f} s; database {size}"
    )
    summary = {
        "rows": loaded,
        "insert_seconds": round(load_seconds, 1),
        "index_seconds": round(index_seconds, 1),
        "vacuum_seconds": round(vacuum_seconds, 1),
        "rows_per_second": round(loaded / total),
        "database_size": size,
        "generated_at": now.isoformat(),
        "seed": args.seed,
    }
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb)")
        cursor.execute(
            "INSERT INTO bench_meta VALUES ('load', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [json.dumps(summary)],
        )


if __name__ == "__main__":
    main()
