"""The record of each retention purge run (shown read-only to operators in the admin)."""

from django.db import models
from django.utils import timezone


class PurgeStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    # The time budget ran out (or a lock timed out) before every expired row was deleted;
    # the next run goes on where this one stopped.
    PARTIAL = "partial", "Partial (the next run continues)"
    FAILED = "failed", "Failed"
    # Found still "running" by a later run that held the purge lock: its process died.
    INTERRUPTED = "interrupted", "Interrupted"


class PurgeRun(models.Model):
    """One run of the retention purge (logs.retention.services.purge_expired_logs).

    `accounts`: one entry per account looked at, {"slug", "retention_days", "cutoff",
    "deleted" (or, in a dry run, "would_delete"), "batches"}; with archive before purge also
    "archived" {"files", "rows"} or "archive_error" (its rows were kept), and "unarchived"
    (rows deleted beyond those archived). `partitions`: the partitions
    dropped (or that a dry run would drop), {"name", "rows"}. `rollups`: rows deleted per
    rollup table and the rollup cutoff."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    # The slug of an `--account` run; empty for a run over every account.
    only_account = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=PurgeStatus.choices, default=PurgeStatus.RUNNING)
    deleted = models.BigIntegerField(default=0)
    batches = models.IntegerField(default=0)
    accounts = models.JSONField(default=list, blank=True)
    partitions = models.JSONField(default=list, blank=True)
    rollups = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        app_label = "logs"
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="purgerun_started")]

    def __str__(self) -> str:
        kind = "dry run" if self.dry_run else "purge"
        return f"{kind} {self.started_at:%Y-%m-%d %H:%M} ({self.status})"
