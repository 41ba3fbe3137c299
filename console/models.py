"""Accounts (customers of the gateway), their members and their API tokens."""

import hashlib
import secrets
import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone as dj_timezone

from console.append_only import AppendOnlyModel


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone_name(value: str) -> None:
    if value not in _zone_names():
        raise ValidationError(f"{value!r} is not an IANA time zone name (e.g. Europe/Berlin)")


class Tier(models.TextChoices):
    STANDARD = "standard", "Standard"
    PROFESSIONAL = "professional", "Professional"
    ENTERPRISE = "enterprise", "Enterprise"


TIER_RETENTION_DAYS = {Tier.STANDARD: 30, Tier.PROFESSIONAL: 90, Tier.ENTERPRISE: 365}
MAX_RETENTION_DAYS = 3650


class Account(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    retention_days_override = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text="Custom retention in days; empty means the tier's default.",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone_name])
    privacy_mode = models.BooleanField(
        default=False,
        help_text="Drop request parameters, user agents and error details at ingest, keep only an IP prefix "
        "(owners switch it on the settings page; switches are in the access log).",
    )
    encryption_enabled = models.BooleanField(
        default=False,
        help_text="Store request parameters, user agents and error details encrypted (FIELD_ENCRYPTION_KEY); "
        "owners switch it on the encryption settings page, which needs a configured key; switches are in "
        "the access log.",
    )
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def retention_days(self) -> int:
        """The retention class stamped on every row at ingest (also the partition key)."""
        return self.retention_days_override or self.tier_retention_days

    @property
    def tier_retention_days(self) -> int:
        return TIER_RETENTION_DAYS[Tier(self.tier)]

    @property
    def retention_label(self) -> str:
        """The period in force and where it comes from: "90 days (professional)", "180 days (custom)"."""
        source = "custom" if self.retention_days_override else Tier(self.tier).label.lower()
        return f"{self.retention_days} days ({source})"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="membership_unique_user_account")]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class TokenScope(models.TextChoices):
    INGEST = "ingest", "Ingest (the gateway writes logs)"
    READ = "read", "Read (query and export logs)"


TOKEN_PREFIX = "mlt_"  # noqa: S105 - a public prefix, not a secret


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast unsalted hash is enough to make a
    # leaked table useless while keeping the per-request lookup a single indexed query.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A Meterlog API token (not to be confused with the gateway's API keys in logs.ApiKey)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True)
    scope = models.CharField(max_length=8, choices=TokenScope.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters are kept so a user can tell tokens apart without the secret.
    hint = models.CharField(max_length=16, editable=False, validators=[RegexValidator(r"^[\w-]*$")])
    created_at = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.hint}… ({self.scope}, {self.account.slug})"

    @classmethod
    def generate(cls, *, account: Account, scope: str, name: str = "", created_by=None) -> tuple["ApiToken", str]:
        """Create a token; returns (token, raw secret). The raw secret is never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            account=account,
            scope=scope,
            name=name,
            token_hash=hash_token(raw),
            hint=raw[: len(TOKEN_PREFIX) + 6],
            created_by=created_by,
        )
        return token, raw


class AuditAction(models.TextChoices):
    PRIVACY_ON = "privacy_on", "Privacy mode on"
    PRIVACY_OFF = "privacy_off", "Privacy mode off"
    ENCRYPTION_ON = "encryption_on", "Log encryption on"
    ENCRYPTION_OFF = "encryption_off", "Log encryption off"
    SETTINGS_CHANGED = "settings_changed", "Settings changed"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    MEMBER_ADDED = "member_added", "Member added"
    MEMBER_REMOVED = "member_removed", "Member removed"
    MEMBER_ROLE_CHANGED = "member_role_changed", "Member role changed"
    EXPORT_CREATED = "export_created", "Export"
    DELETION_REQUESTED = "deletion_requested", "Deletion requested"
    DELETION_APPROVED = "deletion_approved", "Deletion approved"
    DELETION_REJECTED = "deletion_rejected", "Deletion rejected"
    DELETION_DONE = "deletion_done", "Deletion carried out"
    DELETION_FAILED = "deletion_failed", "Deletion failed"
    KEY_RENAMED = "key_renamed", "API key named"
    ADMIN_EXPORT = "admin_export", "Export (Django admin)"
    ADMIN_IMPORT = "admin_import", "Import (Django admin)"
    REPORT_EXPORTED = "report_exported", "Chart exported (CSV)"
    ALERT_RULE_CREATED = "alert_rule_created", "Alert rule created"
    ALERT_RULE_CHANGED = "alert_rule_changed", "Alert rule changed"
    ALERT_RULE_DELETED = "alert_rule_deleted", "Alert rule deleted"
    PRICE_SET = "price_set", "Account price set"
    PRICE_REMOVED = "price_removed", "Account price removed"


class AuditEvent(AppendOnlyModel):
    """One entry of an account's access log: who did what, when. Written by
    console.audit.record_event only; never changed or deleted (on PostgreSQL a trigger,
    migration 0002, refuses UPDATE and DELETE too)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="audit_events")
    # SET_NULL keeps the event when a user is deleted; `username` keeps who it was.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    action = models.CharField(max_length=24, choices=AuditAction.choices)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        # The access log pages newest first by id within one account.
        indexes = [models.Index(fields=["account", "-id"], name="auditevent_account_id")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.username or 'the API'} at {self.created_at:%Y-%m-%d %H:%M}"

    def detail_lines(self) -> list[str]:
        """The details as short lines of text for the access log page (escaped there)."""
        details = self.details
        if self.action == AuditAction.EXPORT_CREATED:
            return _export_lines(details)
        if self.action in (AuditAction.TOKEN_CREATED, AuditAction.TOKEN_REVOKED):
            name = f" “{details['name']}”" if details.get("name") else ""
            return [f"{details.get('hint', '')}…{name} ({details.get('scope', '')})"]
        if self.action in (AuditAction.MEMBER_ADDED, AuditAction.MEMBER_REMOVED, AuditAction.MEMBER_ROLE_CHANGED):
            role = details.get("role")
            role = f"{role[0]} → {role[1]}" if isinstance(role, list) else f"as {role}"
            return [f"{details.get('member', '')} {role}" + (" (new user)" if details.get("new_user") else "")]
        if self.action == AuditAction.KEY_RENAMED:
            old, new = details.get("name") or ["", ""]
            via = " (admin)" if details.get("via") == "admin" else ""
            return [f"{details.get('identifier', '')}: “{old}” → “{new}”{via}"]
        if self.action == AuditAction.REPORT_EXPORTED:
            filters = ", ".join(f"{name}={value}" for name, value in sorted((details.get("filters") or {}).items()))
            return [
                f"{details.get('chart', '')} ({details.get('tab', '')}), {details.get('period', '')}",
                f"filters: {filters or 'none'}",
            ]
        if self.action in (AuditAction.ADMIN_EXPORT, AuditAction.ADMIN_IMPORT):
            return _admin_file_lines(details)
        if self.action in (AuditAction.PRICE_SET, AuditAction.PRICE_REMOVED):
            return _price_lines(details, removed=self.action == AuditAction.PRICE_REMOVED)
        lines = []
        for key, value in details.items():
            if key == "changes":
                lines += [f"{name}: {old} → {new}" for name, (old, new) in value.items()]
            elif isinstance(value, list) and len(value) == 2:
                lines.append(f"{key}: {value[0]} → {value[1]}")
            else:
                lines.append(f"{key}: {value}")
        return lines


def _price_lines(details: dict, *, removed: bool) -> list[str]:
    """ "gpt-4o: input $2 → $1, output $8 → $4 per 1M tokens" (the account's own price)."""

    def text(prices: dict | None, name: str) -> str:
        value = (prices or {}).get(name)
        return "–" if value is None else f"${value}"

    now = details.get("removed") if removed else details
    before = details.get("previous")
    parts = []
    for name, label in (("input", "input"), ("cached_input", "cached input"), ("output", "output")):
        if before and text(before, name) != text(now, name):
            parts.append(f"{label} {text(before, name)} → {text(now, name)}")
        elif now and now.get(name) is not None:
            parts.append(f"{label} {text(now, name)}")
    verb = "removed, was " if removed else ""
    return [f"{details.get('model', '')}: {verb}{', '.join(parts)} per 1M tokens"]


def _export_lines(details: dict) -> list[str]:
    options = [details.get("format", "")]
    if details.get("split"):
        options.append(f"zip by {details['split']}")
    elif details.get("compress"):
        options.append("gzip")
    if details.get("csv_safe"):
        options.append("safe for spreadsheets")
    filters = details.get("filters") or {}
    shown = ", ".join(f"{name}={value}" for name, value in filters.items()) or "all rows"
    return [
        f"{', '.join(options)} via {details.get('via', '')} (export #{details.get('export_id', '?')})",
        f"filters: {shown}",
    ]


def _admin_file_lines(details: dict) -> list[str]:
    if "filters" in details:  # an export
        # Sorted: PostgreSQL's jsonb does not keep the keys' order.
        filters = ", ".join(f"{name}={value}" for name, value in sorted(details["filters"].items())) or "all rows"
        return [
            f"{details.get('rows', 0)} {details.get('model', '')}, {details.get('format', '')}",
            f"filters: {filters}",
        ]
    counts = ", ".join(f"{details[name]} {name}" for name in ("new", "updated", "deleted") if details.get(name))
    return [f"{details.get('model', '')} from {details.get('file') or 'a file'}: {counts}"]


class ZoneChoice(models.TextChoices):
    """Which zone the console shows and reads times in (console.zones)."""

    MINE = "mine", "My zone"
    ACCOUNT = "account", "Account zone"


class ViewerPreference(models.Model):
    """A user's console preferences, kept across sessions and browsers."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="viewer_preference")
    zone_choice = models.CharField(max_length=8, choices=ZoneChoice.choices, default=ZoneChoice.MINE)

    def __str__(self) -> str:
        return f"{self.user}: times in {self.get_zone_choice_display()}"
