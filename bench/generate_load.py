"""generate.py's database side: (re-)creating the bench database, the accounts with their
ApiKey / AccountModel rows, the INSERT ... SELECT that makes the rows inside PostgreSQL and
the secondary indexes dropped for the load and rebuilt afterwards."""

import random
import time
from datetime import datetime, timedelta

from bench.common import database_name, maintenance_url
from bench.generate_data import MODELS, key_identifiers


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
