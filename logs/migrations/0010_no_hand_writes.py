"""Nobody deletes or edits a stored log by hand (issue 15): a trigger refuses DELETE and
UPDATE on the request log unless the transaction names an allowed writer (logs.guard).

Statement-level, on every table of the partition tree. Statement-level because it costs
one function call per statement, not per row (measured on a 50,000-row batched purge
DELETE: no measurable cost; a row-level trigger added about 45%). On every table because
PostgreSQL fires a statement-level trigger only on the table the statement names (the
purge names leaf partitions) and, unlike row-level triggers, does not clone it to
partitions: logs_guard_log_partitions() adds it wherever it is missing, and
logs.partitions.create_partitions calls it in the transaction that creates a partition,
so no partition exists unguarded. INSERT, COPY and INSERT ... ON CONFLICT DO NOTHING fire
no UPDATE or DELETE trigger; DETACH PARTITION and DROP TABLE fire none either (how the
purge drops whole periods).
"""

from django.db import migrations

TRIGGER = "logs_requestlog_no_hand_writes"

FORWARD = [
    """
CREATE FUNCTION logs_refuse_hand_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The writers of logs.guard.ALLOWED_WRITERS.
    IF coalesce(current_setting('meterlog.allow_delete', true), '') IN ('purge', 'move', 'deletion', 'scrub') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = format('%s on %s refused: nobody deletes or edits stored logs by hand (Meterlog retention rule)',
                         TG_OP, TG_TABLE_NAME),
        HINT = 'Only the retention purge, a retention class move, an approved deletion request and '
               'scrub_secrets write to stored logs; each sets meterlog.allow_delete in its transaction '
               '(logs.guard.allow_log_writes).';
END
$$
""",
    f"""
CREATE FUNCTION logs_guard_log_partitions() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    rel regclass;
    added integer := 0;
BEGIN
    FOR rel IN
        SELECT tree.relid FROM pg_partition_tree('logs_requestlog') AS tree
        WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = tree.relid AND t.tgname = '{TRIGGER}')
    LOOP
        EXECUTE format('CREATE TRIGGER {TRIGGER} BEFORE DELETE OR UPDATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION logs_refuse_hand_writes()', rel);
        added := added + 1;
    END LOOP;
    RETURN added;
END
$$
""",
    "SELECT logs_guard_log_partitions()",
]

BACKWARD = [
    f"""
DO $$
DECLARE rel regclass;
BEGIN
    FOR rel IN SELECT tgrelid::regclass FROM pg_trigger WHERE tgname = '{TRIGGER}' LOOP
        EXECUTE format('DROP TRIGGER {TRIGGER} ON %s', rel);
    END LOOP;
END
$$
""",
    "DROP FUNCTION logs_guard_log_partitions()",
    "DROP FUNCTION logs_refuse_hand_writes()",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            # No parameters: the SQL holds format() placeholders (%s) that are not psycopg's.
            schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            # No parameters: the SQL holds format() placeholders (%s) that are not psycopg's.
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("logs", "0009_purge_run")]

    # RunPython rather than RunSQL: the SQL is PostgreSQL's, and SQLite has no trigger.
    operations = [migrations.RunPython(forward, backward)]
