"""Nobody deletes or edits a stored log by hand: the one way a writer says it may.

On PostgreSQL a trigger on every table of the request log's partition tree (migration
0010) refuses any DELETE or UPDATE unless the transaction has set
`meterlog.allow_delete` to one of ALLOWED_WRITERS. `allow_log_writes(reason)` is the only
place that sets it: every code path that rewrites or deletes log rows runs inside it.
Anything else (a raw DELETE in psql, a stray `.update()` or `.delete()`) fails with the
trigger's error, which names this rule.

The flag is a guard against accidents and forgotten code paths, not against a database
superuser: whoever can run SQL can set it. TRUNCATE and DROP TABLE are not covered (the
purge drops detached partitions; Django's test flush truncates).

On SQLite there is no trigger and this is a plain `transaction.atomic()`.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

SETTING = "meterlog.allow_delete"

# The trigger's list (logs/migrations/0010_no_hand_writes.py, replaced by 0012_encryption.py)
# must say the same.
ALLOWED_WRITERS = (
    "purge",  # the retention purge (logs.retention)
    "move",  # a retention class move after a period change (issue 15, not built yet)
    "deletion",  # an approved deletion request (logs.deletions); bench clean-ups
    "scrub",  # manage.py scrub_secrets re-masking stored rows (logs.scrub)
    "rotate",  # manage.py rotate_encryption_key re-encrypting rows with the newest key (logs.rotation)
)


@contextmanager
def allow_log_writes(reason: str) -> Iterator[None]:
    """A transaction (or savepoint) in which `reason`, one of ALLOWED_WRITERS, may DELETE and
    UPDATE log rows. The flag is transaction-local; when this block is nested in a longer
    transaction it is put back as it was on the way out, so it does not leak past the
    block."""
    if reason not in ALLOWED_WRITERS:
        raise ValueError(f"not an allowed log writer: {reason!r} (one of {', '.join(ALLOWED_WRITERS)})")
    with transaction.atomic():
        if connection.vendor != "postgresql":
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting(%s, true)", [SETTING])
            previous = cursor.fetchone()[0] or ""
            cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, reason])
        yield
        # On an exception, or a block marked for rollback (set_rollback), rolling the block
        # back undoes the SET LOCAL anyway, and no query may run before it.
        if not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, previous])
