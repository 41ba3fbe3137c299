"""Alert rules and their events, notification deliveries, report subscriptions and sent reports.

A rule's figures come from the analytics rollups (alerts/evaluation.py); a rule's maths is in
alerts/rules.py; notifications in alerts/notifications.py; reports in alerts/reports/.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from console.models import Account


class RuleKind(models.TextChoices):
    COST_ANOMALY = "cost_anomaly", "Cost anomaly"
    ERROR_RATE = "error_rate", "Error rate"
    TOKEN_SPIKE = "token_spike", "Token spike"
    BUDGET = "budget", "Budget"


class RuleState(models.TextChoices):
    OK = "ok", "OK"
    FIRING = "firing", "Firing"
    # Not enough data to judge (below the minimum history or minimum requests).
    UNKNOWN = "unknown", "Not enough data"


class AlertRule(models.Model):
    """One rule of an account. `params` holds the kind's settings (alerts.rules.DEFAULTS
    names them and their defaults); `model` and `api_key` scope it ("" = every one)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    name = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True)
    model = models.CharField(max_length=255, blank=True, default="")
    api_key = models.CharField(max_length=255, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    # A rule that stays in breach notifies again only after it recovered or this passed.
    cooldown_minutes = models.PositiveIntegerField(default=60)

    # Channels. Email goes to `email_users` and `email_addresses`; with neither, to the
    # account's owners and admins.
    email_enabled = models.BooleanField(default=True)
    email_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    email_addresses = models.JSONField(default=list, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    # The HMAC secret, encrypted (console.sealed); shown once when it is made.
    webhook_secret_sealed = models.TextField(blank=True, editable=False)

    # The state after the last evaluation.
    state = models.CharField(max_length=8, choices=RuleState.choices, default=RuleState.UNKNOWN)
    last_value = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    last_threshold = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["account", "kind", "pk"]
        indexes = [models.Index(fields=["enabled", "last_evaluated_at"], name="alertrule_due")]

    def __str__(self) -> str:
        return self.name or self.get_kind_display()


class EventState(models.TextChoices):
    FIRED = "fired", "Fired"
    RECOVERED = "recovered", "Recovered"


class AlertEvent(models.Model):
    """A rule fired or recovered. Kind and scope are copied, so the history outlives the rule."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alert_events")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    state = models.CharField(max_length=10, choices=EventState.choices)
    value = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    threshold = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    model = models.CharField(max_length=255, blank=True, default="")
    api_key = models.CharField(max_length=255, blank=True, default="")
    # The time the figure covers (UTC), for the link to the log list of the breach.
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    # Whether this event was sent to the rule's channels (False: a recovery of a breach that
    # was not sent, from before a rule's channels existed).
    notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"], name="alertevent_account_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.state} {self.created_at:%Y-%m-%d %H:%M}"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One notification of an event (or a test) to one channel, with its tries."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(AlertEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.CharField(max_length=500)
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.channel} {self.target} {self.status}"


class Frequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly (Monday)"
    MONTHLY = "monthly", "Monthly (1st)"


class ReportSubscription(models.Model):
    """A user's emailed report of one account: every day, Monday or 1st at `hour` in the
    account's zone, for the whole account or one API key / model."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="report_subscriptions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_subscriptions")
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    hour = models.PositiveSmallIntegerField(default=8)
    model = models.CharField(max_length=255, blank=True, default="")
    api_key = models.CharField(max_length=255, blank=True, default="")
    active = models.BooleanField(default=True)
    # The start (local date) of the last period claimed for sending: the conditional update
    # on it is what makes a send exactly once per period.
    last_period_start = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["account", "user", "frequency"]

    def __str__(self) -> str:
        return f"{self.user} {self.frequency} {self.account}"


class SentReport(models.Model):
    """A report as it was sent: period, recipients and the HTML."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sent_reports")
    subscription = models.ForeignKey(
        ReportSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent"
    )
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    period_start = models.DateField()
    period_end = models.DateField(help_text="Last local day of the period (inclusive)")
    model = models.CharField(max_length=255, blank=True, default="")
    api_key = models.CharField(max_length=255, blank=True, default="")
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    html = models.TextField()
    # The rest of the mail as it is (re)sent: a retry sends these, never a rebuilt report.
    text = models.TextField(blank=True)
    csv_name = models.CharField(max_length=200, blank=True)
    csv = models.TextField(blank=True)
    # Sending: a try claims the row by setting `sending_since` (a conditional update), so two
    # workers never send it at once; a try that died is taken over once it is that old.
    attempts = models.PositiveSmallIntegerField(default=0)
    sending_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["-period_start", "-pk"]
        constraints = [
            # One report per subscription and period, whatever retries or workers do.
            models.UniqueConstraint(fields=["subscription", "period_start"], name="sentreport_once_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.subject}"


class TokenBaseline(models.Model):
    """The p99 of total tokens per request of one model of an account over the `days` UTC
    days before `through`, for token-spike rules in p99 mode (alerts.baselines). Computed
    from raw rows once a UTC day for all such rules' accounts in one query, then read by
    every pass. A row with model "" says the baseline was computed (and holds the
    account's request count), so an account without traffic is not recomputed each pass."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    days = models.PositiveSmallIntegerField()
    model = models.CharField(max_length=255, blank=True, default="")
    through = models.DateField(help_text="UTC day the baseline ends before (exclusive)")
    p99 = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "days", "model"], name="tokenbaseline_account_days_model")
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.model} p99 {self.p99} ({self.days} d to {self.through})"
