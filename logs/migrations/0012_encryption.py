"""Log encryption (issue 15): the row flag, a user_agent long enough for a token, and the
key rotation as an allowed writer.

- `encrypted` is nullable without a default: ADD COLUMN is a catalog change on PostgreSQL
  (no partition is rewritten) and a plain ALTER TABLE ADD COLUMN on SQLite (no rebuild).
- user_agent varchar(512) -> text: binary-coercible on PostgreSQL, so ALTER COLUMN TYPE
  rewrites no partition (tests/logs/test_encryption_migration.py compares relfilenodes). On
  SQLite the declared length was never enforced, and Django's AlterField would rebuild the
  whole table there: the column is left as it is and only the state changes.
- logs_refuse_hand_writes() gains "rotate" (logs.guard.ALLOWED_WRITERS): manage.py
  rotate_encryption_key re-encrypts stored rows inside allow_log_writes("rotate").
"""

from django.db import migrations, models

_WRITERS = "'purge', 'move', 'deletion', 'scrub'"
_HINT = "scrub_secrets write to stored logs"


def _refuse_function(writers: str, hint: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION logs_refuse_hand_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The writers of logs.guard.ALLOWED_WRITERS.
    IF coalesce(current_setting('meterlog.allow_delete', true), '') IN ({writers}) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = format('%s on %s refused: nobody deletes or edits stored logs by hand (Meterlog retention rule)',
                         TG_OP, TG_TABLE_NAME),
        HINT = 'Only the retention purge, a retention class move, an approved deletion request and '
               '{hint}; each sets meterlog.allow_delete in its transaction '
               '(logs.guard.allow_log_writes).';
END
$$
"""


FORWARD_FUNCTION = _refuse_function(
    f"{_WRITERS}, 'rotate'", "scrub_secrets and rotate_encryption_key write to stored logs"
)
BACKWARD_FUNCTION = _refuse_function(_WRITERS, _HINT)


def _postgres(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                # No parameters: the SQL holds format() placeholders (%s) that are not psycopg's.
                schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("logs", "0011_deletion_requests")]

    operations = [
        migrations.AddField(
            model_name="requestlog",
            name="encrypted",
            field=models.BooleanField(blank=True, null=True),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="requestlog",
                    name="user_agent",
                    field=models.TextField(blank=True, default=""),
                )
            ],
            database_operations=[
                migrations.RunPython(
                    _postgres(["ALTER TABLE logs_requestlog ALTER COLUMN user_agent TYPE text"]),
                    _postgres(["ALTER TABLE logs_requestlog ALTER COLUMN user_agent TYPE varchar(512)"]),
                )
            ],
        ),
        migrations.RunPython(_postgres([FORWARD_FUNCTION]), _postgres([BACKWARD_FUNCTION])),
    ]
