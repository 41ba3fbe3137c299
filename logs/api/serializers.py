"""The API representation of a request log record (list items and the bare detail body).

Field names are the ingest field names, so a record read from the API can be sent to
another Meterlog's ingest endpoint unchanged.

- `timestamp`: RFC 3339 in UTC with `Z` and always six fractional digits
  (2026-11-24T21:42:31.123456Z), so timestamps sort as strings and keep microseconds.
- `cost`: USD as a plain decimal string without trailing zeros ("0.000027", "0", never an
  exponent); null when the record is unpriced. Parse it as a decimal, not a float.
- Optional text fields that were not sent (api_key, user_agent, error_code, error_message)
  are null rather than "".

The DRF serializer below exists to document the schema; the work is done by
`log_record()`, a plain function over an already loaded row: a page of 1,000 rows costs
one query and no per-field serializer machinery.
"""

from datetime import UTC
from decimal import Decimal

from rest_framework import serializers

from logs import encryption
from logs.models import RequestLog, Status

_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(value) -> str:
    return value.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def format_cost(value: Decimal | None) -> str | None:
    if value is None:
        return None
    # format(..., "f") never switches to exponent notation (str(Decimal("1E-7")) would).
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def log_record(row: RequestLog) -> dict:
    # An encrypted row's three fields are decrypted here, for the API, archives and the
    # admin export alike (EncryptionKeyError: a 503, never the token as the value).
    user_agent, request_params, error_details = encryption.plain_fields(row)
    return {
        "request_id": row.request_id,
        "timestamp": format_timestamp(row.timestamp),
        "model": row.model,
        "status": row.status,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.total_tokens,
        "cached_tokens": row.cached_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost": format_cost(row.cost),
        "api_key": row.api_key or None,
        "ip_address": row.ip_address,
        "user_agent": user_agent or None,
        "latency_ms": row.latency_ms,
        "request_params": request_params if request_params is not None else {},
        "tags": row.tags if row.tags is not None else {},
        "error_code": row.error_code or None,
        "error_message": row.error_message or None,
        "error_details": error_details,
    }


class LogRecordSerializer(serializers.Serializer):
    """Schema of one record; `to_representation` is the fast `log_record()`."""

    request_id = serializers.CharField()
    timestamp = serializers.DateTimeField(help_text="UTC, RFC 3339 with Z and microseconds.")
    model = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField(help_text="prompt_tokens + completion_tokens")
    cached_tokens = serializers.IntegerField(allow_null=True)
    reasoning_tokens = serializers.IntegerField(allow_null=True)
    cost = serializers.DecimalField(
        max_digits=24,
        decimal_places=12,
        coerce_to_string=True,
        allow_null=True,
        help_text='USD as a decimal string without trailing zeros, e.g. "0.000027"; null when unpriced.',
    )
    api_key = serializers.CharField(
        allow_null=True, help_text="The gateway's key as sent, masked (sk-…a1b2) when it looked like a secret."
    )
    ip_address = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    request_params = serializers.DictField(help_text="Request parameters; never prompt or response text.")
    tags = serializers.DictField(child=serializers.CharField())
    error_code = serializers.CharField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    error_details = serializers.JSONField(allow_null=True)

    def to_representation(self, instance):
        return log_record(instance)


class LogPageSerializer(serializers.Serializer):
    results = LogRecordSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True,
        help_text="Pass as `cursor`, unchanged, to get the next (older) page; null on the last page. Signed: an "
        "edited cursor answers 400.",
    )
