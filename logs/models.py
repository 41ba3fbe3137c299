"""The request log and what it refers to: the gateway's API keys and the model price list."""

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from console.models import Account
from logs.deletions.models import DeletionEvent, DeletionRequest  # noqa: F401  (registered with the logs app)
from logs.retention.models import PurgeRun, PurgeStatus  # noqa: F401  (registered with the logs app)

# What a provider secret looks like is in logs.secrets: such values are never stored, only
# a fingerprint and a masked form. Aliases and hashes are stored as sent.
from logs.secrets import key_fingerprint, looks_like_secret, mask_secret


class ApiKey(models.Model):
    """An API key of the gateway, as the gateway names it in its log records."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    # What RequestLog.api_key holds: the identifier as sent, or its masked form for secrets.
    identifier = models.CharField(max_length=255)
    # sha256 of the value as sent (of a secret: trimmed, without "Bearer "): tells two
    # secrets with the same mask apart, and groups one secret's spellings.
    fingerprint = models.CharField(max_length=64)
    display_name = models.CharField(max_length=200, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["identifier"]
        constraints = [models.UniqueConstraint(fields=["account", "fingerprint"], name="apikey_unique_fingerprint")]
        indexes = [models.Index(fields=["account", "identifier"], name="apikey_account_identifier")]

    def __str__(self) -> str:
        return self.display_name or self.identifier

    @staticmethod
    def identifier_for(raw: str) -> str:
        return mask_secret(raw) if looks_like_secret(raw) else raw

    @staticmethod
    def fingerprint_for(raw: str) -> str:
        return key_fingerprint(raw)


class MatchType(models.TextChoices):
    EXACT = "exact", "Exact model name"
    PREFIX = "prefix", "Model name prefix"


class PriceSource(models.TextChoices):
    GENAI_PRICES = "genai-prices", "genai-prices snapshot"
    OPERATOR = "operator", "Set by an operator"
    ACCOUNT = "account", "Set by the account's owner"


# The first list price a snapshot gives is in force "since forever" as far as Meterlog can
# know (backfilled records must be priced too), so its valid_from is this floor; the pages
# show it as "since the price list began". An owner's first price for a model starts here too.
PRICE_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


class ModelPriceQuerySet(models.QuerySet):
    def for_account(self, account: Account | None):
        """Global prices plus the account's own overrides."""
        if account is None:
            return self.filter(account__isnull=True)
        return self.filter(Q(account__isnull=True) | Q(account=account))


class ModelPrice(models.Model):
    """A unit price for a model from `valid_from` on. Rows are never rewritten in place by
    sync_prices: a change of price is a new row, so old records keep their old price."""

    model = models.CharField(max_length=255, help_text="Model name, or a prefix when match is 'prefix'")
    match = models.CharField(max_length=8, choices=MatchType.choices, default=MatchType.EXACT)
    provider = models.CharField(max_length=64, blank=True)
    input_per_mtok = models.DecimalField("input $/1M tokens", max_digits=20, decimal_places=10)
    output_per_mtok = models.DecimalField("output $/1M tokens", max_digits=20, decimal_places=10)
    cached_input_per_mtok = models.DecimalField(
        "cached input $/1M tokens", max_digits=20, decimal_places=10, null=True, blank=True
    )
    valid_from = models.DateTimeField(default=timezone.now)
    account = models.ForeignKey(
        Account,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="price_overrides",
        help_text="Empty for the list price; set for an account's negotiated price.",
    )
    source = models.CharField(max_length=16, choices=PriceSource.choices, default=PriceSource.OPERATOR)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ModelPriceQuerySet.as_manager()

    class Meta:
        ordering = ["model", "-valid_from"]
        constraints = [
            # Two partial constraints rather than NULLS NOT DISTINCT, which SQLite lacks.
            models.UniqueConstraint(
                fields=["model", "match", "valid_from"],
                condition=Q(account__isnull=True),
                name="modelprice_unique_list_version",
            ),
            models.UniqueConstraint(
                fields=["model", "match", "valid_from", "account"],
                condition=Q(account__isnull=False),
                name="modelprice_unique_account_version",
            ),
        ]
        indexes = [models.Index(fields=["model", "valid_from"], name="modelprice_model_from")]

    def __str__(self) -> str:
        star = "*" if self.match == MatchType.PREFIX else ""
        return f"{self.model}{star} from {self.valid_from:%Y-%m-%d}"

    @property
    def since_list_began(self) -> bool:
        return self.valid_from <= PRICE_FLOOR


class Status(models.TextChoices):
    SUCCESS = "success", "Success"
    ERROR = "error", "Error"


class RequestLog(models.Model):
    """One API request served by the gateway. Append-only: never updated, never deleted by hand.

    On PostgreSQL the table is partitioned (LIST by retention_days, then RANGE by timestamp;
    see logs/partitions.py), so the database-level primary key is (id, retention_days,
    timestamp) and request_id uniqueness per account is enforced at ingest.
    """

    # No single-column index: every index below leads with account_id.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    # The account's retention when the row was ingested: the partition it lives in and
    # so the partition that the purge drops.
    retention_days = models.PositiveSmallIntegerField()
    request_id = models.CharField(max_length=255)
    timestamp = models.DateTimeField()
    model = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=Status.choices)
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    total_tokens = models.IntegerField(default=0)
    cached_tokens = models.IntegerField(null=True, blank=True)
    reasoning_tokens = models.IntegerField(null=True, blank=True)
    # USD; NULL means unpriced (no cost sent and no price known), never silently 0.
    cost = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)
    # The price row that computed `cost`; NULL when the gateway sent the cost or none applied.
    # No database constraint: price rows are reference data and the log table is huge.
    price = models.ForeignKey(
        ModelPrice,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    api_key = models.CharField(max_length=255, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # Text, not varchar(512): an encrypted user agent (a Fernet token) is longer than the
    # 512 characters ingest allows for the plain text (logs.ingest.validation keeps that limit).
    user_agent = models.TextField(blank=True, default="")
    latency_ms = models.IntegerField(null=True, blank=True)
    request_params = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    error_details = models.JSONField(null=True, blank=True)
    ingested_at = models.DateTimeField(default=timezone.now)
    # True: user_agent, request_params and error_details hold Fernet tokens (logs.encryption);
    # NULL: plain. Nullable so that adding it changed no stored row (a catalog change).
    encrypted = models.BooleanField(null=True, blank=True)

    class Meta:
        # Every index leads with account_id (every query is one tenant's) and ends with
        # (timestamp, id) so each filter walks its index in the keyset order and stops after
        # one page: page 1 and page 10,000 cost the same.
        indexes = [
            models.Index(fields=["account", "-timestamp", "-id"], name="reqlog_acct_time"),
            models.Index(fields=["account", "model", "-timestamp", "-id"], name="reqlog_acct_model_time"),
            models.Index(fields=["account", "api_key", "-timestamp", "-id"], name="reqlog_acct_key_time"),
            models.Index(
                fields=["account", "api_key", "model", "-timestamp", "-id"], name="reqlog_acct_key_model_time"
            ),
            # Errors are a few percent of rows: partial indexes on them are small and serve
            # status=error alone and with a model or key, without reading success rows.
            # status=success (most rows) is served by reqlog_acct_time with a filter.
            models.Index(fields=["account", "-timestamp", "-id"], name="reqlog_err_time", condition=Q(status="error")),
            models.Index(
                fields=["account", "model", "-timestamp", "-id"],
                name="reqlog_err_model_time",
                condition=Q(status="error"),
            ),
            models.Index(
                fields=["account", "api_key", "-timestamp", "-id"],
                name="reqlog_err_key_time",
                condition=Q(status="error"),
            ),
            models.Index(
                fields=["account", "error_code", "-timestamp", "-id"],
                name="reqlog_acct_errcode_time",
                condition=~Q(error_code=""),
            ),
            models.Index(fields=["account", "ip_address", "-timestamp", "-id"], name="reqlog_acct_ip_time"),
            models.Index(fields=["account", "request_id"], name="reqlog_acct_reqid"),
        ]

    def __str__(self) -> str:
        return self.request_id

    @property
    def is_error(self) -> bool:
        return self.status == Status.ERROR


class AccountModel(models.Model):
    """Models an account has used, kept at ingest: feeds the model picker without a
    DISTINCT over the whole log table."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="models_seen")
    model = models.CharField(max_length=255)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["model"]
        constraints = [models.UniqueConstraint(fields=["account", "model"], name="accountmodel_unique")]

    def __str__(self) -> str:
        return self.model


class AccountRetentionClass(models.Model):
    """The retention classes an account has rows in (PostgreSQL only; kept by a trigger).

    Log queries name these classes (`retention_days IN (...)`) so that PostgreSQL prunes the
    other LIST partitions while planning: without it every class's partitions stay in every
    plan, and planning was most of a page's database time at 10 M rows (bench/README.md).
    A statement-level trigger on the log table fills this table for every insert path (ingest,
    COPY, imports), so a row can never sit in a class that queries leave out.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    retention_days = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "retention_days"], name="accountretentionclass_unique")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.retention_days} days"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    NDJSON = "ndjson", "NDJSON"


class ExportState(models.TextChoices):
    STREAMED = "streamed", "Streamed"  # sent as the response body (small exports, the API)
    QUEUED = "queued", "Queued"  # a job (large exports): waits for a worker
    RUNNING = "running", "Running"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"  # the file was deleted after METERLOG_EXPORT_TTL_HOURS


class ExportSplit(models.TextChoices):
    NONE = "", "One file"
    MONTH = "month", "Zip, one file per month"


class ExportRecord(models.Model):
    """One export of the log (page or API): who, when, which filters, how many rows.

    A streamed export is created before the first byte is sent; `rows` and `finished_at` are
    set when the stream ends, so a download the client abandoned keeps `finished_at` empty.
    A job (a browser export over METERLOG_EXPORT_ASYNC_ROWS rows) goes queued → running →
    done (a file under METERLOG_EXPORT_DIR until `expires_at`) or failed, then expired;
    `rows` counts the rows written so far and `rows_estimate` is the planner's guess.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    # The console user; NULL for an API export, which names its token by hint instead.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_hint = models.CharField(max_length=16, blank=True)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    compress = models.BooleanField(default=False)
    # The filter parameters as sent ({name: value or [values]}), to repeat or audit the export.
    filters = models.JSONField(default=dict, blank=True)
    rows = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=ExportState.choices, default=ExportState.STREAMED)
    split = models.CharField(max_length=8, choices=ExportSplit.choices, blank=True, default=ExportSplit.NONE)
    # csv_safe: formula-like CSV cells were prefixed with ' (logs.exports); a job honours it when it runs.
    csv_safe = models.BooleanField(default=False)
    rows_estimate = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # A job's file: the download name, and the path relative to METERLOG_EXPORT_DIR.
    file_name = models.CharField(max_length=200, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # A job's last sign of life (claimed, progress written): the stale-job sweep fails jobs
    # that have shown none for METERLOG_JOB_STALE_MINUTES (their worker is gone).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "-created_at"], name="exportrecord_acct_created"),
            # The expiry sweep: finished jobs whose file is due for deletion.
            models.Index(fields=["state", "expires_at"], name="exportrecord_state_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.format} export at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def filters_query(self) -> str:
        """The filters as a log list query string (model=a&model=b)."""
        return urlencode(self.filters or {}, doseq=True)

    @property
    def is_job(self) -> bool:
        return self.state != ExportState.STREAMED

    @property
    def is_active(self) -> bool:
        return self.state in (ExportState.QUEUED, ExportState.RUNNING)

    @property
    def percent(self) -> int | None:
        """Progress of a job in whole percent (None while nothing is known)."""
        if self.state in (ExportState.DONE, ExportState.EXPIRED):
            return 100
        if not self.rows_estimate:
            return None
        # The estimate is the planner's: never show 100% before the job says it is done.
        return min(99, (self.rows or 0) * 100 // self.rows_estimate)


class ImportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """A file uploaded on the console's import page, imported by a worker
    (logs.imports.jobs): its progress and outcome; the file is deleted when the job ends."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=20)  # as asked: auto, meterlog-csv, ...
    detected_format = models.CharField(max_length=20, blank=True)
    quota_per_usd = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    file_name = models.CharField(max_length=255)  # the uploaded name, shown only
    file_path = models.CharField(max_length=500, blank=True)  # relative to METERLOG_IMPORT_DIR
    file_size = models.BigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=ImportState.choices, default=ImportState.QUEUED)
    rows_estimate = models.BigIntegerField(null=True, blank=True)
    rows = models.BigIntegerField(default=0)
    accepted = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    rejected_count = models.BigIntegerField(default=0)
    # The first rejections: [{"line", "request_id", "errors": {field: [messages]}}].
    rejected = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life, as ExportRecord.heartbeat_at (the stale-job sweep reads it).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"], name="importjob_acct_created")]

    def __str__(self) -> str:
        return f"{self.account_id}: import of {self.file_name}"

    @property
    def is_active(self) -> bool:
        return self.state in (ImportState.QUEUED, ImportState.RUNNING)

    @property
    def percent(self) -> int | None:
        if self.state == ImportState.DONE:
            return 100
        if not self.rows_estimate:
            return None
        return min(99, self.rows * 100 // self.rows_estimate)
