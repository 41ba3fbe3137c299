"""Retention of the request log (issue 15): the purge of rows past each account's period.

`selectors` reads the cutoffs and partitions, `deletes` holds the purge's only writes to
the log (batched DELETEs, partition drops), `services.purge_expired_logs` runs a purge and
records it (`models.PurgeRun`); the command `purge_logs` and the daily beat task
`logs.tasks.purge_expired_logs` call it.
"""
