"""A deletion request and its audit trail.

A request is never deleted (the PostgreSQL trigger of logs migration 0011 refuses it too);
its events are never edited or deleted, in Django (below) and in the database (same
trigger). The request row itself changes state as it walks filed -> approved / rejected ->
running -> done / failed."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.append_only import AppendOnlyModel
from console.models import Account

MAX_REQUEST_IDS = 1000


class DeletionStatus(models.TextChoices):
    FILED = "filed", "Filed (waiting for an operator)"
    APPROVED = "approved", "Approved (queued)"
    REJECTED = "rejected", "Rejected"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DeletionAction(models.TextChoices):
    FILED = "filed", "Filed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    STARTED = "started", "Started"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class KeptQuerySet(models.QuerySet):
    def delete(self):
        raise PermissionError("deletion requests are kept: they are the record of what was deleted")


class DeletionRequest(models.Model):
    """An owner's request to delete the account's logs in [start, end) (UTC), optionally only
    those of one API key (exact) and/or with one of `request_ids`."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    api_key = models.CharField(max_length=255, blank=True, default="")
    request_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=DeletionStatus.choices, default=DeletionStatus.FILED)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    rows_deleted = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = KeptQuerySet.as_manager()

    class Meta:
        app_label = "logs"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="delreq_acct_created"),
            models.Index(fields=["status", "created_at"], name="delreq_status_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(start__lt=models.F("end")), name="delreq_start_lt_end")
        ]

    def __str__(self) -> str:
        return f"deletion request {self.pk} ({self.status})"

    def delete(self, *args, **kwargs):
        raise PermissionError("deletion requests are kept: they are the record of what was deleted")

    @property
    def is_pending(self) -> bool:
        return self.status == DeletionStatus.FILED


class DeletionEvent(AppendOnlyModel):
    """One step of a deletion request. Append-only: saved once, never edited or deleted."""

    request = models.ForeignKey(DeletionRequest, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=10, choices=DeletionAction.choices)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "logs"
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M}"
