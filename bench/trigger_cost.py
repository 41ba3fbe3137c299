"""What the no-hand-writes trigger (logs/migrations/0010_no_hand_writes.py) costs the purge.

On a retention class of its own (2 days, one weekly leaf partition of --rows rows, the real
schema and indexes), EXPLAIN ANALYZE of a purge-shaped batch DELETE (5,000 rows by ctid, as
logs.retention.deletes does) and of one DELETE of every row, each inside
allow_log_writes("purge") and rolled back, for: no trigger, the statement-level trigger,
and a row-level trigger with a WHEN clause (the alternative it was chosen over). Variants
interleave over rounds; medians. Afterwards it drops its class table and its account.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<name>bench<...> .venv/bin/python bench/trigger_cost.py

Never run against meterlog_bench (it refuses): it writes and drops tables.
"""

import argparse
import re
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database_url, database_name, setup_django

DAYS = 2  # a retention class no account uses
TRIGGER = "logs_requestlog_no_hand_writes"
WHEN = "WHEN (coalesce(current_setting('meterlog.allow_delete', true), '') NOT IN ('purge','move','deletion','scrub'))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if database_name(bench_database_url()) == "meterlog_bench":
        sys.exit("not on meterlog_bench: this script writes and drops tables")
    setup_django()
    from django.db import connection, transaction

    from console.models import Account
    from logs.guard import allow_log_writes
    from logs.partitions import class_table, create_partitions, forget_known_partitions, period_start, period_table

    start = period_start(DAYS, datetime.now(UTC))
    leaf = period_table(DAYS, start)
    account = Account.objects.create(slug="trigger-cost", name="trigger cost", retention_days_override=DAYS)
    create_partitions(DAYS, [start])
    cursor = connection.cursor()
    try:
        cursor.execute(
            f"""INSERT INTO {leaf} (account_id, retention_days, request_id, "timestamp", model, status,
                prompt_tokens, completion_tokens, total_tokens, cost, api_key, user_agent, request_params, tags,
                error_code, error_message, ingested_at)
              SELECT %s, {DAYS}, 'tc-' || g, %s::timestamptz + (g || ' ms')::interval, 'gpt-4o-mini', 'success',
                100, 20, 120, 0.000027, 'team-' || (g %% 7), 'gw/1', '{{"temperature": 0.2}}', '{{}}', '', '', now()
              FROM generate_series(1, %s) g""",
            [account.pk, start, args.rows],
        )
        cursor.execute(f"VACUUM ANALYZE {leaf}")
        cursor.execute(
            "CREATE FUNCTION trigger_cost_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$"
        )
        statements = {
            "batch of 5,000": f"DELETE FROM {leaf} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {leaf} "
            f"WHERE account_id = {account.pk} AND \"timestamp\" < now() + interval '1 day' LIMIT 5000))",
            f"all {args.rows:,}": f"DELETE FROM {leaf} WHERE account_id = {account.pk}",
        }
        times = {}
        for _ in range(args.rounds):
            for variant in ("none", "statement", "row (WHEN)"):
                for label, sql in statements.items():
                    with allow_log_writes("purge"):
                        if variant != "statement":
                            cursor.execute(f"ALTER TABLE {leaf} DISABLE TRIGGER {TRIGGER}")
                        if variant == "row (WHEN)":
                            cursor.execute(f"CREATE TRIGGER trigger_cost_row BEFORE DELETE ON {leaf} FOR EACH ROW "
                                           f"{WHEN} EXECUTE FUNCTION trigger_cost_row()")  # fmt: skip
                        cursor.execute("EXPLAIN (ANALYZE) " + sql)
                        plan = "\n".join(row[0] for row in cursor.fetchall())
                        transaction.set_rollback(True)
                    ms = float(re.search(r"Execution Time: ([\d.]+)", plan).group(1))
                    trigger_ms = sum(float(t) for t in re.findall(r"Trigger [^:]+: time=([\d.]+)", plan))
                    times.setdefault((label, variant), []).append((ms, trigger_ms))
        for (label, variant), values in times.items():
            print(f"{label:15s} {variant:11s} DELETE {statistics.median(v[0] for v in values):7.1f} ms"
                  f"   trigger as reported {statistics.median(v[1] for v in values):5.2f} ms")  # fmt: skip
    finally:
        cursor.execute("DROP FUNCTION IF EXISTS trigger_cost_row() CASCADE")
        cursor.execute(f"DROP TABLE IF EXISTS {class_table(DAYS)} CASCADE")
        forget_known_partitions()
        account.delete()


if __name__ == "__main__":
    main()
