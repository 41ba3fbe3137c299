"""The per-account ingest lock (PostgreSQL)."""

# hashtext('meterlog.ingest'): the first key of the two-key advisory lock, so these locks
# never collide with other advisory locks of the application.
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('meterlog.ingest'), %s)"


def lock_account_ingest(cursor, account) -> None:
    """Hold the account's ingest lock until the transaction ends: an ingest batch, a rollup
    rebuild window and a compaction of one account never interleave."""
    cursor.execute(_LOCK_SQL, [account.pk])
